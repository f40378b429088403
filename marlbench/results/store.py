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

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from marlbench.errors import FileFormatError, UserError
from marlbench.fileio import inside, read_validated, require_dir, safe_name, write_json
from marlbench.plan import Job, Plan
from marlbench.results.schemas import JobFile, PlanFile, Records, StatusFile, is_job_id

EVAL_KEYS = ("label", "task_set", "quality", "seed", "task", "step")
RECORD_COLUMNS = [
    "suite", "algorithm", "label", "task_set", "quality", "seed", "task", "split", "step",
    "win_rate", "mean_return", "return_std", "episodes", "wall_time_s", "backend", "units",
    "reward", "action_selection", "versions", "config_hash", "job_id", "finished_at",
]


REPAIR = "run the suite again to re-run that job, or delete its folder"
# the file whose presence says a data job's folder is complete (written last, atomically)
COMMIT_MARKS = {"dataset": "manifest.json", "behaviour": "summary.json"}


def read_status(path: Path) -> dict:
    return read_validated(path, StatusFile, "status file").model_dump()


def read_job_file(path: Path) -> dict:
    return read_validated(path, JobFile, "job file").model_dump()


def read_plan(path: Path) -> dict:
    plan = read_validated(path, PlanFile, "plan file").model_dump()
    if plan["suite"] != Path(path).stem:
        raise FileFormatError(f"{path}: plan file field suite: {plan['suite']!r} is not the "
                              "suite its file is named after")
    for info in plan["jobs"].values():
        if info["kind"] != "eval":
            for key in EVAL_KEYS:
                info.pop(key, None)
    return plan


def read_records(path: Path, job_id: str, expect: dict | None = None) -> list[dict]:
    """The records of eval job ``job_id``; each must name that job (and, with ``expect``, its
    label, task set, quality, seed, task and step)."""
    records = [r.model_dump() for r in read_validated(path, Records, "records file")]
    for i, rec in enumerate(records):
        if rec["job_id"] != job_id:
            raise FileFormatError(f"{path}: records file field {i}.job_id: {rec['job_id']} is "
                                  f"another job's record, not {job_id}'s")
        for key, want in (expect or {}).items():
            if rec[key] != want:
                raise FileFormatError(f"{path}: records file field {i}.{key}: {rec[key]!r}, "
                                      f"but the plan's job {job_id} has {want!r}")
    return records


def _readable_checkpoint(path: Path) -> bool:
    """A torch checkpoint that was written whole (torch.save writes a zip archive)."""
    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


