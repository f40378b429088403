"""Hand-made results directories that pass the store's schemas (job ids, status and record
files, plans), for report / check / merge tests that need no training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def eval_id(*parts: object) -> str:
    return "eval-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


TRAIN_ID = "train-" + "0" * 16


def status(jid: str, state: str = "done") -> dict:
    return {"id": jid, "kind": jid.split("-")[0], "title": f"job {jid}", "state": state,
            "error": None if state == "done" else "RuntimeError: failed on purpose",
            "wall_time_s": 0.1, "log": "log.txt", "torch_threads": 1,
            "finished_at": "2026-12-01T00:00:00"}


def record(r: dict, jid: str) -> dict:
    """A schema-valid record from the fields a test cares about."""
    return {"suite": None, "algorithm": r["label"].lower(), "backend": "smax", "episodes": 32,
            "mean_return": 0.0, "wall_time_s": 0.1, "versions": {"marlbench": "0.1.0"},
            "config_hash": TRAIN_ID, "job_id": jid, "finished_at": "2026-12-01T00:00:00",
            "step": 10, **r}


def write_eval(root: Path, jid: str, records: list[dict] | None, state: str = "done") -> Path:
    d = Path(root) / "runs" / "eval" / jid
    d.mkdir(parents=True, exist_ok=True)
    if records is not None:
        (d / "records.json").write_text(json.dumps([record(r, jid) for r in records]))
    (d / "status.json").write_text(json.dumps(status(jid, state)))
    return d


def write_plan(root: Path, jobs: dict, labels: list[str], task_sets: list[str],
               qualities: list[str], seeds: list[int], suite: str = "s") -> Path:
    plan = {"suite": suite, "profile": None, "checkpoint": "final", "last_k": 3,
            "task_sets": task_sets, "qualities": qualities, "seeds": seeds, "labels": labels,
            "created": "2026-12-01T00:00:00", "jobs": jobs}
    path = Path(root) / "plans" / f"{suite}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan))
    return path


def single_records(label: str, task_set: str, quality: str, seed: int, mean_return: float,
                   step: int = 10, **fields) -> list[dict]:
    """The one record of a single-task run (its map is its task set): ``mean_return`` and any
    other record ``fields`` (reward, action_selection, episodes, backend, config_hash)."""
    return [{"label": label, "task_set": task_set, "quality": quality, "seed": seed,
             "task": task_set, "split": "seen", "step": step, "win_rate": 0.0,
             "mean_return": mean_return, **fields}]


def write_train(root: Path, datasets: list[str]) -> str:
    """A train job.json naming ``datasets`` (folders under the data directory); its id."""
    from marlbench.plan import job_id

    config = {"algorithm": "bc", "datasets": {"t": [{"dir": d, "last": 1} for d in datasets]}}
    jid = job_id("train", config)
    d = Path(root) / "runs" / "train" / jid
    d.mkdir(parents=True, exist_ok=True)
    (d / "job.json").write_text(json.dumps({"id": jid, "kind": "train", "config": config,
                                            "deps": []}))
    return jid
