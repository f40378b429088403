"""UPDeT-m and UPDeT-l: offline multi-task value learning with the entity transformer
(algorithms.md §2.2).

Per-agent Q values from the UPDeT agent (the same network as BC-t), mixed by ``mt_qattn``
(UPDeT-m) or VDN (UPDeT-l). Loss = TD² + α·cons: one-step double-Q TD through a target
agent and mixer (hard copies every 80 updates), and the conservative gap
Q_tot(s, greedy joint action) − Q_tot(s, dataset joint action) through the mixer, α = 5.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, Interval, NonNegative, Width
from marlbench.learners.base import Learner, LearnerConfig, Policy, register
from marlbench.learners.bc_t import EntityAgent, EntityPolicy
from marlbench.nets.mixers import make_mixer

MASKED = -1e10


class UPDeTMConfig(LearnerConfig):
    emb: Width = 64
    heads: Width = 1
    depth: Width = 1
    mixer: Literal["mt_qattn", "vdn"] = "mt_qattn"
    gamma: Discount = 0.99
    target_update_interval: Interval = 80
    double_q: bool = True
    coef_conservative: NonNegative = 5.0


def td_terms(
    qs: torch.Tensor, target_qs: torch.Tensor, batch: Batch, mixer: nn.Module,
    target_mixer: nn.Module, layout: Layout, gamma: float, double_q: bool,
    argmax_qs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shared by the value learners of the family.

    qs / target_qs [B, T, n, A] from the online and target agents over the whole batch.
    ``argmax_qs`` (default ``qs``) picks the greedy actions (STAIRS-Former takes them from a
    pass without token dropout). Returns (q_tot of the dataset actions [B, T-1], TD targets
    [B, T-1], transition mask [B, T-1], greedy online actions [B, T, n]).
    """
    avail = batch.avail
    chooser = qs if argmax_qs is None else argmax_qs
    masked = chooser.detach().masked_fill(avail == 0, MASKED)
    greedy = masked.argmax(-1)  # [B, T, n]
    actions = batch.actions
    chosen = qs[:, :-1].gather(-1, actions[:, :-1, :, None]).squeeze(-1)
    q_tot = mixer(chosen, batch.state[:, :-1], layout)
    with torch.no_grad():
        if double_q:
            nxt = target_qs[:, 1:].gather(-1, greedy[:, 1:, :, None]).squeeze(-1)
        else:
            nxt = target_qs[:, 1:].masked_fill(avail[:, 1:] == 0, MASKED).max(-1).values
        target_tot = target_mixer(nxt, batch.state[:, 1:], layout)
        y = batch.reward[:, :-1] + gamma * (1 - batch.terminated[:, :-1]) * target_tot
    mask = batch.mask[:, :-1] * batch.rows[1:]  # a fused group's padding is no transition
    return q_tot, y, mask, greedy


NETWORKS = ("agent", "mixer", "target_agent", "target_mixer")


def copy_targets(learner: Any) -> None:
    """Hard copy of the online agent and mixer into their targets."""
    learner.target_agent.load_state_dict(learner.agent.state_dict())
    learner.target_mixer.load_state_dict(learner.mixer.state_dict())


def networks_state(learner: Any) -> dict[str, Any]:
    """State of the agent, mixer, their targets and the optimiser."""
    return {**{k: getattr(learner, k).state_dict() for k in NETWORKS},
            "optimiser": learner.optimiser.state_dict()}


def load_networks(learner: Any, state: dict[str, Any]) -> None:
    """Inverse of :func:`networks_state` (the optimiser only when saved)."""
    for k in NETWORKS:
        getattr(learner, k).load_state_dict(state[k])
    if "optimiser" in state:
        learner.optimiser.load_state_dict(state["optimiser"])


class ValueLearner(Learner):
    network_names = NETWORKS

    """Per-agent Q values from ``make_agent`` mixed by ``config.mixer``, with a target agent
    and mixer copied every ``config.target_update_interval`` optimiser steps."""


    def __init__(self, layouts: dict[str, Layout], config: LearnerConfig, device: torch.device):
        super().__init__(layouts, config, device)
        lays = list(layouts.values())
        self.agent = self.make_agent(lays).to(device)
        self.mixer = make_mixer(config.mixer, lays).to(device)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.optimiser = torch.optim.Adam(
            [*self.agent.parameters(), *self.mixer.parameters()], lr=config.lr)
        self.steps = 0

    def make_agent(self, layouts: list[Layout]) -> nn.Module:
        raise NotImplementedError

    def after_step(self) -> None:
        self.steps += 1
        if self.steps % self.config.target_update_interval == 0:
            copy_targets(self)

    def state_dict(self) -> dict[str, Any]:
        return {**networks_state(self), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_networks(self, state)
        self.steps = state.get("steps", 0)


@register
class UPDeTM(ValueLearner):
    name = "updet_m"
    label = "UPDeT-m"
    title = "UPDeT-m (entity transformer, mt_qattn mixer, TD + conservative gap)"
    Config = UPDeTMConfig

    def make_agent(self, layouts: list[Layout]) -> nn.Module:
        c = self.config
        return EntityAgent(layouts, c.emb, c.heads, c.depth)

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        c, lay = self.config, self.layouts[task]
        qs = self.agent.unroll(batch.obs, batch.actions, lay)
        with torch.no_grad():
            target_qs = self.target_agent.unroll(batch.obs, batch.actions, lay)
        q_tot, y, mask, greedy = td_terms(qs, target_qs, batch, self.mixer, self.target_mixer,
                                          lay, c.gamma, c.double_q)
        denom = mask.sum().clamp(min=1.0)
        td = ((q_tot - y) ** 2 * mask).sum() / denom
        greedy_q = qs[:, :-1].gather(-1, greedy[:, :-1, :, None]).squeeze(-1)
        gap = self.mixer(greedy_q, batch.state[:, :-1], lay) - q_tot
        cons = (gap * mask).sum() / denom
        self._last = {"td_loss": td.detach(), "cons_gap": cons.detach(),
                      "q_tot": (q_tot.detach() * mask).sum() / denom}
        return td + c.coef_conservative * cons

    def policy(self) -> Policy:
        self.agent.eval()
        return EntityPolicy(self.agent, self.layouts, self.device)


class UPDeTLConfig(UPDeTMConfig):
    mixer: Literal["mt_qattn", "vdn"] = "vdn"


@register
class UPDeTL(UPDeTM):
    name = "updet_l"
    label = "UPDeT-l"
    title = "UPDeT-l (entity transformer, VDN mixer, TD + conservative gap)"
    Config = UPDeTLConfig
