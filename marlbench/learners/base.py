"""The learner seam: built from the task layouts of a set and a config; updates on batches of
one task; exposes a greedy policy that acts on any task of the set."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Positive, Rate

# an update's scalars: floats, or 0-dim tensors left on the device until they are logged
Metrics = dict[str, float | torch.Tensor]


class LearnerConfig(BaseModel):
    """Hyperparameters shared by every learner; each learner extends it.

    ``update_discipline``: ``per_task`` = one optimiser step per task batch (UPDeT-m, BC,
    STAIRS-Former); ``per_round`` = gradients of every seen task's batch summed, then one step
    (ODIS, HiSSD). Either way the step counter counts task batches, as the references' t_env.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lr: Rate = 5e-4
    grad_norm_clip: Positive = 10.0
    update_discipline: Literal["per_task", "per_round"] = "per_task"


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
    # the reference behaviour its ``reference_quirks`` parameter reproduces ("": none)
    quirks: ClassVar[str] = ""

    def __init__(self, layouts: dict[str, Layout], config: LearnerConfig, device: torch.device):
        self.layouts = layouts
        self.config = config
        self.device = device

    def update(self, batch: Batch, task: str) -> Metrics:
        """One optimiser step on a batch of ``task`` (the ``per_task`` discipline)."""
        return self.update_round({task: batch})

    def update_round(self, batches: dict[str, Batch]) -> Metrics:
        """One optimiser step on the summed losses of the given task batches (one batch: the
        ``per_task`` discipline; every seen task: ``per_round``). Learners define ``loss``
        (optionally leaving extra scalars in ``_last``) and ``optimiser``, or override this.
        Metrics stay on the device (no host sync per update); :func:`train` reads them when it
        logs."""
        if not hasattr(self, "loss"):
            raise NotImplementedError(f"{self.name} defines no loss to update on")
        if hasattr(self, "agent"):
            self.agent.train()
        params = [p for group in self.optimiser.param_groups for p in group["params"]]
        self.optimiser.zero_grad()
        total = torch.zeros((), device=self.device)
        for task, batch in batches.items():
            loss = self.loss(batch.to(self.device), task)
            loss.backward()
            total = total + loss.detach()
        grad_norm = nn.utils.clip_grad_norm_(params, self.config.grad_norm_clip)
        self.optimiser.step()
        self.after_step()
        return {"loss": total / len(batches), "grad_norm": grad_norm.detach(),
                **getattr(self, "_last", {})}

    def set_budget(self, updates: int) -> None:  # noqa: B027 - optional hook
        """Told the job's total task batches before training (learners with phases split it)."""

    def after_step(self) -> None:  # noqa: B027 - optional hook
        """Hook after each optimiser step (target-network updates)."""

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
