"""STAIRS-Former (algorithms.md §2.6): recursive spatial reasoning over entity tokens, two
history tokens (low: every step; high: a GRU refreshed every ``high_step`` steps), the
Temporal Focus Layer (separate FFNs for entity and history tokens), token dropout with
protected tokens, and the TD + BC loss through the ``mt_qattn`` mixer.

Ablation switches (marlbench's reading of the paper's rows; the reference repository has no
ablation configs for them): ``spatial: false`` = one pass of f_L, no recursion and no f_H;
``temporal: false`` = one UPDeT-style history token and one FFN shared by all tokens;
``token_dropout: 0`` = no dropout.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, Interval, NonNegative, Probability, Width
from marlbench.learners.base import LearnerConfig, Policy, register
from marlbench.learners.bc_t import cloning_loss
from marlbench.learners.updet_m import ValueLearner, td_terms
from marlbench.nets.entity import EntityTokenizer, action_values, entity_widths
from marlbench.nets.transformer import SelfAttention, kept_rows


class StairsBlock(nn.Module):
    """Temporal Focus Layer: post-LN attention, then ``ff_obs`` on entity tokens and
    ``ff_hist`` on the last ``n_hist`` tokens (one shared FFN when ``n_hist`` is 0)."""

    def __init__(self, emb: int, heads: int, n_hist: int, ff_mult: int = 4):
        super().__init__()
        self.n_hist = n_hist
        self.attention = SelfAttention(emb, heads)
        self.norm1, self.norm2 = nn.LayerNorm(emb), nn.LayerNorm(emb)

        def ffn() -> nn.Sequential:
            return nn.Sequential(nn.Linear(emb, ff_mult * emb), nn.ReLU(),
                                 nn.Linear(ff_mult * emb, emb))

        self.ff_obs = ffn()
        self.ff_hist = ffn() if n_hist else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """With ``rows`` (the last ``n_hist`` of them history rows): those rows only."""
        res = x if rows is None else x.index_select(1, rows)
        x = self.norm1(res + self.attention(x, mask, rows))
        if self.ff_hist is None:
            return self.norm2(x + self.ff_obs(x))
        k = x.shape[1] - self.n_hist
        y = torch.cat([self.ff_obs(x[:, :k]), self.ff_hist(x[:, k:])], dim=1)
        return self.norm2(x + y)


class StairsAgent(nn.Module):
    """Per-step agent network; tokens [own, enemies…, allies…, low_hist, (high_hist)]."""

    def __init__(self, layouts: list[Layout], emb: int, heads: int, h_cycles: int,
                 l_cycles: int, high_step: int, spatial: bool, temporal: bool):
        super().__init__()
        self.emb, self.high_step = emb, high_step
        self.h_cycles, self.l_cycles = h_cycles, l_cycles
        self.spatial, self.temporal = spatial, temporal
        self.n_hist = 2 if temporal else 1
        self.tokenizer = EntityTokenizer(layouts, emb)
        self.f_low = StairsBlock(emb, heads, self.n_hist if temporal else 0)
        self.f_high = StairsBlock(emb, heads, self.n_hist if temporal else 0) if spatial else None
        self.gru = nn.GRUCell(emb, emb) if temporal else None
        self.to_out = nn.Linear(emb, emb)
        self.q_skill = nn.Linear(emb, entity_widths(layouts)[-1])
        self.keep_attention = False  # analysis hook (see ``attention``)
        self.explicit = False  # fused (vmapped): the GRU cell written out (no batching rule)

    def initial_hist(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(n, self.emb, device=device)
        return z, z

    def reason(self, x: torch.Tensor, mask: torch.Tensor | None,
               front: int | None = None) -> torch.Tensor:
        """The recursion with the one-step gradient: all cycles but the last run without
        gradient; the output is ``to_out`` of the high state (low state without recursion).
        With ``front``: only the first ``front`` rows and the history rows come out of the
        final block (the rest are not computed; every row while attention is recorded)."""
        last = self.f_high if self.spatial else self.f_low
        rows = (None if front is None or last.attention.keep_attention
                else kept_rows(x.shape[1], (front, self.n_hist), x.device))
        if not self.spatial:
            return self.to_out(self.f_low(x, mask, rows))
        z_h = torch.zeros_like(x)
        z_l = torch.zeros_like(x)
        with torch.no_grad():
            for k in range(1, self.h_cycles * self.l_cycles):
                z_l = self.f_low(z_l + z_h + x, mask)
                if k % self.h_cycles == 0:
                    z_h = self.f_high(z_h + z_l, mask)
        z_l = self.f_low(z_l + z_h + x, mask)
        return self.to_out(self.f_high(z_h + z_l, mask, rows))

    def step(self, tokens: torch.Tensor, hist: tuple[torch.Tensor, torch.Tensor], t: int,
             layout: Layout, mask: torch.Tensor | None = None):
        """tokens [N, E, emb], hist (low [N, emb], high [N, emb]) → Q [N, A], next hist."""
        low, high = hist
        if self.temporal:
            if t % self.high_step == 0:
                high = gru_cell(self.gru, low, high) if self.explicit else self.gru(low, high)
            x = torch.cat([tokens, low[:, None], high[:, None]], dim=1)
        else:
            x = torch.cat([tokens, low[:, None]], dim=1)
        out = self.reason(x, mask, front=1 + layout.n_enemies)  # the rows the heads read
        return action_values(self.q_skill, out, layout), (out[:, -self.n_hist], high)

    def unroll(self, obs: torch.Tensor, actions: torch.Tensor, layout: Layout,
               dropout: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """obs [B, T, n, obs], actions [B, T, n] → Q [B, T, n, A]; token dropout (training
        only) protects the own token, the history tokens and the dataset action's target."""
        b, t, n = obs.shape[:3]
        last = torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], dim=1)
        tokens = self.tokenizer(obs, last, layout)
        steps = tokens.transpose(0, 1).reshape(t, b * n, -1, self.emb).unbind(0)
        masks: Any = [None] * t
        if dropout > 0:  # every step's mask in one draw
            acts = actions.transpose(0, 1).reshape(t, b * n)
            masks = token_dropout_mask(tokens.shape[-2] + self.n_hist, acts, layout, dropout,
                                       self.n_hist, generator).unbind(0)
        hist = self.initial_hist(b * n, obs.device)
        qs = []
        for k, (tokens_k, mask) in enumerate(zip(steps, masks, strict=True)):
            q, hist = self.step(tokens_k, hist, k, layout, mask)
            qs.append(q)
        return torch.stack(qs, dim=1).view(b, n, t, -1).transpose(1, 2)


