"""The results store: one directory per job, written atomically; loaded into a DataFrame.

Layout (results dir ``R``, data dir ``D``)::

    D/<backend>/<task>/<quality>/<dataset-id>/  part_*.h5, manifest.json, job.json, status.json
    D/<backend>/<task>/behaviour/<behaviour-id>/  state.pt, checkpoints/, replay/, summary.json
    D/<source>/<task>/<quality>/<run>/  imported data (``marlbench data import``)
    R/runs/train/<train-id>/  job.json, status.json, log.txt, metrics.jsonl, checkpoints/step_N.pt
    R/runs/eval/<eval-id>/    job.json, status.json, log.txt, records.json
    R/plans/<suite>.json      the job ids of the suite's latest plan
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from marlbench.errors import UserError
from marlbench.fileio import write_json
from marlbench.plan import Job, Plan

EVAL_KEYS = ("label", "task_set", "quality", "seed", "task", "step")
RECORD_COLUMNS = [
    "suite", "algorithm", "label", "task_set", "quality", "seed", "task", "split", "step",
    "win_rate", "mean_return", "episodes", "wall_time_s", "backend", "versions", "config_hash",
    "job_id", "finished_at",
]


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class Store:
    """Where each job's files live, and which jobs are done."""

    def __init__(self, results_dir: Path, data_dir: Path):
        self.results_dir = Path(results_dir)
        self.data_dir = Path(data_dir)

    def job_dir(self, job: Job) -> Path:
        c = job.config
        if job.kind == "dataset":
            return self.dataset_dir(c["backend"], c["task"], c["quality"], job.id)
        if job.kind == "behaviour":
            return self.behaviour_dir(c["backend"], c["task"], job.id)
        return self.results_dir / "runs" / job.kind / job.id

    def dataset_dir(self, backend: str, task: str, quality: str, dataset_id: str) -> Path:
        return self.data_dir / backend / task / quality / dataset_id

    def behaviour_dir(self, backend: str, task: str, behaviour_id: str) -> Path:
        return self.data_dir / backend / task / "behaviour" / behaviour_id

    def dir_of(self, kind: str, job_id: str) -> Path:
        return self.results_dir / "runs" / kind / job_id

    def status(self, job: Job) -> dict | None:
        path = self.job_dir(job) / "status.json"
        return read_json(path) if path.exists() else None

    def is_done(self, job: Job) -> bool:
        """Finished, and (for data jobs) its commit mark is in place."""
        st = self.status(job)
        if not (st and st.get("state") == "done"):
            return False
        marker = {"dataset": "manifest.json", "behaviour": "summary.json"}.get(job.kind)
        return marker is None or (self.job_dir(job) / marker).exists()

    def save_plan(self, plan: Plan, profile: str | None) -> Path:
        path = self.results_dir / "plans" / f"{plan.suite.name}.json"
        write_json(
            path,
            {
                "suite": plan.suite.name,
                "profile": profile,
                "checkpoint": plan.suite.evaluation.checkpoint,
                "last_k": plan.suite.evaluation.last_k,
                "task_sets": plan.suite.task_sets,
                "qualities": plan.suite.qualities,
                "seeds": plan.suite.seeds,
                "labels": [a.label for a in plan.suite.algorithms],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "jobs": {j.id: {"kind": j.kind, "title": j.title,
                                **{k: j.config[k] for k in EVAL_KEYS if j.kind == "eval"}}
                         for j in plan.jobs.values()},
            },
        )
        return path

    def plans(self) -> list[dict]:
        folder = self.results_dir / "plans"
        return [read_json(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def load_records(results_dir: Path, suite: str | None = None) -> pd.DataFrame:
    """One row per evaluation record. With saved plans, only the records of each suite's latest
    plan count (so a changed parameter never mixes stale results in); ``suite`` filters."""
    store = Store(results_dir, results_dir)
    plans = store.plans()
    if suite is not None:
        plans = [p for p in plans if p["suite"] == suite]
        if not plans:
            known = ", ".join(p["suite"] for p in store.plans()) or "none"
            raise UserError(f"no runs of suite {suite!r} in {results_dir}; suites there: {known}")
    rows = []
    if plans:
        for plan in plans:
            for jid, info in plan["jobs"].items():
                if info["kind"] != "eval":
                    continue
                path = store.dir_of("eval", jid) / "records.json"
                if path.exists():
                    for rec in read_json(path):
                        rows.append({**rec, "suite": plan["suite"]})
    else:
        for path in sorted((Path(results_dir) / "runs" / "eval").glob("*/records.json")):
            rows.extend(read_json(path))
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def job_states(results_dir: Path, suite: str | None = None) -> pd.DataFrame:
    """State of every eval job of the latest plans: done, failed, skipped or not run."""
    store = Store(results_dir, results_dir)
    rows = []
    for plan in store.plans():
        if suite is not None and plan["suite"] != suite:
            continue
        for jid, info in plan["jobs"].items():
            if info["kind"] != "eval":
                continue
            d = store.dir_of("eval", jid)
            st = read_json(d / "status.json") if (d / "status.json").exists() else None
            rows.append({"suite": plan["suite"], "job_id": jid, "title": info["title"],
                         "state": st["state"] if st else "not run",
                         **{k: info.get(k) for k in EVAL_KEYS}})
    return pd.DataFrame(rows, columns=["suite", "job_id", "title", "state", *EVAL_KEYS])
