"""Entity tokens cut from SMAC observations by the task layout (protocol.md §5)."""

from __future__ import annotations

import torch
from torch import nn

from marlbench.envs.maps import Layout

ID_BITS = 4  # binary agent id, max_agent 15


def entity_widths(layouts: list[Layout]) -> tuple[int, int, int, int, int]:
    """Per-entity widths shared by every layout of a task set: move, enemy, ally, own, and the
    number of basic (non-attack) actions."""
    widths = {
        (lay.move_feats, lay.enemy_feats, lay.ally_feats, lay.own_feats, lay.n_no_attack)
        for lay in layouts
    }
    if len(widths) != 1:
        raise ValueError(f"task layouts disagree on per-entity widths: {sorted(widths)}")
    return widths.pop()


def agent_id_bits(n_agents: int, device: torch.device) -> torch.Tensor:
    """[n, 4] binary codes of agent indices."""
    idx = torch.arange(n_agents, device=device)
    return ((idx[:, None] >> torch.arange(ID_BITS, device=device)) & 1).float()


class EntityTokenizer(nn.Module):
    """Embeds own / enemy / ally entities; one Linear per entity type, to ``emb``.

    Own token input: [move feats, own feats, agent id bits, compact last action (one-hot of the
    basic actions + "attacked any enemy")].
    Enemy token j input: [enemy j feats, "I attacked enemy j last step"].
    Ally token input: ally feats.
    """

    def __init__(self, layouts: list[Layout], emb: int, extra_own: int = 0):
        super().__init__()
        move, enemy, ally, own, basic = entity_widths(layouts)
        self.own_embed = nn.Linear(move + own + ID_BITS + basic + 1 + extra_own, emb)
        self.enemy_embed = nn.Linear(enemy + 1, emb)
        self.ally_embed = nn.Linear(ally, emb)

    def forward(
        self,
        obs: torch.Tensor,
        last_actions: torch.Tensor,
        layout: Layout,
        extra_own: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """obs [..., n, obs_dim], last_actions [..., n] (−1 = none) → tokens [..., n, E, emb].

        Token order: [own, enemies…, allies…].
        """
        lay = layout
        lead = obs.shape[:-1]
        cut = lay.slices()
        move = obs[..., cut["move"]]
        enemies = obs[..., cut["enemy"]].reshape(*lead, lay.n_enemies, lay.enemy_feats)
        allies = obs[..., cut["ally"]].reshape(*lead, lay.n_agents - 1, lay.ally_feats)
        own = obs[..., cut["own"]]

        n_basic = lay.n_no_attack
        valid = last_actions >= 0
        basic = torch.nn.functional.one_hot(
            last_actions.clamp(0, n_basic - 1), n_basic
        ).float() * (valid & (last_actions < n_basic)).unsqueeze(-1)
        attacked_any = (last_actions >= n_basic).float().unsqueeze(-1)
        target = last_actions - n_basic
        attacked = (
            target.unsqueeze(-1) == torch.arange(lay.n_enemies, device=obs.device)
        ).float()
        ids = agent_id_bits(lay.n_agents, obs.device).expand(*lead, ID_BITS)
        own_in = [move, own, ids, basic, attacked_any]
        if extra_own is not None:
            own_in.append(extra_own)
        own_tok = self.own_embed(torch.cat(own_in, dim=-1)).unsqueeze(-2)
        enemy_tok = self.enemy_embed(torch.cat([enemies, attacked.unsqueeze(-1)], dim=-1))
        ally_tok = self.ally_embed(allies)
        return torch.cat([own_tok, enemy_tok, ally_tok], dim=-2)


def action_values(q_basic: nn.Module, out: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Q head of the family: basic values from the own token; attack j = mean of the same head
    on enemy token j (tasks without attack actions use the basic values only).
    ``out`` [..., tokens, emb] with token order [own, enemies, ...]."""
    basic = q_basic(out[..., 0, :])
    if layout.n_attack == 0:
        return basic
    attack = q_basic(out[..., 1 : 1 + layout.n_enemies, :]).mean(-1)
    return torch.cat([basic, attack], dim=-1)
