"""BC-r: return-conditioned behaviour cloning (algorithms.md §2.3, ``mt_bcr_controller``).

BC-t's network and loss with one more own-token input: the return-to-go. In training it is the
sum of the episode's rewards from step t on; at test time it starts at 20.0 (a won episode's
scaled return) and each observed reward is subtracted from it. ``reference_quirks: true``
reproduces the reference's return-to-go instead (:func:`reference_returns`; constant at test).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import FiniteFloat
from marlbench.learners.base import Policy, register
from marlbench.learners.bc_t import BCT, BCTConfig, EntityAgent, cloning_loss

RTG_INIT = 20.0


def returns_to_go(reward: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """reward, filled [B, T] → Σ_{k ≥ t} r_k within each episode, [B, T]."""
    r = reward * filled
    return r.flip(1).cumsum(1).flip(1)


def reference_returns(reward: torch.Tensor, n_agents: int,
                      length: torch.Tensor | None = None) -> torch.Tensor:
    """What the reference feeds as return-to-go (``mt_bcr_controller.py`` 55–56): the
    time-reversed prefix sum ``flip(cumsum(r))``, so step t reads Σ_{k ≤ T−1−t} r_k, tiled
    episode-major (``repeat(n, 1)``) while the inputs are ordered b·n + i, so agent i of
    episode b reads episode (b·n + i) mod B. reward [B, T] → [B, T, n]; ``length``: the
    batch's own T when it is padded (a fused group), default T."""
    b, t = reward.shape
    prefix = reward.cumsum(1)
    if length is None:
        flipped = prefix.flip(1)  # [B, T]
    else:  # row t reads prefix[length − 1 − t]
        idx = (length - 1 - torch.arange(t, device=reward.device)).clamp(min=0)
        flipped = prefix.gather(1, idx.expand(b, t))
    source = (torch.arange(b)[:, None] * n_agents + torch.arange(n_agents)[None, :]) % b
    return flipped[source.to(reward.device)].transpose(1, 2)  # [B, n, T] → [B, T, n]


class BCRConfig(BCTConfig):
    rtg_init: FiniteFloat = RTG_INIT
    # True: the reference's return-to-go (:func:`reference_returns` in training; at test time
    # it stays ``rtg_init``, since the reference subtracts step t's reward before it is known).
    # False: the true return-to-go in training, the observed rewards subtracted at test time.
    reference_quirks: bool = False


class ReturnPolicy(Policy):
    """Greedy BC-r actions; state = (history token, last actions, return-to-go [B, n, 1])."""

    uses_reward = True

    def __init__(self, agent: EntityAgent, layouts: dict[str, Layout], device: torch.device,
                 rtg_init: float, constant: bool = False):
        self.agent, self.layouts, self.device, self.rtg_init = agent, layouts, device, rtg_init
        self.constant = constant  # the reference's quirk: the return-to-go never moves

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
        if reward is not None and not self.constant:
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
    quirks = ("the reference's return-to-go: the time-reversed prefix sum tiled across the "
              "wrong episodes in training, a constant 20 at test; default: the true "
              "return-to-go")
    extra_own = 1

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        lay = self.layouts[task]
        if self.config.reference_quirks:
            extra = reference_returns(batch.reward, lay.n_agents, batch.length)[..., None]
        else:
            rtg = returns_to_go(batch.reward, batch.filled)
            extra = rtg[:, :, None, None].expand(*batch.actions.shape, 1)
        logits = self.agent.unroll(batch.obs, batch.actions, lay, extra)
        return cloning_loss(logits, batch, lay.n_agents)

    def policy(self) -> Policy:
        self.agent.eval()
        return ReturnPolicy(self.agent, self.layouts, self.device, self.config.rtg_init,
                            constant=self.config.reference_quirks)

