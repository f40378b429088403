"""Data qualities: how the behaviour data of one quality is produced (protocol.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Producer = Literal["script", "behaviour", "composite"]


@dataclass(frozen=True)
class Quality:
    """A named recipe for behaviour data.

    ``producer``: ``script`` (a scripted policy), ``behaviour`` (from one online behaviour
    training run per task, the ODIS protocol) or ``composite`` (assembled at load time from
    ``parts``, each contributing an equal share of the loaded episodes).
    """

    name: str
    description: str
    producer: Producer
    backends: tuple[str, ...] = ("smax",)
    parts: tuple[str, ...] = ()
    epsilon: float = 0.0

    @property
    def stored(self) -> tuple[str, ...]:
        """The qualities whose datasets exist on disk for this one."""
        return self.parts or (self.name,)


# The learned qualities run on every batched backend that can train a behaviour policy fast;
# real StarCraft II data is imported (``marlbench data import odis``) rather than recollected.
_LEARNED = ("smax", "grid", "rware")

QUALITIES: dict[str, Quality] = {
    q.name: q
    for q in [
        Quality(
            "expert",
            "greedy roll-outs of the behaviour policy (MAPPO) at the end of its training budget",
            "behaviour",
            _LEARNED,
        ),
        Quality(
            "medium",
            "greedy roll-outs of the first behaviour checkpoint whose evaluation reaches the stop "
            "threshold (default: half the expert's win rate; MADT's medium: medium_fraction × "
            "the final return)",
            "behaviour",
            _LEARNED,
        ),
        Quality(
            "medium-replay",
            "the behaviour policy's stochastic training episodes up to the medium checkpoint",
            "behaviour",
            _LEARNED,
        ),
        Quality(
            "medium-expert",
            "the last N/2 medium episodes plus the last N/2 expert episodes, joined at load time",
            "composite",
            _LEARNED,
            parts=("medium", "expert"),
        ),
        Quality(
            "good",
            "MADT's good data: greedy roll-outs of the behaviour policy at the end of its "
            "training budget (the same policy as expert, a dataset of its own)",
            "behaviour",
            _LEARNED,
        ),
        Quality(
            "poor",
            "MADT's poor data: greedy roll-outs of the first behaviour checkpoint whose evaluation "
            "reaches poor_fraction × the final one (on the behaviour's threshold_metric)",
            "behaviour",
            _LEARNED,
        ),
        Quality(
            "scripted",
            "greedy roll-outs of marlbench's focus-fire script (attack the weakest enemy in "
            "range, else close in on the nearest visible one) with 5% uniformly random actions",
            "script",
            ("smax", "sc2"),
            epsilon=0.05,
        ),
    ]
}

BEHAVIOUR_QUALITIES = tuple(q for q, spec in QUALITIES.items() if spec.producer == "behaviour")
PAPER_QUALITIES = ("expert", "medium", "medium-expert", "medium-replay")
MADT_QUALITIES = ("good", "medium", "poor")  # MADS4 Table 2's G / M / P


def get_quality(name: str) -> Quality:
    try:
        return QUALITIES[name]
    except KeyError:
        raise KeyError(
            f"unknown data quality {name!r}; choose one of: {', '.join(QUALITIES)}"
        ) from None
