"""BC-t: behaviour cloning with the UPDeT-style entity transformer (algorithms.md §2.3).

Logits come from the family's Q head; the loss is cross-entropy on dataset actions, summed over
every row of the padded batch and divided by the mask sum and the number of agents, as the
reference ``bc_learner`` does (padded rows take part in the numerator; no availability mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Width
from marlbench.learners.base import AgentState, Learner, LearnerConfig, Policy, register
from marlbench.nets.entity import EntityTokenizer, action_values, entity_widths
from marlbench.nets.transformer import Transformer


class EntityAgent(nn.Module):
    """[own, enemies…, allies…, history] → transformer → action logits; history carried in time."""

    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int,
                 extra_own: int = 0):
        super().__init__()
        self.emb = emb
        self.tokenizer = EntityTokenizer(layouts, emb, extra_own)
        self.transformer = Transformer(emb, heads, depth, emb)
        self.q_basic = nn.Linear(emb, entity_widths(layouts)[-1])

    def step(
        self, tokens: torch.Tensor, hist: torch.Tensor, layout: Layout
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, E, emb], hist [N, 1, emb] → logits [N, A], next hist [N, 1, emb] (the
        last block computes only the rows read: own, enemies, history)."""
        out = self.transformer(torch.cat([tokens, hist], dim=1), keep=(1 + layout.n_enemies, 1))
        return action_values(self.q_basic, out, layout), out[:, -1:, :]

    def unroll(self, obs: torch.Tensor, actions: torch.Tensor, layout: Layout,
               extra_own: torch.Tensor | None = None) -> torch.Tensor:
        """obs [B, T, n, obs], actions [B, T, n] → logits [B, T, n, A] (teacher-forced history);
        ``extra_own`` [B, T, n, k] is appended to the own token's input."""
        b, t, n = obs.shape[:3]
        last = torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], dim=1)
        tokens = self.tokenizer(obs, last, layout, extra_own)  # embed all steps at once
        # one unbind (not T selects) keeps the backward pass from zero-filling T full copies
        steps = tokens.transpose(0, 1).reshape(t, b * n, -1, self.emb).unbind(0)
        hist = obs.new_zeros(b * n, 1, self.emb)
        logits = []
        for tokens_t in steps:
            q, hist = self.step(tokens_t, hist, layout)
            logits.append(q)
        return torch.stack(logits, dim=1).view(b, n, t, -1).transpose(1, 2)


def cloning_loss(logits: torch.Tensor, batch: Batch, n_agents: int) -> torch.Tensor:
    """Cross-entropy of logits [B, T, n, A] on the dataset actions, summed over every row of
    the batch (its padded episodes' rows too, as the references do; not a fused group's
    padding, ``batch.rows``) / mask sum / n."""
    b, t, n, a = logits.shape
    ce = F.cross_entropy(logits.reshape(-1, a), batch.actions.reshape(-1), reduction="none")
    return (ce.view(b, t, n) * batch.rows[:, None]).sum() / batch.mask.sum() / n_agents


class BCTConfig(LearnerConfig):
    emb: Width = 64
    heads: Width = 1
    depth: Width = 1


class EntityPolicy(Policy):
    """Greedy actions from an :class:`EntityAgent`; state = (history token, last actions)."""

    def __init__(self, agent: EntityAgent, layouts: dict[str, Layout], device: torch.device):
        self.agent, self.layouts, self.device = agent, layouts, device

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        hist = torch.zeros(batch_size * n, 1, self.agent.emb, device=self.device)
        last = torch.full((batch_size, n), -1, dtype=torch.long, device=self.device)
        return hist, last

    @torch.no_grad()
    def act(self, obs, avail, state, task):
        lay = self.layouts[task]
        hist, last = state
        o = torch.as_tensor(obs, device=self.device)
        av = torch.as_tensor(avail, device=self.device)
        b, n = o.shape[:2]
        tokens = self.agent.tokenizer(o, last, lay).reshape(b * n, -1, self.agent.emb)
        q, hist = self.agent.step(tokens, hist, lay)
        q = q.view(b, n, -1).masked_fill(av == 0, -1e10)
        actions = q.argmax(-1)
        return actions.cpu().numpy().astype(np.int64), (hist, actions)


@register
class BCT(AgentState, Learner):
    name = "bc_t"
    label = "BC-t"
    title = "BC-t (behaviour cloning, entity transformer)"
    Config = BCTConfig
    extra_own = 0  # extra own-token inputs (BC-r: the return-to-go)

    def __init__(self, layouts: dict[str, Layout], config: BCTConfig, device: torch.device):
        super().__init__(layouts, config, device)
        self.agent = EntityAgent(list(layouts.values()), config.emb, config.heads, config.depth,
                                 self.extra_own)
        self.agent.to(device)
        self.optimiser = torch.optim.Adam(self.agent.parameters(), lr=config.lr)

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        lay = self.layouts[task]
        logits = self.agent.unroll(batch.obs, batch.actions, lay)
        return cloning_loss(logits, batch, lay.n_agents)

    def policy(self) -> Policy:
        self.agent.eval()
        return EntityPolicy(self.agent, self.layouts, self.device)
