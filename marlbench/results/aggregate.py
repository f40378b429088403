"""Aggregation rules (protocol.md §6): per seed first, then across seeds.

1. Per (label, task set, quality, seed, task): the metric (win rate, or average return) of
   the chosen checkpoint (final, best or the mean of the last k).
2. A run (label, task set, quality, seed) counts only when every test task of the set has a
   record. Per run: seen mean = unweighted mean over the set's seen tasks, unseen mean over its
   unseen tasks, total mean over all its test tasks.
3. Per seed, the qualities are averaged — only when every planned quality of that seed is
   complete (a seed is never averaged over fewer qualities); cross-set rows average the task
   sets, only for seeds complete in every set.
4. Across seeds: the statistic (mean, median or IQM) ± std (population, ddof = 0). A cell
   with fewer seeds than planned says so; a cell with none says why (failed, running, not run).

The single-task track (MADS4, protocol.md §8.4) has its own layouts, ``returns`` (method ×
map, Table 1) and ``returns-quality`` (map · data quality × method, Table 2): one cell per
(label, map, quality), never averaged over qualities, average return by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from marlbench.envs.tasksets import FAMILY_TITLES, get_task_set

CHECKPOINT_RULES = ("final", "best", "last_k")
STATS = ("mean", "median", "iqm")
RETURN_TABLES = ("returns", "returns-quality")  # the single-task track's layouts
RUN_KEYS = ["label", "task_set", "quality", "seed"]
CROSS_ROWS = (("seen", "Seen · Mean"), ("unseen", "Unseen · Mean"), ("total", "Total Mean"))


@dataclass(frozen=True)
class Metric:
    """What a table's cells measure: a record column, its scale in the table and how it
    prints. A rate lies in [0, 100] once scaled; a return has no fixed range."""

    name: str
    column: str  # the evaluation record's field
    scale: float  # record value × scale = table value
    noun: str  # "win rate (%)"
    digits: int  # decimals printed
    bounded: bool  # a rate in [0, 100] (after scaling)

    @property
    def title(self) -> str:
        return self.noun[:1].upper() + self.noun[1:]


METRICS = {
    "win_rate": Metric("win_rate", "win_rate", 100.0, "win rate (%)", 1, True),
    "return": Metric("return", "mean_return", 1.0, "return", 2, False),
}
# task set families whose maps have no win (the warehouse): return is their only metric
WINLESS_FAMILIES = ("rware",)


def get_metric(name: str) -> Metric:
    key = name.replace("-", "_")
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of: win-rate, return")
    return METRICS[key]


def default_metric(task_sets: list[str], table: str = "main") -> str:
    """Return for the single-task layouts and for results only on maps without a win (the
    warehouse); win rate otherwise (the multi-task tables' metric)."""
    if table in RETURN_TABLES:
        return "return"
    families = {get_task_set(t).family for t in task_sets}
    if families and families <= set(WINLESS_FAMILIES):
        return "return"
    return "win_rate"


class Coord(NamedTuple):
    """What a cell of a single-task table is: one (label, map's task set, data quality)."""

    label: str
    task_set: str
    quality: str


def select_checkpoint(records: pd.DataFrame, rule: str = "final", k: int = 3,
                      metric: str = "win_rate") -> pd.DataFrame:
    """One value of the metric's record column (``win_rate`` or ``mean_return``) per (label,
    task set, quality, seed, task) by the checkpoint rule.

    ``best`` picks, per run, the step with the highest mean of the metric over all test tasks
    (the selection the ODIS issue #5 reporter used); ``last_k`` averages the last k steps.
    """
    if rule not in CHECKPOINT_RULES:
        raise ValueError(f"unknown checkpoint rule {rule!r}; choose one of {CHECKPOINT_RULES}")
    column = get_metric(metric).column
    keys = RUN_KEYS + ["task"]
    if records.empty:
        return pd.DataFrame(columns=keys + ["split", column])
    if rule == "final":
        last = records.groupby(RUN_KEYS)["step"].transform("max")
        chosen = records[records["step"] == last]
    elif rule == "best":
        per_step = records.groupby(RUN_KEYS + ["step"])[column].mean().rename("score")
        best = per_step.reset_index().sort_values(
            RUN_KEYS + ["score", "step"], ascending=[True] * len(RUN_KEYS) + [False, False]
        ).drop_duplicates(RUN_KEYS)
        chosen = records.merge(best[RUN_KEYS + ["step"]], on=RUN_KEYS + ["step"])
    else:
        steps = records[RUN_KEYS + ["step"]].drop_duplicates()
        steps = steps.sort_values("step").groupby(RUN_KEYS).tail(k)
        chosen = records.merge(steps, on=RUN_KEYS + ["step"])
    return chosen.groupby(keys + ["split"], as_index=False)[column].mean()


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle half (⌊n/4⌋ trimmed from each end)."""
    x = np.sort(np.asarray(values, dtype=float))
    cut = int(np.floor(0.25 * x.size))
    return float(x[cut: x.size - cut].mean())


def statistic(values: np.ndarray, stat: str) -> float:
    if stat == "mean":
        return float(np.mean(values))
    if stat == "median":
        return float(np.median(values))
    if stat == "iqm":
        return iqm(values)
    raise ValueError(f"unknown statistic {stat!r}; choose one of {STATS}")


@dataclass
class Cell:
    value: float | None  # the statistic across seeds, in the metric's unit (win rate in %)
    std: float | None
    n_seeds: int
    expected: int = 0  # planned seeds (0 = unknown)
    reason: str = ""  # why the cell is missing or partial
    seeds: list[float] = field(default_factory=list)  # per-seed values, in the metric's unit
    digits: int = 1  # decimals printed

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def partial(self) -> bool:
        return not self.missing and 0 < self.n_seeds < self.expected


@dataclass
class Table:
    name: str
    title: str
    row_header: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell]
    rule: str
    stat: str = "mean"
    sections: list[int] = field(default_factory=list)  # rows after which a rule is drawn
    best_along: str = "row"  # bold the best value of each row (or "column")
    families: list[str] = field(default_factory=list)  # task set families, in row order
    metric: str = "win_rate"  # a key of METRICS
    coords: dict[tuple[str, str], Coord] = field(default_factory=dict)  # single-task cells

    @property
    def labels(self) -> list[str]:
        """The algorithm labels: the columns, or the rows of a method-per-row layout."""
        if self.coords:
            return list(dict.fromkeys(c.label for c in self.coords.values()))
        return self.rows if self.best_along == "column" else self.columns


MainTable = Table  # the main table is one Table among several


@dataclass
class Plan:
    """What was meant to run: planned qualities and seeds, and the eval jobs' states."""

    qualities: list[str] | None = None
    seeds: list[int] | None = None
    states: pd.DataFrame | None = None

    def reason(self, label: str, task_set: str | None = None,
               quality: str | None = None) -> str:
        st = self.states
        if st is None or st.empty or "label" not in st:
            return "no complete run"
        sel = st[st["label"] == label]
        if task_set is not None:
            sel = sel[sel["task_set"] == task_set]
        if quality is not None:
            sel = sel[sel["quality"] == quality]
        if sel.empty:
            return "not planned"
        counts = sel["state"].value_counts()
        for state, text in (("failed", "failed"), ("skipped", "skipped: a dependency failed"),
                            ("running", "still running, or interrupted"),
                            ("incomplete", "finished but its records are missing: run the "
                             "suite again to repair"),
                            ("not run", "not run yet")):
            if counts.get(state, 0):
                return f"{text} ({counts[state]} of {len(sel)} eval jobs)"
        return "incomplete"


def run_means(task_rates: pd.DataFrame, column: str = "win_rate") -> pd.DataFrame:
    """Seen / unseen / total means of ``column`` per complete run (label, task set, quality,
    seed)."""
    rows = []
    for (label, set_name, quality, seed), g in task_rates.groupby(RUN_KEYS):
        ts = get_task_set(set_name)
        rate = dict(zip(g["task"], g[column], strict=True))
        if any(t not in rate for t in ts.test):  # incomplete runs are never averaged
            continue
        rows.append({
            "label": label, "task_set": set_name, "quality": quality, "seed": seed,
            "seen": float(np.mean([rate[t] for t in ts.seen])),
            "unseen": float(np.mean([rate[t] for t in ts.unseen])) if ts.unseen else np.nan,
            "total": float(np.mean([rate[t] for t in ts.test])),
            **{f"task:{t}": rate[t] for t in ts.test},
        })
    return pd.DataFrame(rows)


def _planned_qualities(runs: pd.DataFrame, plan: Plan, label: str, set_name: str) -> list:
    if plan.qualities:
        return list(plan.qualities)
    mine = runs[(runs["label"] == label) & (runs["task_set"] == set_name)]
    return sorted(set(mine["quality"]))


def seed_means(runs: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Per (label, task set, seed): metrics averaged over the qualities, for seeds complete in
    every planned quality."""
    if runs.empty:
        return pd.DataFrame(columns=["label", "task_set", "seed"])
    out = []
    metric_cols = [c for c in runs.columns if c not in RUN_KEYS]
    for (label, set_name, seed), g in runs.groupby(["label", "task_set", "seed"]):
        if set(_planned_qualities(runs, plan, label, set_name)) - set(g["quality"]):
            continue
        out.append({"label": label, "task_set": set_name, "seed": seed,
                    **g[metric_cols].mean(numeric_only=True).to_dict()})
    return pd.DataFrame(out)


def _expected(plan: Plan, values: pd.Series | None = None) -> int:
    return len(plan.seeds) if plan.seeds else 0


def make_cell(per_seed: pd.Series, stat: str, plan: Plan, reason: str,
              metric: str = "win_rate") -> Cell:
    m = METRICS[metric]
    values = per_seed.dropna()
    expected = _expected(plan)
    if values.empty:
        return Cell(None, None, 0, expected, reason, digits=m.digits)
    pct = values.to_numpy(dtype=float) * m.scale
    cell = Cell(statistic(pct, stat), float(pct.std(ddof=0)), int(pct.size), expected,
                seeds=pct.tolist(), digits=m.digits)
    if cell.partial:
        cell.reason = f"{cell.n_seeds} of {expected} seeds; {reason}"
    return cell


def _cross_set(mine: pd.DataFrame, task_sets: list[str], metric: str) -> pd.Series:
    wide = mine[mine["task_set"].isin(task_sets)].pivot_table(
        index="seed", columns="task_set", values=metric) if not mine.empty else pd.DataFrame()
    if wide.empty:
        return pd.Series(dtype=float)
    return wide.reindex(columns=task_sets).dropna().mean(axis=1)


def _context(records: pd.DataFrame, rule: str, k: int, labels: list[str] | None,
             task_sets: list[str] | None, metric: str = "win_rate", kind: str = "multi"):
    """Complete runs' means, the labels and the task sets of one table: those of ``kind``
    (multi-task or single-task) when the results hold any, else all of them."""
    runs = run_means(select_checkpoint(records, rule, k, metric), get_metric(metric).column)
    labels = labels or list(dict.fromkeys(records["label"]))
    present = list(dict.fromkeys(records["task_set"]))
    task_sets = [t for t in (task_sets or present) if t in present] or present
    task_sets = [t for t in task_sets if get_task_set(t).kind == kind] or task_sets
    return runs, labels, task_sets


def families_of(task_sets: list[str]) -> dict[str, list[str]]:
    """Task sets grouped by family (SMAC, SMACv2, ...), in order of first appearance."""
    out: dict[str, list[str]] = {}
    for t in task_sets:
        out.setdefault(get_task_set(t).family, []).append(t)
    return out


def family_prefix(family: str, several: bool) -> str:
    return f"{FAMILY_TITLES.get(family, family)} · " if several else ""


def main_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
               labels: list[str] | None = None, task_sets: list[str] | None = None,
               stat: str = "mean", plan: Plan | None = None, metric: str = "win_rate") -> Table:
    """The STAIRS-Former main-table layout: Seen · <set> rows, Seen · Mean, Unseen · Mean,
    Total Mean; one column per algorithm label; win rate in % (or average return). Means never
    cross task set families: with several (e.g. SMAC and SMACv2 sets) each family gets its own
    Mean rows, prefixed by the family's name."""
    plan = plan or Plan()
    runs, labels, task_sets = _context(records, rule, k, labels, task_sets, metric)
    per_seed = seed_means(runs, plan)
    titles = {t: get_task_set(t).title for t in task_sets}
    fams = families_of(task_sets)
    several = len(fams) > 1
    rows: list[str] = []
    sections: list[int] = []
    for fam, sets in fams.items():
        rows += [f"Seen · {titles[t]}" for t in sets]
        sections.append(len(rows) - 1)
        rows += [family_prefix(fam, several) + r for _, r in CROSS_ROWS]
        sections.append(len(rows) - 1)
    cells: dict[tuple[str, str], Cell] = {}
    for label in labels:
        mine = per_seed[per_seed["label"] == label] if not per_seed.empty else per_seed
        for t in task_sets:
            values = mine[mine["task_set"] == t]["seen"] if not mine.empty else pd.Series()
            cells[(f"Seen · {titles[t]}", label)] = make_cell(
                values, stat, plan, plan.reason(label, t), metric)
        for fam, sets in fams.items():
            for mean, row in CROSS_ROWS:
                cells[(family_prefix(fam, several) + row, label)] = make_cell(
                    _cross_set(mine, sets, mean), stat, plan, plan.reason(label), metric)
    return Table("main", f"Average {METRICS[metric].noun}", "Scenario", rows, labels, cells,
                 rule, stat, sections=sections[:-1], families=list(fams), metric=metric)


def ablation_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
                   labels: list[str] | None = None, task_sets: list[str] | None = None,
                   stat: str = "mean", plan: Plan | None = None, metric: str = "win_rate") -> Table:
    """The STAIRS-Former ablation layout: one row per variant label; Seen · Mean,
    Unseen · Mean, Total Mean across the task sets present (per family when several)."""
    main = main_table(records, rule, k, labels, task_sets, stat, plan, metric)
    several = len(main.families) > 1
    cols = [family_prefix(f, several) + r for f in main.families for _, r in CROSS_ROWS]
    cells = {(label, col): main.cells[(col, label)] for label in main.columns for col in cols}
    return Table("ablation", f"Ablation: average {METRICS[metric].noun}", "Variant",
                 list(main.columns), cols, cells, rule, stat, best_along="column",
                 families=main.families, metric=metric)


def quality_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
                  labels: list[str] | None = None, task_sets: list[str] | None = None,
                  stat: str = "mean", plan: Plan | None = None, metric: str = "win_rate") -> Table:
    """Per task set and data quality: seen, unseen and total mean across seeds."""
    plan = plan or Plan()
    runs, labels, task_sets = _context(records, rule, k, labels, task_sets, metric)
    rows, cells, sections = [], {}, []
    for t in task_sets:
        title = get_task_set(t).title
        qualities = plan.qualities or sorted(set(records[records["task_set"] == t]["quality"]))
        for q in qualities:
            for mean, name in (("seen", "Seen"), ("unseen", "Unseen"), ("total", "Total")):
                row = f"{title} · {q} · {name}"
                rows.append(row)
                for label in labels:
                    values = _run_values(runs, label, t, q, mean)
                    cells[(row, label)] = make_cell(values, stat, plan,
                                                    plan.reason(label, t, q), metric)
            sections.append(len(rows) - 1)
    return Table("quality", f"{METRICS[metric].title} per data quality", "Task set · quality",
                 rows, labels, cells, rule, stat, sections=sections[:-1], metric=metric)


