"""Learners: one module per algorithm, each registering itself by name."""

from __future__ import annotations

from marlbench.learners import bc_r, bc_t, hissd, odis, stairs, updet_m  # noqa: F401  (registers)
from marlbench.learners.base import LEARNERS, Learner, Policy, get_learner

__all__ = ["LEARNERS", "Learner", "Policy", "get_learner"]
