"""Value mixers of the offline multi-task family (algorithms.md §1.3): ``mt_qattn`` and VDN.

Both take per-agent values [B, T, n] and the global state [B, T, S] of one task and return
Q_tot [B, T]. ``mt_qattn`` reads the SMAC state entity by entity, so one mixer serves every
task of a set whatever its unit counts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from marlbench.envs.maps import Layout


def state_entity_widths(layout: Layout) -> tuple[int, int]:
    """Widths of one ally row and one enemy row of the SMAC state (ally rows carry the weapon
    cooldown, so they are one wider): S = n·(w+1) + m·w + n·A."""
    n, m, a = layout.n_agents, layout.n_enemies, layout.n_actions
    rest = layout.state_dim - n * a - n
    if rest <= 0 or rest % (n + m):
        raise ValueError(f"state width {layout.state_dim} is not a SMAC state with last actions "
                         f"({n} allies, {m} enemies, {a} actions); the mixer needs one")
    w = rest // (n + m)
    return w + 1, w


def decompose_state(state: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, ...]:
    """state [..., S] → ally rows [..., n, wa], enemy rows [..., m, we], last actions
    [..., n, A] (one-hot)."""
    n, m, a = layout.n_agents, layout.n_enemies, layout.n_actions
    wa, we = state_entity_widths(layout)
    lead = state.shape[:-1]
    allies = state[..., : n * wa].reshape(*lead, n, wa)
    enemies = state[..., n * wa : n * wa + m * we].reshape(*lead, m, we)
    last = state[..., n * wa + m * we :].reshape(*lead, n, a)
    return allies, enemies, last


def compact_actions(onehot: torch.Tensor, n_basic: int) -> torch.Tensor:
    """One-hot actions [..., A] → [basic one-hot (n_basic), attacked any enemy (1)]."""
    return torch.cat([onehot[..., :n_basic], onehot[..., n_basic:].sum(-1, keepdim=True)], -1)


def state_entities_with_actions(
    state: torch.Tensor, actions: torch.Tensor, layout: Layout
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ODIS state-encoder view of a state and the joint action taken in it.

    state [..., S], actions [..., n] → ally rows [..., n, wa + 2·(basic + 1)] (state features,
    compact current action, compact last action) and enemy rows [..., m, we + 1] (state
    features, "attacked by any ally now").
    """
    allies, enemies, last = decompose_state(state, layout)
    nb = layout.n_no_attack
    current = F.one_hot(actions.long(), layout.n_actions).to(state.dtype)
    allies = torch.cat([allies, compact_actions(current, nb), compact_actions(last, nb)], -1)
    attacked = (current[..., nb:].sum(-2) > 0).to(state.dtype)  # [..., m]
    return allies, torch.cat([enemies, attacked.unsqueeze(-1)], -1)


def attend_over_queries(values: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """out_j = Σ_i softmax_i(q_i·k_j / √d) v_i: the family's attention with the softmax over
    the *query* axis. values [..., E, e], q/k [..., E, d] → [..., E, e]."""
    energy = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    attn = F.softmax(energy, dim=-2)
    return (values.transpose(-1, -2) @ attn).transpose(-1, -2)


def query_softmax_attention(entities: torch.Tensor, query: nn.Module,
                            key: nn.Module) -> torch.Tensor:
    """:func:`attend_over_queries` of the entities with themselves as values."""
    return attend_over_queries(entities, query(entities), key(entities))


class MtQattnMixer(nn.Module):
    """Entity-attention monotonic mixer as the ODIS family implements it.

    Entity embeddings (allies with their compact last action; enemies) attend to each other
    with the softmax taken over the *query* axis (the reference's quirk); the attended values,
    averaged over entities, give a state summary s̄. Hypernetworks of s̄ (and each ally's
    embedding) give non-negative mixing weights: Q_tot = ELU(Σ_i Q_i·w1_i + b1)·w_final + V(s̄).
    """

    def __init__(self, layouts: list[Layout], entity_embed: int = 64, attn_embed: int = 8,
                 embed: int = 32, hypernet_embed: int = 64):
        super().__init__()
        widths = {state_entity_widths(lay) for lay in layouts}
        basics = {lay.n_no_attack for lay in layouts}
        if len(widths) != 1 or len(basics) != 1:
            raise ValueError(f"task layouts disagree on state entity widths: {sorted(widths)}")
        (wa, we), self.n_basic = widths.pop(), basics.pop()
        self.ally_encoder = nn.Linear(wa + self.n_basic + 1, entity_embed)
        self.enemy_encoder = nn.Linear(we, entity_embed)
        self.query = nn.Linear(entity_embed, attn_embed)
        self.key = nn.Linear(entity_embed, attn_embed)
        self.hyper_w1 = nn.Sequential(nn.Linear(2 * entity_embed, hypernet_embed), nn.ReLU(),
                                      nn.Linear(hypernet_embed, embed))
        self.hyper_w_final = nn.Sequential(nn.Linear(entity_embed, hypernet_embed), nn.ReLU(),
                                           nn.Linear(hypernet_embed, embed))
        self.hyper_b1 = nn.Linear(entity_embed, embed)
        self.value = nn.Sequential(nn.Linear(entity_embed, embed), nn.ReLU(),
                                   nn.Linear(embed, 1))

    def forward(self, qs: torch.Tensor, state: torch.Tensor, layout: Layout) -> torch.Tensor:
        allies, enemies, last = decompose_state(state, layout)
        allies = torch.cat([allies, compact_actions(last, self.n_basic)], -1)
        ally_embed = self.ally_encoder(allies)  # [..., n, e]
        entities = torch.cat([ally_embed, self.enemy_encoder(enemies)], -2)  # [..., E, e]
        # softmax over queries (reference quirk), then the mean over entities
        summary = query_softmax_attention(entities, self.query, self.key).mean(-2)  # [..., e]
        n = qs.shape[-1]
        w1 = self.hyper_w1(torch.cat(
            [summary.unsqueeze(-2).expand(*summary.shape[:-1], n, summary.shape[-1]),
             ally_embed], -1)).abs()  # [..., n, embed]
        hidden = F.elu((qs.unsqueeze(-1) * w1).sum(-2) + self.hyper_b1(summary))
        w_final = self.hyper_w_final(summary).abs()
        return (hidden * w_final).sum(-1) + self.value(summary).squeeze(-1)


class VdnMixer(nn.Module):
    """Q_tot = Σ_i Q_i (``mt_vdn``)."""

    def forward(self, qs: torch.Tensor, state: torch.Tensor, layout: Layout) -> torch.Tensor:
        return qs.sum(-1)


def make_mixer(name: str, layouts: list[Layout]) -> nn.Module:
    if name == "mt_qattn":
        return MtQattnMixer(layouts)
    if name == "vdn":
        return VdnMixer()
    raise ValueError(f"unknown mixer {name!r}; choose mt_qattn or vdn")
