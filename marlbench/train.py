"""The offline training loop: task batches in shuffled rounds, checkpoints, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from marlbench.data.dataset import TaskData
from marlbench.learners.base import Learner

Progress = Callable[[int, int, str], None]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return the numpy generator every random draw of a job comes from."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


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
) -> None:
    """Run ``updates`` optimiser steps, one per task batch; each round visits every seen task
    once in shuffled order (the reference ``baseline_run`` discipline)."""
    tasks = sorted(data)
    order: list[str] = []
    pending = sorted(checkpoint_steps)
    start = time.time()
    per_round = getattr(learner.config, "update_discipline", "per_task") == "per_round"
    step = 0
    next_log = log_every
    while step < updates:
        if per_round:  # every seen task's batch, then one optimiser step
            round_tasks = [tasks[i] for i in rng.permutation(len(tasks))]
            round_tasks = round_tasks[: updates - step]
            metrics = learner.update_round(
                {t: data[t].sample(batch_episodes, rng) for t in round_tasks})
            task = round_tasks[-1]
            step += len(round_tasks)
        else:
            if not order:
                order = [tasks[i] for i in rng.permutation(len(tasks))]
            task = order.pop()
            metrics = learner.update(data[task].sample(batch_episodes, rng), task)
            step += 1
        if step >= next_log or step == updates:
            log({"step": step, "task": task, "time_s": round(time.time() - start, 3),
                 **{k: float(v) for k, v in metrics.items()}})  # the only host sync
            next_log = step + log_every
        while pending and pending[0] <= step:
            save_checkpoint(pending.pop(0))
        if progress:
            progress(step, updates, "train")