def task_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
               labels: list[str] | None = None, task_sets: list[str] | None = None,
               stat: str = "mean", plan: Plan | None = None, metric: str = "win_rate") -> Table:
    """Every test task (seen or unseen), averaged over the qualities per seed."""
    plan = plan or Plan()
    runs, labels, task_sets = _context(records, rule, k, labels, task_sets, metric)
    per_seed = seed_means(runs, plan)
    rows, cells, sections = [], {}, []
    for t in task_sets:
        ts = get_task_set(t)
        for task in ts.test:
            row = f"{ts.title} · {task} ({ts.split(task)})"
            rows.append(row)
            for label in labels:
                sel = (per_seed[(per_seed["label"] == label) & (per_seed["task_set"] == t)]
                       if not per_seed.empty else per_seed)
                col = f"task:{task}"
                values = sel[col] if not sel.empty and col in sel else pd.Series(dtype=float)
                cells[(row, label)] = make_cell(values, stat, plan, plan.reason(label, t),
                                                metric)
        sections.append(len(rows) - 1)
    return Table("task", f"{METRICS[metric].title} per test task", "Task", rows, labels, cells,
                 rule, stat, sections=sections[:-1], metric=metric)


def _run_values(runs: pd.DataFrame, label: str, set_name: str, quality: str,
                mean: str = "total") -> pd.Series:
    """Per-seed values of one (label, task set, quality) from ``run_means`` output."""
    if runs.empty:
        return pd.Series(dtype=float)
    sel = runs[(runs["label"] == label) & (runs["task_set"] == set_name)
               & (runs["quality"] == quality)]
    return sel[mean] if not sel.empty else pd.Series(dtype=float)


