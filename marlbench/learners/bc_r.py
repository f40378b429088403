"""BC-r: return-conditioned behaviour cloning (algorithms.md §2.3, ``mt_bcr_controller``).

BC-t's network and loss with one more own-token input: the return-to-go. In training it is the
sum of the episode's rewards from step t on; at test time it starts at 20.0 (a won episode's
scaled return) and each observed reward is subtracted from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import FiniteFloat
from marlbench.learners.base import Policy, register
from marlbench.learners.bc_t import BCT, BCTConfig, EntityAgent

RTG_INIT = 20.0


def returns_to_go(reward: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """reward, filled [B, T] → Σ_{k ≥ t} r_k within each episode, [B, T]."""
    r = reward * filled
    return r.flip(1).cumsum(1).flip(1)


class BCRConfig(BCTConfig):
    rtg_init: FiniteFloat = RTG_INIT


class ReturnPolicy(Policy):
    """Greedy BC-r actions; state = (history token, last actions, return-to-go [B, n, 1])."""

    uses_reward = True

    def __init__(self, agent: EntityAgent, layouts: dict[str, Layout], device: torch.device,
                 rtg_init: float):
        self.agent, self.layouts, self.device, self.rtg_init = agent, layouts, device, rtg_init

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        hist = torch.zeros(batch_size * n, 1, self.agent.emb, device=self.device)
        last = torch.full((batch_size, n), -1, dtype=torch.long, device=self.device)
        rtg = torch.full((batch_size, n, 1), self.rtg_init, device=self.device)
        return hist, last, rtg

    @torch.no_grad()
    def act(self, obs, avail, state, task, reward=None):
        lay = self.layouts[task]
        hist, last, rtg = state
        if reward is not None:
            seen = torch.tensor(np.asarray(reward), device=self.device, dtype=rtg.dtype)
            rtg = rtg - seen[:, None, None]
        o = torch.as_tensor(obs, device=self.device)
        av = torch.as_tensor(avail, device=self.device)
        b, n = o.shape[:2]
        tokens = self.agent.tokenizer(o, last, lay, rtg).reshape(b * n, -1, self.agent.emb)
        q, hist = self.agent.step(tokens, hist, lay)
        actions = q.view(b, n, -1).masked_fill(av == 0, -1e10).argmax(-1)
        return actions.cpu().numpy().astype(np.int64), (hist, actions, rtg)


@register
class BCR(BCT):
    name = "bc_r"
    label = "BC-r"
    title = "BC-r (return-conditioned behaviour cloning, entity transformer)"
    Config = BCRConfig
    extra_own = 1

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        lay = self.layouts[task]
        rtg = returns_to_go(batch.reward, batch.filled)
        extra = rtg[:, :, None, None].expand(*batch.actions.shape, 1)
        logits = self.agent.unroll(batch.obs, batch.actions, lay, extra)
        a = logits.shape[-1]
        ce = F.cross_entropy(logits.reshape(-1, a), batch.actions.reshape(-1), reduction="sum")
        return ce / batch.mask.sum() / lay.n_agents

    def policy(self) -> Policy:
        self.agent.eval()
        return ReturnPolicy(self.agent, self.layouts, self.device, self.config.rtg_init)

