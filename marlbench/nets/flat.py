"""Per-agent inputs of flat-observation policies: the observation vector with a one-hot agent
id appended, and the logits cut back to a task's actions.

A layout of either kind (``flat``, or a StarCraft ``entity`` layout read as one vector) gives
``obs_dim`` values per agent. One network serves every task it is built for: observations are
zero-padded to the widest task's width and ids to the largest agent count (as MADT pads its
multi-map inputs to one width); logits cover the most actions and each task reads its first
``n_actions``. Built for one task, nothing is padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from marlbench.envs.maps import Layout

UNAVAILABLE = -1e10  # the references' logit for an unavailable action


@dataclass(frozen=True)
class FlatWidths:
    obs: int  # widest observation
    agents: int  # most agents (width of the one-hot id)
    actions: int  # most actions

    @classmethod
    def of(cls, layouts: dict[str, Layout]) -> FlatWidths:
        lays = list(layouts.values())
        return cls(max(lay.obs_dim for lay in lays), max(lay.n_agents for lay in lays),
                   max(lay.n_actions for lay in lays))

    @property
    def inputs(self) -> int:
        return self.obs + self.agents


def agent_inputs(obs: torch.Tensor, widths: FlatWidths) -> torch.Tensor:
    """obs [..., n, obs_dim] → [..., n, widths.inputs]: the observation (zero-padded to
    ``widths.obs``) followed by the agent's one-hot id (of width ``widths.agents``)."""
    n, d = obs.shape[-2:]
    padded = F.pad(obs, (0, widths.obs - d))
    ids = torch.eye(n, widths.agents, dtype=obs.dtype, device=obs.device)
    return torch.cat([padded, ids.expand(*obs.shape[:-2], n, widths.agents)], dim=-1)


def task_logits(logits: torch.Tensor, layout: Layout) -> torch.Tensor:
    """The task's actions' logits (the first ``n_actions``)."""
    return logits[..., : layout.n_actions]


def masked_logits(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Unavailable actions' logits set to −1e10 (their softmax probability is then 0)."""
    return logits.masked_fill(avail == 0, UNAVAILABLE)
