"""Robust aggregate statistics with stratified-bootstrap confidence intervals (the rliable
recipe, Agarwal et al. 2021), written on numpy.

Scores of one algorithm are a list of per-task arrays of run scores (runs = seeds; a task =
one (task set, quality, test task) cell), so algorithms and tasks may have different numbers of
runs. The bootstrap resamples the runs of every task independently (stratified by task), and
percentile intervals are taken over ``reps`` replicates drawn from ``np.random.default_rng``
seeded by ``seed``.

- mean: mean over tasks of the mean over runs;
- median: median over tasks of the mean over runs;
- IQM: mean of the middle 50 % of all (run, task) scores;
- optimality gap: γ − mean of min(score, γ), γ = 1;
- probability of improvement P(X > Y): mean over tasks of the Mann-Whitney statistic between
  the runs of X and Y on that task (ties count ½);
- performance profile: fraction of (run, task) scores above τ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Scores = list[np.ndarray]  # one array of run scores per task

METRICS = ("median", "iqm", "mean", "optimality_gap")


def _flat(scores: Scores) -> np.ndarray:
    return np.concatenate([np.asarray(s, dtype=float) for s in scores])


def iqm(scores: Scores) -> float:
    x = np.sort(_flat(scores))
    cut = int(np.floor(0.25 * x.size))
    return float(x[cut: x.size - cut].mean())


def mean(scores: Scores) -> float:
    return float(np.mean([np.mean(s) for s in scores]))


def median(scores: Scores) -> float:
    return float(np.median([np.mean(s) for s in scores]))


def optimality_gap(scores: Scores, gamma: float = 1.0) -> float:
    return float(gamma - np.minimum(_flat(scores), gamma).mean())


AGGREGATES: dict[str, Callable[[Scores], float]] = {
    "median": median, "iqm": iqm, "mean": mean, "optimality_gap": optimality_gap}


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y) averaged over tasks; x and y list the same tasks in the same order."""
    if len(x) != len(y):
        raise ValueError("both algorithms need scores on the same tasks")
    per_task = []
    for xs, ys in zip(x, y, strict=True):
        xs, ys = np.asarray(xs, float)[:, None], np.asarray(ys, float)[None, :]
        per_task.append(float(((xs > ys) + 0.5 * (xs == ys)).mean()))
    return float(np.mean(per_task))


def performance_profile(scores: Scores, taus: np.ndarray) -> np.ndarray:
    flat = _flat(scores)
    return np.array([(flat > t).mean() for t in taus])


def _resample(scores: Scores, rng: np.random.Generator) -> Scores:
    return [np.asarray(s)[rng.integers(0, len(s), len(s))] for s in scores]


@dataclass
class Interval:
    point: float
    low: float
    high: float


def bootstrap(stat: Callable[..., float | np.ndarray], *samples: Scores, reps: int = 2000,
              seed: int = 0, alpha: float = 0.05) -> tuple:
    """Point estimate and percentile interval of ``stat(*samples)`` under the stratified
    bootstrap (each sample's tasks resampled independently)."""
    rng = np.random.default_rng(seed)
    point = np.asarray(stat(*samples), dtype=float)
    draws = np.stack([np.asarray(stat(*(_resample(s, rng) for s in samples)), dtype=float)
                      for _ in range(reps)])
    low = np.percentile(draws, 100 * alpha / 2, axis=0)
    high = np.percentile(draws, 100 * (1 - alpha / 2), axis=0)
    return point, low, high


def aggregate_intervals(scores: Scores, metrics: Sequence[str] = METRICS, reps: int = 2000,
                        seed: int = 0) -> dict[str, Interval]:
    def all_metrics(s: Scores) -> np.ndarray:
        return np.array([AGGREGATES[m](s) for m in metrics])

    point, low, high = bootstrap(all_metrics, scores, reps=reps, seed=seed)
    return {m: Interval(float(p), float(lo), float(hi))
            for m, p, lo, hi in zip(metrics, point, low, high, strict=True)}


def improvement_interval(x: Scores, y: Scores, reps: int = 2000, seed: int = 0) -> Interval:
    point, low, high = bootstrap(probability_of_improvement, x, y, reps=reps, seed=seed)
    return Interval(float(point), float(low), float(high))


def profile_intervals(scores: Scores, taus: np.ndarray, reps: int = 2000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return bootstrap(lambda s: performance_profile(s, taus), scores, reps=reps, seed=seed)


def scores_by_label(task_rates: pd.DataFrame, labels: Sequence[str]
                    ) -> tuple[list[tuple], dict[str, list[tuple]], dict[str, Scores]]:
    """Per label, the run scores of every (task set, quality, test task) of its complete runs
    (``select_checkpoint`` output): the tasks every label has, each label's tasks, and its
    scores in that order."""
    from marlbench.envs.tasksets import get_task_set

    out: dict[str, Scores] = {}
    tasks_of: dict[str, list[tuple]] = {}
    for label in labels:
        mine = task_rates[task_rates["label"] == label]
        complete = []
        for keys, g in mine.groupby(["task_set", "quality", "seed"]):
            if set(get_task_set(keys[0]).test) <= set(g["task"]):
                complete.append(g)
        if not complete:
            continue
        rows = pd.concat(complete)
        grouped = rows.groupby(["task_set", "quality", "task"])["win_rate"]
        tasks_of[label] = list(grouped.groups)
        out[label] = [g.to_numpy(dtype=float) for _, g in grouped]
    common = sorted(set.intersection(*(set(t) for t in tasks_of.values()))) if tasks_of else []
    return common, tasks_of, out


def restrict(scores: Scores, tasks: list[tuple], keep: list[tuple]) -> Scores:
    index = {t: i for i, t in enumerate(tasks)}
    return [scores[index[t]] for t in keep]


@dataclass
class RobustReport:
    labels: list[str]
    intervals: dict[str, dict[str, Interval]]  # label → metric → interval (win rate, 0–1)
    improvement: dict[tuple[str, str], Interval]  # (x, y) → P(X > Y) on the common tasks
    n_runs: dict[str, int]
    n_tasks: dict[str, int]
    n_common: int
    reps: int
    seed: int


def robust_report(task_rates: pd.DataFrame, labels: Sequence[str], reps: int = 2000,
                  seed: int = 0) -> RobustReport:
    common, tasks, scores = scores_by_label(task_rates, labels)
    present = [lab for lab in labels if lab in scores]
    intervals = {lab: aggregate_intervals(scores[lab], reps=reps, seed=seed) for lab in present}
    improvement = {}
    if common:
        for x in present:
            for y in present:
                if x != y:
                    improvement[(x, y)] = improvement_interval(
                        restrict(scores[x], tasks[x], common),
                        restrict(scores[y], tasks[y], common), reps=reps, seed=seed)
    runs = {lab: int(max(len(s) for s in scores[lab])) for lab in present}
    return RobustReport(present, intervals, improvement, runs,
                        {lab: len(tasks[lab]) for lab in present}, len(common), reps, seed)
