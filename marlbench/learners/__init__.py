"""Learners: one module per algorithm, each registering itself by name."""

from __future__ import annotations

from marlbench.learners import (  # noqa: F401  (registers)
    bc,
    bc_r,
    bc_t,
    hissd,
    mads4,
    madt,
    mappo,
    odis,
    omiga,
    random_policy,
    stairs,
    updet_m,
)
from marlbench.learners.base import LEARNERS, ONLINE_LEARNERS, Learner, Policy, get_learner

__all__ = ["LEARNERS", "ONLINE_LEARNERS", "Learner", "Policy", "get_learner"]