class Store:
    """Where each job's files live, and which jobs are done."""

    def __init__(self, results_dir: Path, data_dir: Path):
        self.results_dir = require_dir(results_dir, "results directory", must_exist=False)
        self.data_dir = require_dir(data_dir, "data directory", must_exist=False)

    def job_dir(self, job: Job) -> Path:
        c = job.config
        if job.kind == "dataset":
            return self.dataset_dir(c["backend"], c["task"], c["quality"], job.id)
        if job.kind == "behaviour":
            return self.behaviour_dir(c["backend"], c["task"], job.id)
        return self.dir_of(job.kind, job.id)

    def _data_path(self, *parts: str) -> Path:
        for part in parts:
            safe_name(part, "data folder name")
        return inside(self.data_dir, self.data_dir.joinpath(*parts))

    def dataset_dir(self, backend: str, task: str, quality: str, dataset_id: str) -> Path:
        return self._data_path(backend, task, quality, dataset_id)

    def behaviour_dir(self, backend: str, task: str, behaviour_id: str) -> Path:
        return self._data_path(backend, task, "behaviour", behaviour_id)

    def dir_of(self, kind: str, job_id: str) -> Path:
        if not (is_job_id(job_id) and job_id.startswith(f"{kind}-")):
            raise UserError(f"{job_id!r} is not a {kind} job id")
        return self.results_dir / "runs" / kind / job_id

    def status(self, job: Job) -> dict | None:
        path = self.job_dir(job) / "status.json"
        return read_status(path) if path.exists() else None

    def done_state(self, job: Job) -> tuple[bool, str | None]:
        """(done, problem): done when its status says so and every output it promises is
        present and valid; ``problem`` says why a job that looks finished is not done (to be
        re-run), None when it simply has not finished."""
        d = self.job_dir(job)
        if not (d / "status.json").exists():
            return False, None
        try:
            st = read_status(d / "status.json")
            if st["state"] != "done":
                return False, None
            if st["id"] != job.id:
                return False, f"{d / 'status.json'} is job {st['id']}'s status"
            read_job_file(d / "job.json")
        except UserError as exc:
            return False, str(exc)
        problem = self.output_problem(job)
        return problem is None, problem

    def is_done(self, job: Job) -> bool:
        return self.done_state(job)[0]

    def output_problem(self, job: Job) -> str | None:
        """What is missing or invalid among the job's outputs (None when all are in place),
        whatever its status says."""
        try:
            return self._output_problem(job)
        except UserError as exc:
            return str(exc)

    def _output_problem(self, job: Job) -> str | None:
        c, d = job.config, self.job_dir(job)
        if job.kind == "eval":
            path = d / "records.json"
            if not path.exists():
                return f"{path} is missing"
            read_records(path, job.id, {k: c[k] for k in EVAL_KEYS})
        elif job.kind == "train":
            if not (d / "metrics.jsonl").is_file():
                return f"{d / 'metrics.jsonl'} is missing"
            for step in c["checkpoint_steps"]:
                ckpt = d / "checkpoints" / f"step_{step}.pt"
                if not ckpt.is_file():
                    return f"{ckpt} is missing"
                if not _readable_checkpoint(ckpt):
                    return f"{ckpt} is truncated or not a torch checkpoint"
        elif job.kind == "dataset":
            from marlbench.data.collect import MANIFEST, read_manifest

            if not (d / MANIFEST).exists():
                return f"{d / MANIFEST} is missing"
            manifest = read_manifest(d)
            for part in manifest["parts"]:
                if not (d / part["file"]).is_file():
                    return f"{d / part['file']} is listed in its manifest but missing"
        elif job.kind == "behaviour":
            from marlbench.data.protocol import SUMMARY, read_summary

            if not (d / SUMMARY).exists():
                return f"{d / SUMMARY} is missing"
            read_summary(d)
        return None

    def save_plan(self, plan: Plan, profile: str | None) -> Path:
        name = safe_name(plan.suite.name, "suite name")
        path = inside(self.results_dir, self.results_dir / "plans" / f"{name}.json")
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
        return [read_plan(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def load_records(results_dir: Path, suite: str | None = None,
                 plans: list[dict] | None = None) -> pd.DataFrame:
    """One row per evaluation record. With saved plans, only the records of each suite's latest
    plan count (so a changed parameter never mixes stale results in); ``suite`` filters.
    ``plans``: the directory's plans when the caller has read them already."""
    store = Store(results_dir, results_dir)
    every = store.plans() if plans is None else plans
    plans = every
    if suite is not None:
        plans = [p for p in every if p["suite"] == suite]
        if not plans:
            known = ", ".join(p["suite"] for p in every) or "none"
            raise UserError(f"no runs of suite {suite!r} in {results_dir}; suites there: {known}")
    rows = []
    if plans:
        for plan in plans:
            for jid, info in plan["jobs"].items():
                if info["kind"] != "eval":
                    continue
                path = store.dir_of("eval", jid) / "records.json"
                if path.exists():
                    expect = {k: info[k] for k in EVAL_KEYS if info.get(k) is not None}
                    for rec in _records(path, jid, expect):
                        rows.append({**rec, "suite": plan["suite"]})
    else:
        for path in sorted((Path(results_dir) / "runs" / "eval").glob("*/records.json")):
            rows.extend(_records(path, path.parent.name))
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def _records(path: Path, job_id: str, expect: dict | None = None) -> list[dict]:
    try:
        return read_records(path, job_id, expect)
    except FileFormatError as exc:
        raise FileFormatError(f"{exc}; {REPAIR}") from None


def job_states(results_dir: Path, suite: str | None = None,
               plans: list[dict] | None = None) -> pd.DataFrame:
    """State of every eval job of the latest plans: done, failed, skipped, running (started:
    its folder holds job.json but no status.json yet; or interrupted) or not run."""
    store = Store(results_dir, results_dir)
    rows = []
    for plan in store.plans() if plans is None else plans:
        if suite is not None and plan["suite"] != suite:
            continue
        for jid, info in plan["jobs"].items():
            if info["kind"] != "eval":
                continue
            d = store.dir_of("eval", jid)
            st = read_status(d / "status.json") if (d / "status.json").exists() else None
            state = st["state"] if st else "running" if (d / "job.json").exists() else "not run"
            if state == "done" and not (d / "records.json").exists():
                state = "incomplete"  # finished, but its records are gone: `run` repairs it
            rows.append({"suite": plan["suite"], "job_id": jid, "title": info["title"],
                         "state": state, **{k: info.get(k) for k in EVAL_KEYS}})
    return pd.DataFrame(rows, columns=["suite", "job_id", "title", "state", *EVAL_KEYS])


def train_datasets(dirs: list[Path], train_ids: list[str]) -> dict[str, list[str]]:
    """Train job id → the dataset folders (relative to the data directory) its job.json names,
    for the ids whose job file is in one of ``dirs``; unreadable or absent ones are left out
    (the caller says the data source is unknown)."""
    out: dict[str, list[str]] = {}
    for tid in dict.fromkeys(train_ids):
        for d in dirs:
            path = Path(d) / "runs" / "train" / str(tid) / "job.json"
            if not (is_job_id(tid) and path.is_file()):
                continue
            try:
                config = read_job_file(path)["config"]
            except UserError:
                continue
            parts = config.get("datasets") or {}
            out[tid] = [p["dir"] for ps in parts.values() for p in ps
                        if isinstance(p, dict) and "dir" in p]
            break
    return out


STATE_RANK = {"done": 5, "running": 4, "incomplete": 3, "failed": 2, "skipped": 1,
              "not run": 0}


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
        require_dir(d, "results directory")
    per_dir = [Store(d, d).plans() for d in dirs]
    if suite is not None and not any(p["suite"] == suite for ps in per_dir for p in ps):
        known = ", ".join(sorted({p["suite"] for ps in per_dir for p in ps})) or "none"
        where = ", ".join(map(str, dirs))
        raise UserError(f"no runs of suite {suite!r} in {where}; suites there: {known}")
    frames, states = [], []
    for d, ps in zip(dirs, per_dir, strict=True):
        if suite is not None and not any(p["suite"] == suite for p in ps):
            continue
        frames.append(load_records(d, suite, ps).assign(source=str(d)))
        states.append(job_states(d, suite, ps))
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
