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
from dataclasses import dataclass
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
    """State of every eval job of the latest plans: done, failed, skipped, running (started:
    its folder holds job.json but no status.json yet; or interrupted) or not run."""
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
                         "state": st["state"] if st else
                         "running" if (d / "job.json").exists() else "not run",
                         **{k: info.get(k) for k in EVAL_KEYS}})
    return pd.DataFrame(rows, columns=["suite", "job_id", "title", "state", *EVAL_KEYS])


STATE_RANK = {"done": 4, "running": 3, "failed": 2, "skipped": 1, "not run": 0}


@dataclass
class Results:
    """What one or several results directories hold, merged: evaluation records, the latest
    plan per suite and the state of every planned eval job."""

    dirs: list[Path]
    records: pd.DataFrame
    plans: list[dict]
    states: pd.DataFrame
    duplicates: int = 0  # records present in more than one directory, counted once


def _merge_plans(plans: list[dict]) -> list[dict]:
    """One plan per suite: the union of task sets, qualities, seeds, labels and jobs (so seeds
    run on different machines under the same suite name add up)."""
    merged: dict[str, dict] = {}
    for plan in plans:
        m = merged.setdefault(plan["suite"], {**plan, "jobs": {}})
        for key in ("task_sets", "qualities", "seeds", "labels"):
            m[key] = list(dict.fromkeys([*m.get(key, []), *plan.get(key, [])]))
        m["jobs"] = {**m["jobs"], **plan["jobs"]}
        m["created"] = max(m.get("created", ""), plan.get("created", ""))
    return list(merged.values())


IDENTITY = ["suite", "label", "task_set", "quality", "seed", "task", "step"]


def _refuse_conflicts(records: pd.DataFrame) -> None:
    """Two directories holding the same evaluation (suite, label, task set, quality, seed,
    task, step) from different configurations would be averaged into one seed: refuse."""
    if records.empty or records["source"].nunique() < 2:
        return
    counts = records.groupby(IDENTITY, dropna=False)[["job_id", "source"]].nunique()
    bad = counts[(counts["job_id"] > 1) & (counts["source"] > 1)]
    if bad.empty:
        return
    ident = dict(zip(IDENTITY, bad.index[0], strict=True))
    mask = (records[IDENTITY] == pd.Series(ident)).all(axis=1)
    r = records[mask].iloc[0]
    sources = ", ".join(sorted(records[mask]["source"].unique()))
    raise UserError(
        f"{r['label']} seed {r['seed']} on {r['task_set']}/{r['quality']} (suite {r['suite']}) "
        f"was run with different configurations in {sources}; merged, two configurations "
        "would be averaged as one seed. Give one of them another label, or report the "
        "directories separately.")


def load_results(dirs: Path | list[Path], suite: str | None = None) -> Results:
    """Load and merge results directories. A record found in several directories (same eval
    job, task and step: a copied or re-synced run) counts once; an eval job's state is the most
    advanced one found (done > running > failed > skipped > not run: a rerun in progress
    supersedes an old failure)."""
    dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"results directory {d} does not exist")
    per_dir = [Store(d, d).plans() for d in dirs]
    if suite is not None and not any(p["suite"] == suite for ps in per_dir for p in ps):
        known = ", ".join(sorted({p["suite"] for ps in per_dir for p in ps})) or "none"
        where = ", ".join(map(str, dirs))
        raise UserError(f"no runs of suite {suite!r} in {where}; suites there: {known}")
    frames, states = [], []
    for d, ps in zip(dirs, per_dir, strict=True):
        if suite is not None and not any(p["suite"] == suite for p in ps):
            continue
        frames.append(load_records(d, suite).assign(source=str(d)))
        states.append(job_states(d, suite))
    records = pd.concat([f for f in frames if not f.empty] or frames, ignore_index=True)
    _refuse_conflicts(records)
    before = len(records)
    records = records.drop_duplicates([*IDENTITY, "job_id"], keep="first")
    records = records.drop(columns="source")
    states_df = pd.concat(states, ignore_index=True)
    if not states_df.empty:
        states_df = (states_df.assign(rank=states_df["state"].map(STATE_RANK).fillna(0))
                     .sort_values("rank", ascending=False, kind="stable")
                     .drop_duplicates("job_id").drop(columns="rank")
                     .sort_index().reset_index(drop=True))
    plans = _merge_plans([p for ps in per_dir for p in ps if suite in (None, p["suite"])])
    return Results(dirs, records.reset_index(drop=True), plans, states_df,
                   before - len(records))