def gru_cell(cell: nn.GRUCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``cell(x, h)`` written out (gates r, z, n as torch orders them), for vmap."""
    gi = F.linear(x, cell.weight_ih, cell.bias_ih).chunk(3, -1)
    gh = F.linear(h, cell.weight_hh, cell.bias_hh).chunk(3, -1)
    r = torch.sigmoid(gi[0] + gh[0])
    z = torch.sigmoid(gi[1] + gh[1])
    n = torch.tanh(gi[2] + r * gh[2])
    return (1 - z) * n + z * h


def token_dropout_mask(n_tokens: int, actions: torch.Tensor, layout: Layout, p: float,
                       n_hist: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[..., tokens, tokens] attention mask m_i·m_j for actions [...]: each enemy and ally
    token is dropped with probability ``p``; never the own token, the history tokens, or the
    enemy the dataset action attacks. Built for every step at once, with no host sync.
    ``actions`` [T, N]: the draw covers at least the task's full length (episode limit + 1)
    whatever T is, so that a batch's masks do not depend on how long it is (one job alone and
    in a fused group draw the same)."""
    t = actions.shape[0]
    rows = max(t, layout.episode_limit + 1)
    keep = torch.rand(rows, *actions.shape[1:], n_tokens, generator=generator,
                      device=actions.device)[:t] >= p
    keep[..., 0] = True
    keep[..., n_tokens - n_hist:] = True
    target = (actions - layout.n_no_attack).unsqueeze(-1)  # token 1 + target, if attacking
    token = torch.arange(n_tokens, device=actions.device) - 1
    keep = keep | ((token == target) & (target >= 0))  # not in place: keep may be shared
    m = keep.float()
    return m.unsqueeze(-1) * m.unsqueeze(-2)


class StairsConfig(LearnerConfig):
    emb: Width = 64
    heads: Width = 1
    h_cycles: Width = 2
    l_cycles: Width = 1
    high_step: Width = 5
    token_dropout: Probability = 0.1
    spatial: bool = True
    temporal: bool = True
    mixer: Literal["mt_qattn", "vdn"] = "mt_qattn"
    gamma: Discount = 0.99
    target_update_interval: Interval = 80
    double_q: bool = True
    bc_coef: NonNegative = 1.0


class StairsPolicy(Policy):
    """Greedy actions; state = (low history, high history, last actions, step)."""

    def __init__(self, agent: StairsAgent, layouts: dict[str, Layout], device: torch.device):
        self.agent, self.layouts, self.device = agent, layouts, device

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        last = torch.full((batch_size, n), -1, dtype=torch.long, device=self.device)
        return self.agent.initial_hist(batch_size * n, self.device), last, 0

    @torch.no_grad()
    def act(self, obs, avail, state, task):
        lay = self.layouts[task]
        hist, last, t = state
        o = torch.as_tensor(obs, device=self.device)
        av = torch.as_tensor(avail, device=self.device)
        b, n = o.shape[:2]
        tokens = self.agent.tokenizer(o, last, lay).reshape(b * n, -1, self.agent.emb)
        q, hist = self.agent.step(tokens, hist, t, lay)
        actions = q.view(b, n, -1).masked_fill(av == 0, -1e10).argmax(-1)
        return actions.cpu().numpy().astype(np.int64), (hist, actions, t + 1)


@register
class Stairs(ValueLearner):
    name = "stairs"
    label = "STAIRS-Former"
    title = "STAIRS-Former (recursive spatial + temporal focus transformer, TD + BC)"
    Config = StairsConfig

    def __init__(self, layouts: dict[str, Layout], config: StairsConfig, device: torch.device):
        super().__init__(layouts, config, device)
        self.generator = torch.Generator(device=device).manual_seed(
            int(torch.randint(0, 2**31 - 1, (1,)).item()))

    def make_agent(self, layouts: list[Layout]) -> nn.Module:
        c = self.config
        return StairsAgent(layouts, c.emb, c.heads, c.h_cycles, c.l_cycles, c.high_step,
                           c.spatial, c.temporal)

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        c, lay = self.config, self.layouts[task]
        qs = self.agent.unroll(batch.obs, batch.actions, lay, c.token_dropout, self.generator)
        with torch.no_grad():
            plain = (self.agent.unroll(batch.obs, batch.actions, lay) if c.token_dropout > 0
                     else qs.detach())
            target_qs = self.target_agent.unroll(batch.obs, batch.actions, lay)
        # the double-Q argmax comes from the online pass without dropout
        q_tot, y, mask, _ = td_terms(qs, target_qs, batch, self.mixer, self.target_mixer,
                                     lay, c.gamma, c.double_q, argmax_qs=plain)
        denom = mask.sum().clamp(min=1.0)
        td = ((q_tot - y) ** 2 * mask).sum() / denom
        # BC on the raw Q values: no availability mask, padded rows in the numerator
        bc = cloning_loss(qs, batch, lay.n_agents)
        self._last = {"td_loss": td.detach(), "bc_loss": bc.detach()}
        return td + c.bc_coef * bc

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def policy(self) -> Policy:
        self.agent.eval()
        return StairsPolicy(self.agent, self.layouts, self.device)
