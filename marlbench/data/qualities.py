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
_LEARNED = ("smax", "grid")

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
            "greedy roll-outs of the first behaviour checkpoint whose evaluation win rate reaches "
            "the stop threshold (default: half the expert's)",
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


def get_quality(name: str) -> Quality:
    try:
        return QUALITIES[name]
    except KeyError:
        raise KeyError(
            f"unknown data quality {name!r}; choose one of: {', '.join(QUALITIES)}"
        ) from None