def single_task_sets(records: pd.DataFrame, task_sets: list[str] | None = None) -> list[str]:
    """The single-task sets (maps) of the results, in plan order, then order of appearance."""
    present = list(dict.fromkeys(records["task_set"])) if not records.empty else []
    ordered = [t for t in (task_sets or []) if t in present] + present
    return [t for t in dict.fromkeys(ordered) if get_task_set(t).kind == "single"]


def _map_qualities(records: pd.DataFrame, plan: Plan, set_name: str) -> list[str]:
    """The data qualities of one map: the planned ones it has records or eval jobs of (all
    planned ones when it has neither), else the ones its records hold."""
    held = set(records[records["task_set"] == set_name]["quality"])
    st = plan.states
    if st is not None and not st.empty and "task_set" in st:
        held |= set(st[st["task_set"] == set_name]["quality"].dropna())
    if plan.qualities:
        return [q for q in plan.qualities if q in held] or list(plan.qualities)
    return sorted(held)


def _returns_context(records, rule, k, labels, task_sets, plan, metric):
    runs, labels, _ = _context(records, rule, k, labels, task_sets, metric, kind="single")
    maps = single_task_sets(records, task_sets)
    qualities = {t: _map_qualities(records, plan, t) for t in maps}
    return runs, labels, maps, qualities


