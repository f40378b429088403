"""The job graph: dataset, train and eval jobs with content-addressed ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marlbench.data.qualities import get_quality
from marlbench.envs.tasksets import get_task_set
from marlbench.errors import UserError
from marlbench.suite import Suite, resolved_params

COLLECTOR_VERSION = 2  # bump when collection changes what it writes
BEHAVIOUR_VERSION = 1
TRAINER_VERSION = 4  # 3: the task order a stream of its own; draws at full length (fusing);
# 4: the last block computes only the rows read (same numbers up to float summation order)
EVALUATOR_VERSION = 1


def job_id(kind: str, config: dict[str, Any]) -> str:
    """Hash of the resolved config (which names the ids of everything it depends on)."""
    blob = json.dumps({"kind": kind, **config}, sort_keys=True, separators=(",", ":"))
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass
class Job:
    kind: str  # behaviour | dataset | train | eval
    config: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    id: str = ""

    def __post_init__(self) -> None:
        self.id = job_id(self.kind, self.config)

    @property
    def title(self) -> str:
        c = self.config
        if self.kind == "dataset":
            return f"data {c.get('task')}/{c.get('quality')}"
        if self.kind == "behaviour":
            return f"behaviour {c.get('task')}"
        if self.kind == "train":
            return f"train {c.get('label')} {c.get('task_set')}/{c.get('quality')} s{c.get('seed')}"
        return f"eval {c.get('label')} {c.get('task')} @{c.get('step')} s{c.get('seed')}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "config": self.config, "deps": self.deps}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        job = cls(d["kind"], d["config"], list(d["deps"]))
        assert job.id == d["id"], "job id does not match its config"
        return job


@dataclass
class Plan:
    suite: Suite
    jobs: dict[str, Job]

    def of_kind(self, kind: str) -> list[Job]:
        return [j for j in self.jobs.values() if j.kind == kind]

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in self.jobs}
        for job in self.jobs.values():
            for dep in job.deps:
                out[dep].append(job.id)
        return out


def imported_run(data_dir: Path, source: str, task: str, quality: str) -> Path:
    """The imported run folder the ODIS loader would pick: the lexicographically last one
    under ``<data>/<source>/<task>/<quality>/`` that holds a manifest."""
    from marlbench.data.collect import read_manifest

    folder = Path(data_dir) / source / task / quality
    runs = sorted(p for p in folder.glob("*") if (p / "manifest.json").is_file())
    if not runs:
        raise UserError(
            f"no imported {quality} data for {task} under {folder}; import it first, e.g. "
            f"marlbench data import {source} PATH --data-dir {data_dir}"
        )
    read_manifest(runs[-1])  # a malformed manifest is named now, not in a training worker
    return runs[-1]


# behaviour settings added after the first release: left out of a job's config while at their
# default, so that the ids of earlier behaviour runs (and the datasets made from them) stand
_LATER_BEHAVIOUR_DEFAULTS = {"poor_fraction": 0.41, "threshold_metric": "win_rate"}


def behaviour_settings(suite: Suite) -> dict[str, Any]:
    """The suite's behaviour settings as a behaviour job's config names them."""
    settings = suite.data.behaviour.model_dump()
    for key, default in _LATER_BEHAVIOUR_DEFAULTS.items():
        if settings.get(key) == default:
            settings.pop(key)
    return settings


def make_plan(suite: Suite, data_dir: Path | None = None) -> Plan:
    """Expand a suite: a behaviour job per seen task (learned qualities), a dataset job per
    (task, stored quality), a train job per (algorithm label, task set, quality, seed), an
    eval job per (train job, checkpoint step, test task). Task sets in ``data.imported`` read
    imported runs from ``data_dir`` instead of collecting."""
    jobs: dict[str, Job] = {}

    def add(job: Job) -> Job:
        jobs.setdefault(job.id, job)
        return jobs[job.id]

    def collected(task: str, quality: str) -> Job:
        q = get_quality(quality)
        config: dict[str, Any] = {
            **suite.env(),
            "task": task,
            "quality": quality,
            "episodes": suite.data.episodes,
            "seed": suite.data.seed,
            "version": COLLECTOR_VERSION,
        }
        deps = []
        if q.producer == "behaviour" and suite.data.behaviour.algorithm == "planner":
            config["policy"] = "planner"  # the scripted planner stands in for MAPPO's expert
        elif q.producer == "behaviour":
            behaviour = add(Job("behaviour", {
                **suite.env(),
                "task": task,
                "settings": behaviour_settings(suite),
                "seed": suite.data.seed,
                "version": BEHAVIOUR_VERSION,
            }))
            config["behaviour"] = behaviour.id
            deps = [behaviour.id]
        return add(Job("dataset", config, deps=deps))

    for set_name in suite.task_sets:
        task_set = get_task_set(set_name)
        source = suite.data.imported.get(set_name)
        for quality in suite.qualities:
            stored = get_quality(quality).stored
            share = suite.data.last_episodes // len(stored)
            datasets: dict[str, list[dict[str, Any]]] = {}
            dataset_jobs: set[str] = set()
            for task in task_set.seen:
                datasets[task] = []
                for part in stored:
                    if source is not None:
                        if data_dir is None:
                            raise UserError(f"task set {set_name} reads imported data: a data "
                                            "directory is needed to plan it")
                        run = imported_run(data_dir, source, task, part)
                        manifest = (run / "manifest.json").read_bytes()
                        datasets[task].append({
                            "dir": run.relative_to(data_dir).as_posix(), "last": share,
                            "manifest_sha256": hashlib.sha256(manifest).hexdigest()})
                        continue
                    ds = collected(task, part)
                    dataset_jobs.add(ds.id)
                    datasets[task].append({
                        "dir": f"{suite.backend}/{task}/{part}/{ds.id}", "last": share})
            for entry in suite.algorithms:
                budget = suite.budget(entry)
                steps = budget.checkpoint_steps()
                for seed in suite.seeds:
                    train = add(
                        Job(
                            "train",
                            {
                                "algorithm": entry.name,
                                "label": entry.label,
                                **suite.env(),
                                "params": resolved_params(suite, entry),
                                "task_set": set_name,
                                "seen": list(task_set.seen),
                                "test": list(task_set.test),
                                "quality": quality,
                                "seed": seed,
                                "updates": budget.updates,
                                "batch_episodes": budget.batch_episodes,
                                "last_episodes": suite.data.last_episodes,
                                "checkpoint_steps": steps,
                                "datasets": datasets,
                                "version": TRAINER_VERSION,
                                **({"standardise": True} if suite.training.standardise
                                   else {}),
                            },
                            deps=sorted(dataset_jobs),
                        )
                    )
                    for step in steps:
                        for task in task_set.test:
                            add(
                                Job(
                                    "eval",
                                    {
                                        "train": train.id,
                                        "algorithm": entry.name,
                                        "label": entry.label,
                                        "task_set": set_name,
                                        "quality": quality,
                                        "seed": seed,
                                        "step": step,
                                        "task": task,
                                        "split": task_set.split(task),
                                        "episodes": suite.evaluation.episodes,
                                        "eval_seed": suite.evaluation.seed,
                                        **({"actions": "sampled"}
                                           if suite.evaluation.actions == "sampled" else {}),
                                        **suite.env(),
                                        "version": EVALUATOR_VERSION,
                                    },
                                    deps=[train.id],
                                )
                            )
    return Plan(suite, jobs)


def topological_order(plan: Plan) -> list[str]:
    """Job ids with every dependency before its dependents (behaviour runs, datasets, trains,
    evals)."""
    rank = {"behaviour": 0, "dataset": 1, "train": 2, "eval": 3}

    def key(i: str) -> tuple:
        job = plan.jobs[i]
        # evals grouped by map, so a worker reuses its compiled environment
        return (rank[job.kind], job.config.get("task", ""), job.config.get("step", 0), i)

    return sorted(plan.jobs, key=key)
