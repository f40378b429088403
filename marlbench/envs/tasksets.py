"""Task sets: the published seen/unseen splits with their test-task order (protocol.md §1), and
the single-task sets of the offline single-task track (train and test on one map, MADS4's
protocol.md §8.4)."""

from __future__ import annotations

from dataclasses import dataclass

from marlbench.envs.maps import get_map


@dataclass(frozen=True)
class TaskSet:
    """Seen (training) tasks and the ordered test tasks of one benchmark task set."""

    name: str
    title: str
    seen: tuple[str, ...]
    test: tuple[str, ...]
    source: str
    backends: tuple[str, ...]
    family: str = "smac"  # tables average task sets only within one family
    kind: str = "multi"  # "multi" (seen/unseen splits) or "single" (one map, no unseen split)

    @property
    def unseen(self) -> tuple[str, ...]:
        return tuple(t for t in self.test if t not in self.seen)

    def split(self, task: str) -> str:
        """'seen' or 'unseen' for a test task of this set."""
        if task not in self.test:
            raise KeyError(f"{task!r} is not a test task of {self.name}")
        return "seen" if task in self.seen else "unseen"

    def maps(self) -> list:
        return [get_map(t) for t in self.test]


_PAPERS = "ODIS / HiSSD / STAIRS-Former task configs (src/config/tasks/*.yaml)"

TASK_SETS: dict[str, TaskSet] = {
    ts.name: ts
    for ts in [
        TaskSet(
            "marine_easy",
            "Marine-Easy",
            ("3m", "5m", "10m"),
            ("3m", "4m", "5m", "6m", "7m", "8m", "9m", "10m", "11m", "12m"),
            _PAPERS,
            ("smax", "sc2"),
        ),
        TaskSet(
            "marine_hard",
            "Marine-Hard",
            ("3m", "5m_vs_6m", "9m_vs_10m"),
            (
                "3m", "4m", "5m", "10m", "12m", "5m_vs_6m", "7m_vs_8m", "8m_vs_9m",
                "9m_vs_10m", "10m_vs_11m", "10m_vs_12m", "13m_vs_15m",
            ),
            _PAPERS,
            ("smax", "sc2"),
        ),
        TaskSet(
            "toy",
            "Toy",
            ("3m",),
            ("3m", "4m", "5m"),
            "ODIS / HiSSD toy.yaml (train 3m medium; test 3m, 4m, 5m)",
            ("smax", "sc2"),
            family="toy",
        ),
        TaskSet(
            "stalker_zealot",
            "Stalker-Zealot",
            ("2s3z", "2s4z", "3s5z"),
            (
                "1s3z", "1s4z", "1s5z", "2s3z", "2s4z", "2s5z", "3s3z", "3s4z", "3s5z",
                "4s3z", "4s4z", "4s5z", "4s6z",
            ),
            _PAPERS,
            ("smax", "sc2"),
        ),
        *(
            TaskSet(
                f"smacv2_{race}",
                f"SMACv2-{race.capitalize()}",
                (f"{race}_5_vs_5",),
                (f"{race}_5_vs_5", f"{race}_10_vs_10", f"{race}_10_vs_11"),
                "defined by marlbench: no canonical published multi-task SMACv2 split exists "
                "(protocol.md §1); unit mixes drawn each episode, surround-or-reflect starts",
                ("smax", "sc2"),
                family="smacv2",
            )
            for race in ("protoss", "terran", "zerg")
        ),
        TaskSet(
            "cn",
            "CN",
            ("cn-2", "cn-4"),
            ("cn-2", "cn-3", "cn-4", "cn-5"),
            "ODIS / STAIRS-Former task configs cn-{expert,medium}.yaml",
            ("grid",),
            family="cn",
        ),
    ]
}


def _single(task: str, backends: tuple[str, ...], family: str, source: str) -> TaskSet:
    """A single-task set: trained and tested on ``task`` alone, named after it."""
    return TaskSet(task, task, (task,), (task,), source, backends, family=family, kind="single")


_MADS4 = "MADS4 Table 1 / Table 2 maps (protocol.md §8.4)"
SINGLE_TASK_SETS: dict[str, TaskSet] = {
    ts.name: ts
    for ts in [
        *(_single(f"rware-{size}-{n}ag", ("rware",), "rware", _MADS4)
          for size in ("tiny", "small") for n in (2, 4, 6)),
        _single("5m_vs_6m", ("smax", "sc2"), "smac_single", _MADS4),
        _single("6h_vs_8z", ("smax", "sc2"), "smac_single", _MADS4),
        _single("2c_vs_64zg", ("sc2",), "smac_single", _MADS4),  # SMAX has no colossus
        _single("corridor", ("sc2",), "smac_single", _MADS4),  # walled terrain, not SMAX's
    ]
}
TASK_SETS.update(SINGLE_TASK_SETS)

FAMILY_TITLES = {"smac": "SMAC", "smacv2": "SMACv2", "toy": "Toy", "cn": "CN", "rware": "RWARE",
                 "smac_single": "SMAC single-task"}


def get_task_set(name: str) -> TaskSet:
    try:
        return TASK_SETS[name]
    except KeyError:
        raise KeyError(
            f"unknown task set {name!r}; choose one of: {', '.join(TASK_SETS)}"
        ) from None