def _single_cell(runs, label, set_name, quality, stat, plan, metric) -> Cell:
    return make_cell(_run_values(runs, label, set_name, quality), stat, plan,
                     plan.reason(label, set_name, quality), metric)


def returns_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
                  labels: list[str] | None = None, task_sets: list[str] | None = None,
                  stat: str = "mean", plan: Plan | None = None,
                  metric: str = "return") -> Table:
    """MADS4 Table 1 layout: one row per method, one column per map (single-task set); each
    cell the statistic across seeds of the run's average return. With several data qualities,
    one block of rows per quality ("<label> · <quality>"); a quality a map lacks is missing."""
    plan = plan or Plan()
    runs, labels, maps, per_map = _returns_context(records, rule, k, labels, task_sets, plan,
                                                   metric)
    qualities = list(dict.fromkeys(q for t in maps for q in per_map[t]))
    if not plan.qualities:
        qualities.sort()
    several = len(qualities) > 1
    titles = {t: get_task_set(t).title for t in maps}
    rows, cells, coords, sections = [], {}, {}, []
    for q in qualities:
        for label in labels:
            row = f"{label} · {q}" if several else label
            rows.append(row)
            for t in maps:
                cells[(row, titles[t])] = _single_cell(runs, label, t, q, stat, plan, metric)
                coords[(row, titles[t])] = Coord(label, t, q)
        sections.append(len(rows) - 1)
    title = f"Average {METRICS[metric].noun} per map" + (
        " (one block per data quality)" if several else f" ({qualities[0]} data)"
        if qualities else "")
    return Table("returns", title, "Method · data" if several else "Method", rows,
                 [titles[t] for t in maps], cells, rule, stat, sections=sections[:-1],
                 best_along="column", families=list(families_of(maps)), metric=metric,
                 coords=coords)


