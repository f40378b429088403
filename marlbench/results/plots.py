"""Report figures (matplotlib, PNG and SVG): learning curves with confidence bands, grouped
seen / unseen / total bars (multi-task) or per-map bars (single-task), performance profiles
and the probability-of-improvement matrix. Win rates are drawn in % on [0, 100]; returns on
their own range."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from marlbench.envs.tasksets import get_task_set  # noqa: E402
from marlbench.results.aggregate import (  # noqa: E402
    CROSS_ROWS,
    Table,
    default_metric,
    family_prefix,
    get_metric,
)
from marlbench.results.robust import RobustReport, profile_intervals, scores_by_label  # noqa: E402


def _save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _band(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of a normal 95 % interval across seeds (0 for one seed)."""
    if values.size <= 1:
        return float(values.mean()), 0.0
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(values.size))


def learning_curves(records: pd.DataFrame, labels: list[str], out: Path,
                    metric: str | None = None) -> list[Path]:
    """Total-mean metric over training updates, one panel per (task set, quality), one line
    per algorithm with a 95 % band across seeds. ``metric`` None: each panel its task set's
    default (return on the warehouse, win rate elsewhere)."""
    if records.empty:
        return []
    per_step = []
    for (label, set_name, quality, seed, step), g in records.groupby(
            ["label", "task_set", "quality", "seed", "step"]):
        if set(get_task_set(set_name).test) <= set(g["task"]):
            m = get_metric(metric or default_metric([set_name]))
            per_step.append((label, set_name, quality, seed, step,
                             g[m.column].mean() * m.scale))
    df = pd.DataFrame(per_step, columns=["label", "task_set", "quality", "seed", "step", "v"])
    panels = list(df.groupby(["task_set", "quality"]).groups) if not df.empty else []
    if not panels:
        return []
    cols = min(4, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (set_name, quality) in zip(axes.flat, panels, strict=False):
        m = get_metric(metric or default_metric([set_name]))
        sel = df[(df["task_set"] == set_name) & (df["quality"] == quality)]
        for label in labels:
            mine = sel[sel["label"] == label]
            if mine.empty:
                continue
            stats = [(step, *_band(g["v"].to_numpy())) for step, g in mine.groupby("step")]
            steps, mean, half = (np.array(x) for x in zip(*stats, strict=True))
            ax.plot(steps, mean, marker="o", ms=3, label=label)
            ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
        ax.set_title(f"{get_task_set(set_name).title} · {quality}", fontsize=9)
        ax.set_xlabel("training updates (task batches)")
        ax.set_ylabel(m.noun if m.bounded else "average return")
        if m.bounded:
            ax.set_ylim(-2, 102)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(6, len(names)),
               bbox_to_anchor=(0.5, 1.1))
    fig.tight_layout()
    return _save(fig, out, "learning_curves")


def split_bars(table: Table, out: Path) -> list[Path]:
    """Grouped bars: Seen · Mean, Unseen · Mean, Total Mean per algorithm (± std); one figure
    per task set family when the table has several."""
    labels = table.columns
    families = table.families or [None]
    several = len(families) > 1
    paths: list[Path] = []
    for fam in families:
        prefix = family_prefix(fam, several) if fam else ""
        rows = [prefix + r for _, r in CROSS_ROWS]
        width = 0.8 / len(rows)
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels)), 3.5))
        x = np.arange(len(labels))
        for i, row in enumerate(rows):
            cells = [table.cells[(row, lab)] for lab in labels]
            vals = [np.nan if c.missing else c.value for c in cells]
            errs = [0 if c.missing else c.std for c in cells]
            ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, yerr=errs, capsize=2,
                   label=row)
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_ylabel(get_metric(table.metric).noun)
        ax.legend(fontsize=8)
        paths += _save(fig, out, f"seen_unseen_total_{fam}" if several else "seen_unseen_total")
    return paths


def map_bars(table: Table, out: Path) -> list[Path]:
    """Grouped bars of a single-task ``returns`` table: one group per map, one bar per row
    (method, or method · quality), ± std across seeds."""
    if not table.rows or not table.columns:
        return []
    width = 0.8 / len(table.rows)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(table.columns)), 3.5))
    x = np.arange(len(table.columns))
    for i, row in enumerate(table.rows):
        cells = [table.cells[(row, col)] for col in table.columns]
        ax.bar(x + (i - (len(table.rows) - 1) / 2) * width,
               [np.nan if c.missing else c.value for c in cells], width,
               yerr=[0 if c.missing else c.std for c in cells], capsize=2, label=row)
    ax.set_xticks(x, table.columns, rotation=20, ha="right")
    m = get_metric(table.metric)
    ax.set_ylabel(m.noun if m.bounded else "average return")
    ax.legend(fontsize=8)
    return _save(fig, out, "returns_per_map")


def performance_profiles(task_rates: pd.DataFrame, labels: list[str], out: Path,
                         reps: int = 2000, seed: int = 0,
                         metric: str = "win_rate") -> list[Path]:
    """Fraction of (run, task) scores above τ: τ over [0, 100] % for win rates, over the
    scores' own range for returns."""
    m = get_metric(metric)
    _, _, scores = scores_by_label(task_rates, labels, m.column)
    if not scores:
        return []
    if m.bounded:
        taus = np.linspace(0, 1, 51)
    else:
        every = np.concatenate([np.concatenate(s) for s in scores.values()])
        taus = np.linspace(float(every.min()), float(every.max()), 51)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label in labels:
        if label not in scores:
            continue
        point, low, high = profile_intervals(scores[label], taus, reps=reps, seed=seed)
        ax.plot(taus * m.scale, point, label=label)
        ax.fill_between(taus * m.scale, low, high, alpha=0.2)
    ax.set_xlabel(f"{m.noun.replace(' (%)', '')} τ{' (%)' if m.bounded else ''}")
    ax.set_ylabel("fraction of runs × tasks with score > τ")
    ax.legend(fontsize=8)
    return _save(fig, out, "performance_profiles")


def improvement_matrix(rep: RobustReport, out: Path) -> list[Path]:
    labels = rep.labels
    if len(labels) < 2 or not rep.improvement:
        return []
    m = np.full((len(labels), len(labels)), np.nan)
    for i, x in enumerate(labels):
        for j, y in enumerate(labels):
            if (x, y) in rep.improvement:
                m[i, j] = rep.improvement[(x, y)].point
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="RdBu")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title("P(row > column)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, out, "probability_of_improvement")
