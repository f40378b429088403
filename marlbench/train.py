"""The offline training loop: task batches in shuffled rounds, checkpoints, metrics; for one
job, or for a fused group of jobs that share a seed and train on different data."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from marlbench.data.dataset import Batch, TaskData, stack_batches
from marlbench.learners.base import Learner

Progress = Callable[[int, int, str], None]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return the numpy generator a job's batches are sampled from."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def order_stream(seed: int) -> np.random.Generator:
    """The generator of a job's task order: a stream of its own, apart from batch sampling, so
    that jobs of one seed visit the tasks in the same order whatever their data (which lets
    them train fused)."""
    return np.random.default_rng([seed, 1])


def train(
    learner: Learner,
    data: dict[str, TaskData],
    updates: int,
    batch_episodes: int,
    rng: np.random.Generator,
    checkpoint_steps: list[int],
    save_checkpoint: Callable[[int], None],
    log: Callable[[dict], None],
    progress: Progress | None = None,
    log_every: int = 10,
    order_rng: np.random.Generator | None = None,
) -> None:
    """Train one job: ``updates`` task batches (see :func:`train_group`); the task order comes
    from ``order_rng`` (default: ``rng``, the sampling stream)."""
    train_group(learner, [data], updates, batch_episodes, [rng], order_rng or rng,
                checkpoint_steps, lambda _j, step: save_checkpoint(step),
                lambda _j, row: log(row), progress, log_every)


def train_group(
    learner: Learner,
    data: list[dict[str, TaskData]],
    updates: int,
    batch_episodes: int,
    rngs: list[np.random.Generator],
    order_rng: np.random.Generator,
    checkpoint_steps: list[int],
    save_checkpoint: Callable[[int, int], None],
    log: Callable[[int, dict], None],
    progress: Progress | None = None,
    log_every: int = 10,
) -> None:
    """Run ``updates`` task batches for each of K jobs: job j samples from ``data[j]`` with
    ``rngs[j]``; all follow one task order (``order_rng``). Each round visits every seen task
    once in shuffled order (the reference ``baseline_run`` discipline): one optimiser step per
    task batch (``per_task``) or one per round (``per_round``). With K > 1 the learner is a
    fused group (:func:`marlbench.learners.base.fuse`) and the K batches of a task are stacked;
    ``save_checkpoint(j, step)`` and ``log(j, row)`` are per job."""
    k = len(data)
    if (learner.fused or 1) != k or len(rngs) != k:
        raise ValueError(f"{k} jobs' data for a learner fused over {learner.fused or 1}")
    tasks = sorted(data[0])
    if hasattr(learner, "observe_data"):  # learners that read their data's statistics
        learner.observe_data(data)

    def sample(task: str) -> Batch:
        batches = [d[task].sample(batch_episodes, r) for d, r in zip(data, rngs, strict=True)]
        return batches[0] if learner.fused is None else stack_batches(batches)

    order: list[str] = []
    pending = sorted(checkpoint_steps)
    start = time.time()
    per_round = getattr(learner.config, "update_discipline", "per_task") == "per_round"
    step = 0
    next_log = log_every
    while step < updates:
        if per_round:  # every seen task's batch, then one optimiser step
            round_tasks = [tasks[i] for i in order_rng.permutation(len(tasks))]
            round_tasks = round_tasks[: updates - step]
            metrics = learner.update_round({t: sample(t) for t in round_tasks})
            task = round_tasks[-1]
            step += len(round_tasks)
        else:
            if not order:
                order = [tasks[i] for i in order_rng.permutation(len(tasks))]
            task = order.pop()
            metrics = learner.update(sample(task), task)
            step += 1
        if step >= next_log or step == updates:
            row = {"step": step, "task": task, "time_s": round(time.time() - start, 3)}
            values = {n: torch.as_tensor(v).detach().cpu() for n, v in metrics.items()}
            for j in range(k):  # the only host sync
                log(j, {**row, **{n: float(v[j] if v.dim() else v) for n, v in values.items()}})
            next_log = step + log_every
        while pending and pending[0] <= step:
            at = pending.pop(0)
            for j in range(k):
                save_checkpoint(j, at)
        if progress:
            progress(step, updates, "train")