def returns_quality_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
                          labels: list[str] | None = None, task_sets: list[str] | None = None,
                          stat: str = "mean", plan: Plan | None = None,
                          metric: str = "return") -> Table:
    """MADS4 Table 2 layout: one row per (map, data quality), one column per method."""
    plan = plan or Plan()
    runs, labels, maps, per_map = _returns_context(records, rule, k, labels, task_sets, plan,
                                                   metric)
    rows, cells, coords, sections = [], {}, {}, []
    for t in maps:
        for q in per_map[t]:
            row = f"{get_task_set(t).title} · {q}"
            rows.append(row)
            for label in labels:
                cells[(row, label)] = _single_cell(runs, label, t, q, stat, plan, metric)
                coords[(row, label)] = Coord(label, t, q)
        sections.append(len(rows) - 1)
    return Table("returns-quality", f"Average {METRICS[metric].noun} per map and data quality",
                 "Map · data", rows, labels, cells, rule, stat, sections=sections[:-1],
                 families=list(families_of(maps)), metric=metric, coords=coords)


BUILDERS = {"main": main_table, "quality": quality_table, "task": task_table,
            "ablation": ablation_table, "returns": returns_table,
            "returns-quality": returns_quality_table}
MULTI_TABLES = ("main", "quality", "task", "ablation")
