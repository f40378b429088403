"""The learner seam: built from the task layouts of a set and a config; updates on batches of
one task; exposes a greedy policy that acts on any task of the set."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
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

    def sampling(self, seed: int) -> Policy:
        """This policy drawing its actions from the softmax of the masked logits with a
        ``torch.Generator`` of its own seeded by ``seed`` (the AlberDICE / MADS4 evaluation
        samples actions); policies that only act greedily refuse."""
        raise NotImplementedError(f"{type(self).__name__} acts greedily only")


class _Networks(nn.Module):
    """A learner's networks under one module, so that ``functional_call`` can swap in one
    job's slice of a fused group's stacked parameters; its forward calls a loss function."""

    def __init__(self, networks: dict[str, nn.Module]):
        super().__init__()
        self.nets = nn.ModuleDict(networks)

    def forward(self, fn: Callable, batches: list[Batch], static: dict) -> Any:
        return fn(*batches, **static)


class Learner(ABC):
    """A learner trains one job, or a fused group of K jobs (:func:`fuse`).

    Fused, every network parameter (and buffer) carries a leading job axis [K, ...]; losses run
    through :meth:`compute`, which vmaps them over that axis and the stacked batches, and
    gradient clipping is per job (:meth:`clip_gradients`). The optimisers the learner builds
    are elementwise (Adam, AdamW), so one optimiser over the stacked parameters is K
    independent ones. A group's jobs share their seed, so their initial parameters and every
    torch random draw (token dropout, Gumbel noise, InfoNCE indices) are the same: draws run
    once (``randomness="same"``) and must not depend on the data (their shapes are fixed per
    task, not per batch). Losses read ``batch.rows`` / ``batch.length`` so that the padding
    of a group's batches to a common length changes nothing.
    """

    name: ClassVar[str]
    label: ClassVar[str]  # default display label in tables
    title: ClassVar[str]
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    # the reference behaviour its ``reference_quirks`` parameter reproduces ("": none)
    quirks: ClassVar[str] = ""
    # the attributes holding networks (their state_dicts are saved under these keys)
    network_names: ClassVar[tuple[str, ...]] = ("agent",)
    # whether jobs that differ only in data may train as one fused group (:func:`fuse`)
    fusable: ClassVar[bool] = True

    def __init__(self, layouts: dict[str, Layout], config: LearnerConfig, device: torch.device):
        self.layouts = layouts
        self.config = config
        self.device = device
        self.fused: int | None = None  # K when holding a fused group's stacked parameters
        self._holder: _Networks | None = None

    def networks(self) -> dict[str, nn.Module]:
        return {k: getattr(self, k) for k in self.network_names}

    def compute(self, fn: Callable, *batches: Batch, **static: Any) -> Any:
        """``fn(*batches, **static)``; in a fused group, vmapped over the job axis of the
        parameters and batches: results (and the ``_last`` extras fn leaves) gain a leading
        [K] axis."""
        if self.fused is None:
            self._last = {}
            return fn(*batches, **static)
        if self._holder is None:
            self._holder = _Networks(self.networks())
        tensors = {**dict(self._holder.named_parameters()), **dict(self._holder.named_buffers())}
        names = list(tensors)

        def one(flat: tuple[torch.Tensor, ...], *fields: tuple[torch.Tensor, ...]):
            self._last = {}
            out = torch.func.functional_call(self._holder, dict(zip(names, flat, strict=True)),
                                             (fn, [Batch(*f) for f in fields], static))
            return out, dict(self._last)

        out, last = torch.func.vmap(one, randomness="same")(
            tuple(tensors.values()), *(b.fields() for b in batches))
        self._last = last
        return out

    def clip_gradients(self, params: list[torch.Tensor]) -> torch.Tensor:
        """Clip the gradient norm to ``grad_norm_clip`` (per job in a fused group, as
        ``clip_grad_norm_`` does for one); the norm(s) before clipping."""
        clip = self.config.grad_norm_clip
        if self.fused is None:
            return nn.utils.clip_grad_norm_(params, clip)
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.stack([g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads]).sum(0)
        norm = norm.sqrt()
        coef = (clip / (norm + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
        return norm

    def job_state(self, j: int) -> dict[str, Any]:
        """:meth:`state_dict` of job ``j`` of a fused group (of this job when alone)."""
        state = self.state_dict()
        if self.fused is None:
            return state
        out: dict[str, Any] = {}
        for key, value in state.items():
            if key in self.network_names:
                out[key] = {n: t[j].clone() for n, t in value.items()}
            elif key == "optimiser":
                out[key] = {"param_groups": value["param_groups"], "state": {
                    i: {n: (t[j] if t.dim() else t).clone() if torch.is_tensor(t) else t
                        for n, t in s.items()} for i, s in value["state"].items()}}
            else:
                out[key] = value
        return out

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
            loss = self.compute(self.loss, batch.to(self.device), task=task)
            loss.sum().backward()
            total = total + loss.detach()
        grad_norm = self.clip_gradients(params)
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


class AgentState:
    """``state_dict`` / ``load_state_dict`` of a learner whose state is one network ``agent``
    and its ``optimiser`` (a mixin placed before :class:`Learner`)."""

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.agent.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        if "optimiser" in state:
            self.optimiser.load_state_dict(state["optimiser"])


class FusedLinear(nn.Linear):
    """``nn.Linear`` on its input flattened to 2-D. Under ``vmap`` (a fused group), a linear
    layer on an input of more dimensions that is not laid out as one matrix (an expanded or
    concatenated one, as the mixer's hypernetwork and HiSSD's heads get) has its weight
    broadcast over the leading dimensions: torch materialises one weight copy per row and runs
    tiny batched products (measured: HiSSD fused at K = 2, 4.9 s per job per update instead of
    2.4). Flattened, each job's rows meet its weight in one product. Same numbers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)
        return y.view(*x.shape[:-1], y.shape[-1])


def fuse(learner: Learner, k: int) -> Learner:
    """Turn a freshly built learner (no update yet) into a fused group of ``k`` jobs with its
    initial parameters: every parameter and buffer is repeated along a new leading job axis.
    The parameters stay the same objects, so the learner's optimisers, target copies and
    phase switches act on the whole group."""
    for net in learner.networks().values():
        for p in net.parameters():
            p.data = p.data.unsqueeze(0).repeat(k, *[1] * p.dim())
        for module in net.modules():
            if type(module) is nn.Linear:
                module.__class__ = FusedLinear  # same parameters, a vmap-friendly forward
            if hasattr(module, "explicit"):  # attention: the path vmap batches (transformer.py)
                module.explicit = True
            for name, buf in module._buffers.items():
                if buf is not None:
                    module._buffers[name] = buf.unsqueeze(0).repeat(k, *[1] * buf.dim())
    learner.fused = k
    return learner


LEARNERS: dict[str, type[Learner]] = {}  # offline: trained from datasets by the train loop
ONLINE_LEARNERS: dict[str, type] = {}  # online: learn by acting (``play`` then ``update``)


def register(cls: type[Learner]) -> type[Learner]:
    LEARNERS[cls.name] = cls
    return cls


def register_online(cls: type) -> type:
    """Register a learner that trains by acting in a batched environment: built from a
    layout, a config and a seed; ``play(env, seed, greedy)`` → a roll-out, ``update(roll-out)``
    → metrics, ``state_dict`` / ``load_state_dict``. Behaviour collection trains it now; the
    online track will."""
    ONLINE_LEARNERS[cls.name] = cls
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
