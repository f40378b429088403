"""The job graph: dataset, train and eval jobs with content-addressed ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from marlbench.envs.tasksets import get_task_set
from marlbench.suite import Suite, resolved_params

COLLECTOR_VERSION = 1  # bump when collection changes what it writes
TRAINER_VERSION = 1
EVALUATOR_VERSION = 1


def job_id(kind: str, config: dict[str, Any]) -> str:
    """Hash of the resolved config (which names the ids of everything it depends on)."""
    blob = json.dumps({"kind": kind, **config}, sort_keys=True, separators=(",", ":"))
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass
class Job:
    kind: str  # dataset | train | eval
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


def make_plan(suite: Suite) -> Plan:
    """Expand a suite: dataset job per (task, quality), train job per (algorithm label, task
    set, quality, seed), eval job per (train job, checkpoint step, test task)."""
    jobs: dict[str, Job] = {}

    def add(job: Job) -> Job:
        jobs.setdefault(job.id, job)
        return jobs[job.id]

    steps = suite.checkpoint_steps()
    for set_name in suite.task_sets:
        task_set = get_task_set(set_name)
        for quality in suite.qualities:
            datasets = {}
            for task in task_set.seen:
                ds = add(
                    Job(
                        "dataset",
                        {
                            "backend": suite.backend,
                            "task": task,
                            "quality": quality,
                            "episodes": suite.data.episodes,
                            "seed": suite.data.seed,
                            "version": COLLECTOR_VERSION,
                        },
                    )
                )
                datasets[task] = ds.id
            for entry in suite.algorithms:
                for seed in suite.seeds:
                    train = add(
                        Job(
                            "train",
                            {
                                "algorithm": entry.name,
                                "label": entry.label,
                                "backend": suite.backend,
                                "params": resolved_params(suite, entry),
                                "task_set": set_name,
                                "seen": list(task_set.seen),
                                "test": list(task_set.test),
                                "quality": quality,
                                "seed": seed,
                                "updates": suite.training.updates,
                                "batch_episodes": suite.training.batch_episodes,
                                "last_episodes": suite.data.last_episodes,
                                "checkpoint_steps": steps,
                                "datasets": datasets,
                                "version": TRAINER_VERSION,
                            },
                            deps=sorted(set(datasets.values())),
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
                                        "backend": suite.backend,
                                        "version": EVALUATOR_VERSION,
                                    },
                                    deps=[train.id],
                                )
                            )
    return Plan(suite, jobs)


def topological_order(plan: Plan) -> list[str]:
    """Job ids with every dependency before its dependents (datasets, trains, evals)."""
    rank = {"dataset": 0, "train": 1, "eval": 2}

    def key(i: str) -> tuple:
        job = plan.jobs[i]
        # evals grouped by map, so a worker reuses its compiled environment
        return (rank[job.kind], job.config.get("task", ""), job.config.get("step", 0), i)

    return sorted(plan.jobs, key=key)
