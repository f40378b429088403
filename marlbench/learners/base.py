"""The learner seam: built from the task layouts of a set and a config; updates on batches of
one task; exposes a greedy policy that acts on any task of the set."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout


class LearnerConfig(BaseModel):
    """Hyperparameters shared by every learner; each learner extends it."""

    model_config = ConfigDict(extra="forbid")
    lr: float = 5e-4
    grad_norm_clip: float = 10.0


class Policy(ABC):
    """Greedy decentralised execution over B parallel episodes of one task."""

    @abstractmethod
    def initial_state(self, batch_size: int, task: str) -> Any: ...

    @abstractmethod
    def act(
        self, obs: np.ndarray, avail: np.ndarray, state: Any, task: str
    ) -> tuple[np.ndarray, Any]:
        """obs [B, n, obs], avail [B, n, A] → greedy actions [B, n] and the next state."""


class Learner(ABC):
    name: ClassVar[str]
    label: ClassVar[str]  # default display label in tables
    title: ClassVar[str]
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig

    def __init__(self, layouts: dict[str, Layout], config: LearnerConfig, device: torch.device):
        self.layouts = layouts
        self.config = config
        self.device = device

    @abstractmethod
    def update(self, batch: Batch, task: str) -> dict[str, float]:
        """One training step on a batch of ``task``; returns scalar metrics."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def policy(self) -> Policy: ...


LEARNERS: dict[str, type[Learner]] = {}


def register(cls: type[Learner]) -> type[Learner]:
    LEARNERS[cls.name] = cls
    return cls


def get_learner(name: str) -> type[Learner]:
    try:
        return LEARNERS[name]
    except KeyError:
        raise KeyError(
            f"unknown algorithm {name!r}; choose one of: {', '.join(LEARNERS)}"
        ) from None


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when present (or asked for), CPU otherwise."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)
