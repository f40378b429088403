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
- optimality gap: γ − mean of min(score, γ), γ = 1 (win rates only: a return has no γ);
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
UNBOUNDED_METRICS = ("median", "iqm", "mean")  # for returns, which have no optimum γ


@dataclass
class Padded:
    """Scores as a batch of replicates: ``values`` (R, tasks, max runs), padded where a task
    has fewer runs; ``mask`` (tasks, max runs) marks the real runs. Every statistic below is
    computed on such a batch at once, the point estimate being a batch of one."""

    values: np.ndarray
    mask: np.ndarray

    @classmethod
    def of(cls, scores: Scores) -> Padded:
        arrays = [np.asarray(s, dtype=float).ravel() for s in scores]
        if not arrays or any(a.size == 0 for a in arrays):
            raise ValueError("every task needs at least one run score")
        width = max(a.size for a in arrays)
        values = np.zeros((1, len(arrays), width))
        mask = np.zeros((len(arrays), width), dtype=bool)
        for t, a in enumerate(arrays):
            values[0, t, : a.size], mask[t, : a.size] = a, True
        return cls(values, mask)

    @property
    def counts(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    def resample(self, rng: np.random.Generator, reps: int) -> Padded:
        """``reps`` stratified-bootstrap replicates: each task's runs drawn with replacement
        from that task's own runs."""
        _, tasks, width = self.values.shape
        idx = (rng.random((reps, tasks, width)) * self.counts[None, :, None]).astype(np.intp)
        picked = np.take_along_axis(np.broadcast_to(self.values, (reps, tasks, width)), idx, 2)
        return Padded(picked, self.mask)

    def task_means(self) -> np.ndarray:  # (R, tasks)
        return np.where(self.mask, self.values, 0.0).sum(axis=2) / self.counts

    def flat(self) -> np.ndarray:  # (R, all real run scores)
        return self.values[:, self.mask]


def _iqm(b: Padded) -> np.ndarray:
    x = np.sort(b.flat(), axis=1)
    cut = int(np.floor(0.25 * x.shape[1]))
    return x[:, cut: x.shape[1] - cut].mean(axis=1)


def _optimality_gap(b: Padded, gamma: float = 1.0) -> np.ndarray:
    return gamma - np.minimum(b.flat(), gamma).mean(axis=1)


BATCHED: dict[str, Callable[[Padded], np.ndarray]] = {
    "median": lambda b: np.median(b.task_means(), axis=1),
    "iqm": _iqm,
    "mean": lambda b: b.task_means().mean(axis=1),
    "optimality_gap": _optimality_gap,
}


def _one(metric: str, scores: Scores) -> float:
    return float(BATCHED[metric](Padded.of(scores))[0])


def iqm(scores: Scores) -> float:
    """Mean of the middle 50 % of all (run, task) scores."""
    return _one("iqm", scores)


def mean(scores: Scores) -> float:
    return _one("mean", scores)


def median(scores: Scores) -> float:
    return _one("median", scores)


def optimality_gap(scores: Scores, gamma: float = 1.0) -> float:
    return float(_optimality_gap(Padded.of(scores), gamma)[0])


def _improvement(x: Padded, y: Padded) -> np.ndarray:
    """P(X > Y) per replicate: per task the Mann-Whitney statistic over the real runs of both
    (ties ½), then the mean over tasks."""
    xv, yv = x.values[:, :, :, None], y.values[:, :, None, :]
    wins = (xv > yv) + 0.5 * (xv == yv)
    pairs = x.mask[:, :, None] & y.mask[:, None, :]
    per_task = (wins * pairs).sum(axis=(2, 3)) / pairs.sum(axis=(1, 2))
    return per_task.mean(axis=1)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y) averaged over tasks; x and y list the same tasks in the same order."""
    if len(x) != len(y):
        raise ValueError("both algorithms need scores on the same tasks")
    return float(_improvement(Padded.of(x), Padded.of(y))[0])


def _profile(b: Padded, taus: np.ndarray) -> np.ndarray:  # (R, taus)
    return (b.flat()[:, :, None] > np.asarray(taus)[None, None, :]).mean(axis=1)


def performance_profile(scores: Scores, taus: np.ndarray) -> np.ndarray:
    """Fraction of (run, task) scores above each τ."""
    return _profile(Padded.of(scores), taus)[0]


@dataclass
class Interval:
    point: float
    low: float
    high: float


def bootstrap(stat: Callable[..., np.ndarray], *samples: Scores, reps: int = 2000,
              seed: int = 0, alpha: float = 0.05, chunk: int = 250) -> tuple:
    """Point estimate and percentile interval of a batched statistic (``stat(*Padded)`` →
    one value, or one row, per replicate) under the stratified bootstrap: each sample's tasks
    resampled independently, ``chunk`` replicates at a time to bound memory."""
    rng = np.random.default_rng(seed)
    padded = [Padded.of(s) for s in samples]
    point = np.asarray(stat(*padded), dtype=float)[0]
    draws = np.concatenate([
        np.asarray(stat(*(p.resample(rng, min(chunk, reps - start)) for p in padded)),
                   dtype=float)
        for start in range(0, reps, chunk)])
    low = np.percentile(draws, 100 * alpha / 2, axis=0)
    high = np.percentile(draws, 100 * (1 - alpha / 2), axis=0)
    return point, low, high


def aggregate_intervals(scores: Scores, metrics: Sequence[str] = METRICS, reps: int = 2000,
                        seed: int = 0) -> dict[str, Interval]:
    def all_metrics(b: Padded) -> np.ndarray:
        return np.stack([BATCHED[m](b) for m in metrics], axis=1)

    point, low, high = bootstrap(all_metrics, scores, reps=reps, seed=seed)
    return {m: Interval(float(p), float(lo), float(hi))
            for m, p, lo, hi in zip(metrics, point, low, high, strict=True)}


def improvement_interval(x: Scores, y: Scores, reps: int = 2000, seed: int = 0) -> Interval:
    if len(x) != len(y):
        raise ValueError("both algorithms need scores on the same tasks")
    point, low, high = bootstrap(_improvement, x, y, reps=reps, seed=seed)
    return Interval(float(point), float(low), float(high))


def profile_intervals(scores: Scores, taus: np.ndarray, reps: int = 2000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return bootstrap(lambda b: _profile(b, taus), scores, reps=reps, seed=seed)


def scores_by_label(task_rates: pd.DataFrame, labels: Sequence[str], column: str = "win_rate"
                    ) -> tuple[list[tuple], dict[str, list[tuple]], dict[str, Scores]]:
    """Per label, the run scores (``column``: win_rate or mean_return) of every (task set,
    quality, test task) of its complete runs (``select_checkpoint`` output): the tasks every
    label has, each label's tasks, and its scores in that order."""
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
        grouped = rows.groupby(["task_set", "quality", "task"])[column]
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
    intervals: dict[str, dict[str, Interval]]  # label → statistic → interval (record units)
    improvement: dict[tuple[str, str], Interval]  # (x, y) → P(X > Y) on the common tasks
    n_runs: dict[str, int]
    n_tasks: dict[str, int]
    n_common: int
    reps: int
    seed: int
    metric: str = "win_rate"  # win_rate (0–1 in intervals) or return
    statistics: tuple[str, ...] = METRICS


def robust_report(task_rates: pd.DataFrame, labels: Sequence[str], reps: int = 2000,
                  seed: int = 0, metric: str = "win_rate") -> RobustReport:
    """Robust aggregates of ``select_checkpoint(..., metric=metric)`` output; on returns
    without the optimality gap (a return has no optimum γ)."""
    from marlbench.results.aggregate import get_metric

    m = get_metric(metric)
    stats = METRICS if m.bounded else UNBOUNDED_METRICS
    common, tasks, scores = scores_by_label(task_rates, labels, m.column)
    present = [lab for lab in labels if lab in scores]
    intervals = {lab: aggregate_intervals(scores[lab], stats, reps=reps, seed=seed)
                 for lab in present}
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
                        {lab: len(tasks[lab]) for lab in present}, len(common), reps, seed,
                        m.name, stats)
