"""Aggregation rules (protocol.md §6): per seed first, then across seeds.

1. Per (label, task set, quality, seed, task): the win rate of the chosen checkpoint
   (final, best or the mean of the last k).
2. Per seed: seen mean = unweighted mean over the set's seen tasks, unseen mean over its unseen
   tasks, total mean over all its test tasks; then averaged over the qualities present.
3. Cross-set rows: the unweighted mean of the per-set values, still per seed.
4. Across seeds: mean ± std (population std, ddof = 0) of the per-seed values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from marlbench.envs.tasksets import get_task_set

CHECKPOINT_RULES = ("final", "best", "last_k")
RUN_KEYS = ["label", "task_set", "quality", "seed"]


def select_checkpoint(records: pd.DataFrame, rule: str = "final", k: int = 3) -> pd.DataFrame:
    """One win rate per (label, task set, quality, seed, task) by the checkpoint rule.

    ``best`` picks, per run, the step with the highest mean win rate over all test tasks (the
    selection the ODIS issue #5 reporter used); ``last_k`` averages the last k steps.
    """
    if rule not in CHECKPOINT_RULES:
        raise ValueError(f"unknown checkpoint rule {rule!r}; choose one of {CHECKPOINT_RULES}")
    keys = RUN_KEYS + ["task"]
    if records.empty:
        return pd.DataFrame(columns=keys + ["split", "win_rate"])
    if rule == "final":
        last = records.groupby(RUN_KEYS)["step"].transform("max")
        chosen = records[records["step"] == last]
    elif rule == "best":
        per_step = records.groupby(RUN_KEYS + ["step"])["win_rate"].mean().rename("score")
        best = per_step.reset_index().sort_values(
            RUN_KEYS + ["score", "step"], ascending=[True] * len(RUN_KEYS) + [False, False]
        ).drop_duplicates(RUN_KEYS)
        chosen = records.merge(best[RUN_KEYS + ["step"]], on=RUN_KEYS + ["step"])
    else:
        steps = records[RUN_KEYS + ["step"]].drop_duplicates()
        steps = steps.sort_values("step").groupby(RUN_KEYS).tail(k)
        chosen = records.merge(steps, on=RUN_KEYS + ["step"])
    return chosen.groupby(keys + ["split"], as_index=False)["win_rate"].mean()


def per_seed_set_means(task_rates: pd.DataFrame) -> pd.DataFrame:
    """Seen / unseen / total means per (label, task set, seed), averaged over qualities."""
    rows = []
    for (label, set_name, quality, seed), g in task_rates.groupby(RUN_KEYS):
        ts = get_task_set(set_name)
        rate = dict(zip(g["task"], g["win_rate"], strict=True))
        missing = [t for t in ts.test if t not in rate]
        if missing:  # incomplete runs are not averaged over fewer tasks
            continue
        rows.append({
            "label": label, "task_set": set_name, "quality": quality, "seed": seed,
            "seen": sum(rate[t] for t in ts.seen) / len(ts.seen),
            "unseen": sum(rate[t] for t in ts.unseen) / len(ts.unseen) if ts.unseen else None,
            "total": sum(rate[t] for t in ts.test) / len(ts.test),
        })
    df = pd.DataFrame(rows, columns=["label", "task_set", "quality", "seed", "seen", "unseen",
                                     "total"])
    return df.groupby(["label", "task_set", "seed"], as_index=False)[
        ["seen", "unseen", "total"]].mean()


@dataclass
class Cell:
    mean: float | None
    std: float | None
    n_seeds: int

    @property
    def missing(self) -> bool:
        return self.mean is None


def _cell(values: pd.Series) -> Cell:
    values = values.dropna()
    if values.empty:
        return Cell(None, None, 0)
    return Cell(float(values.mean() * 100), float(values.std(ddof=0) * 100), int(values.size))


@dataclass
class MainTable:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell]
    rule: str


def main_table(records: pd.DataFrame, rule: str = "final", k: int = 3,
               labels: list[str] | None = None, task_sets: list[str] | None = None) -> MainTable:
    """The STAIRS-Former main-table layout: Seen · <set> rows, Seen · Mean, Unseen · Mean,
    Total Mean; one column per algorithm label; win rate in % as mean ± std across seeds."""
    per_set = per_seed_set_means(select_checkpoint(records, rule, k))
    labels = labels or list(dict.fromkeys(records["label"]))
    present = list(dict.fromkeys(records["task_set"]))
    task_sets = [t for t in (task_sets or present) if t in present] or present
    titles = {t: get_task_set(t).title for t in task_sets}
    rows = [f"Seen · {titles[t]}" for t in task_sets] + ["Seen · Mean", "Unseen · Mean",
                                                          "Total Mean"]
    cells: dict[tuple[str, str], Cell] = {}
    for label in labels:
        mine = per_set[per_set["label"] == label]
        for t in task_sets:
            cells[(f"Seen · {titles[t]}", label)] = _cell(mine[mine["task_set"] == t]["seen"])
        # cross-set means per seed, only over seeds that have every set
        wide = mine[mine["task_set"].isin(task_sets)].pivot_table(
            index="seed", columns="task_set", values=["seen", "unseen", "total"])
        for metric, row in (("seen", "Seen · Mean"), ("unseen", "Unseen · Mean"),
                            ("total", "Total Mean")):
            if wide.empty or metric not in wide.columns.get_level_values(0):
                cells[(row, label)] = Cell(None, None, 0)
                continue
            block = wide[metric].reindex(columns=task_sets)
            cells[(row, label)] = _cell(block.dropna().mean(axis=1))
    return MainTable(rows, labels, cells, rule)
