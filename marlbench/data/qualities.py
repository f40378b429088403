"""Data qualities: how the behaviour data of one quality is produced."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quality:
    """A named recipe for behaviour data."""

    name: str
    description: str
    behaviour: str
    epsilon: float
    backends: tuple[str, ...] = ("smax",)


QUALITIES: dict[str, Quality] = {
    q.name: q
    for q in [
        Quality(
            "scripted",
            "greedy roll-outs of marlbench's focus-fire script (attack the weakest enemy in "
            "range, else close in on the nearest visible one) with 5% uniformly random actions",
            behaviour="focus_fire",
            epsilon=0.05,
            backends=("smax", "sc2"),
        ),
    ]
}


def get_quality(name: str) -> Quality:
    try:
        return QUALITIES[name]
    except KeyError:
        raise KeyError(
            f"unknown data quality {name!r}; choose one of: {', '.join(QUALITIES)}"
        ) from None
