"""MADS4: S4 sequence agents over the sequentially expanded MDP (algorithms.md §3.9).

Facts from ``ashmita695/MADS4`` at 387e44c (``gym/decision_transformer/models/s4_muj.py``,
``S4_mujoco_wrapper_v3`` and ``S4_Block``; ``training/seq_trainer.py``;
``evaluation/evaluate_episodes_warehouse.py``; ``gym/experiment_warehouse.py``):

- One network shared by the agents, which act in sequence (the SE-MDP): agent i's input is
  [one-hot id (n), Linear(1 → 128)(return-to-go), Linear(obs → 128), Linear(state → 128),
  the *predicted logits* of agents 0 … i−1 each through Linear(|A| → 128), zero-padded to
  (n − 1)·128, its own action one-hot (|A|, not embedded)] → Linear(→ H = 96) → 3 ×
  ``S4_Block`` (S4 → GELU → Linear(96, 96) → GELU; no norm, no residual) → Linear(96, |A|,
  no bias). Gradients flow from agent i's loss into the logits of its predecessors.
- S4: HiPPO-LegS NPLR, N = 96, kernel length K, only C̃ and D trainable
  (:mod:`marlbench.nets.s4`).
- Loss: Σ over agents of the cross-entropy of its logits on the dataset action, each a mean
  over the unmasked steps; no availability mask. Return-to-go: the undiscounted sum of the
  team rewards from the step on (scale 1), over episodes from their first step, right-padded,
  cut to K steps. AdamW over all parameters (lr 1e-3 and weight decay 1e-4 in the warehouse
  runs), LR warm-up min((step + 1) / 10,000, 1), gradient norm clipped at 0.25, batch 64.
- Evaluation: the return-to-go starts at 1.2 × the largest episode return of the data and the
  reward of every step is subtracted; the masked logits are sampled.

The reference's alignment (``reference_quirks: true``): training (``del_r = 1``) pairs the
observation and state of step t with the action and return-to-go of step t − 1 and predicts
a_t for t ≥ 1 (the first step's action is never a target); evaluation (``running=True``) pairs
step t's observation with step t's return-to-go and a zero placeholder in the action slot,
re-reading the history with the actions taken at their own steps. Here the recurrent policy
steps twice per step in that mode (once with the placeholder to act, once with the taken
action to carry the state), which equals re-reading the history. Default (``false``), a
deviation that aligns the two: every step t reads its own return-to-go and the previous
action (zeros at t = 0), in training and evaluation alike, and every step's action is a target.

Deviations: the return-to-go is the team reward's (the reference stores one per agent; equal
for SMAC, and the suite's reward contract decides for the warehouse); observations are
standardised per feature over all agents by the suite (``training.standardise``), not per
agent; inputs are zero-padded to the widest task as the other flat learners. The reference
also evaluates at 0.9 × the smallest return; only the 1.2 × max target is run. Jobs do not
train fused (``run --fuse``): each job's target comes from its own data.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch, TaskData
from marlbench.envs.maps import Layout
from marlbench.fields import Count, FiniteFloat, NonNegative, Positive, Probability, Width
from marlbench.learners.base import Learner, LearnerConfig, Policy, register
from marlbench.learners.bc_r import returns_to_go
from marlbench.nets.flat import FlatWidths, masked_logits, task_logits
from marlbench.nets.s4 import S4Block


class MADS4Config(LearnerConfig):
    lr: Positive = 1e-3  # experiment_warehouse.py (gym/experiment.py: 1e-4)
    weight_decay: NonNegative = 1e-4
    warmup_steps: Count = 10000
    grad_norm_clip: Positive = 0.25
    embed: Width = 128  # embed_dim
    channels: Width = 96  # s4interface (H)
    state_size: Width = 96  # s4internal (N)
    layers: Width = 3  # s4_layers
    context: Count = 500  # K, the S4 kernel length
    dropout: Probability = 0.0  # s4dropoutval
    target_scale: Positive = 1.2  # evaluation return-to-go = this × the data's largest return
    target_return: FiniteFloat | None = None  # a fixed evaluation return-to-go instead
    reference_quirks: bool = False
    mode: Literal["nplr"] = "nplr"


class MADS4Net(nn.Module):
    """The shared agent network; ``unroll`` for sequences, ``step`` for one time step."""

    def __init__(self, widths: FlatWidths, state_dim: int, config: MADS4Config):
        super().__init__()
        e, n, a = config.embed, widths.agents, widths.actions
        self.widths, self.state_dim, self.embed = widths, state_dim, e
        self.obs_encoder = nn.Linear(widths.obs, e)
        self.state_encoder = nn.Linear(state_dim, e)
        self.ret_emb = nn.Linear(1, e)
        self.prev_action_embeddings = nn.Linear(a, e)
        self.input_projection = nn.Linear(e * (3 + n - 1) + n + a, config.channels)
        self.blocks = nn.ModuleList(
            S4Block(config.channels, config.state_size, config.context, config.dropout)
            for _ in range(config.layers))
        self.output_projection = nn.Linear(config.channels, a, bias=False)

    def _inputs(self, i: int, obs: torch.Tensor, state_e: torch.Tensor, ret_e: torch.Tensor,
                own: torch.Tensor, before: list[torch.Tensor]) -> torch.Tensor:
        """Agent i's projected input; leading dims [...]: obs [..., o], own [..., A]."""
        n = self.widths.agents
        lead = obs.shape[:-1]
        ident = torch.zeros(*lead, n, dtype=obs.dtype, device=obs.device)
        ident[..., i] = 1
        obs = F.pad(obs, (0, self.widths.obs - obs.shape[-1]))
        pred = [self.prev_action_embeddings(lg) for lg in before]
        pad = obs.new_zeros(*lead, (n - 1 - len(before)) * self.embed)
        u = torch.cat([ident, ret_e, self.obs_encoder(obs), state_e, *pred, pad, own], dim=-1)
        return self.input_projection(u)

    def _shared(self, state: torch.Tensor, rtg: torch.Tensor):
        state = F.pad(state, (0, self.state_dim - state.shape[-1]))
        return self.state_encoder(state), self.ret_emb(rtg[..., None])

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, own: torch.Tensor,
               rtg: torch.Tensor) -> list[torch.Tensor]:
        """obs [B, L, n, o], state [B, L, S], own action slot [B, L, n, A], rtg [B, L] →
        per agent logits [B, L, A] (agent i's computed from agents < i's)."""
        state_e, ret_e = self._shared(state, rtg)
        logits: list[torch.Tensor] = []
        for i in range(obs.shape[2]):
            y = self._inputs(i, obs[:, :, i], state_e, ret_e, own[:, :, i], logits)
            for block in self.blocks:
                y = block(y)
            logits.append(self.output_projection(y))
        return logits

    def step(self, obs: torch.Tensor, state: torch.Tensor, own: torch.Tensor,
             rtg: torch.Tensor, x: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One time step: obs [B, n, o], state [B, S], own [B, n, A], rtg [B], S4 states per
        block [B, n, H, N] → logits [B, n, A] and the next S4 states."""
        state_e, ret_e = self._shared(state, rtg)
        logits: list[torch.Tensor] = []
        new = [torch.empty_like(s) for s in x]
        for i in range(obs.shape[1]):
            y = self._inputs(i, obs[:, i], state_e, ret_e, own[:, i], logits)
            for k, block in enumerate(self.blocks):
                y, new[k][:, i] = block.step(y, x[k][:, i])
            logits.append(self.output_projection(y))
        return torch.stack(logits, 1), new


class MADS4Policy(Policy):
    """Recurrent acting with the return-to-go; state = (S4 states, own action slot [B, n, A],
    return-to-go [B], first step?)."""

    uses_reward = True
    uses_state = True

    def __init__(self, net: MADS4Net, layouts: dict[str, Layout], device: torch.device,
                 targets: dict[str, float], quirks: bool):
        self.net, self.layouts, self.device = net, layouts, device
        self.targets, self.quirks = targets, quirks
        self.generator: torch.Generator | None = None

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        x = [b.s4.default_state(batch_size * n).view(batch_size, n, b.s4.channels, b.s4.state)
             for b in self.net.blocks]
        own = torch.zeros(batch_size, n, self.net.widths.actions, device=self.device)
        rtg = torch.full((batch_size,), self.targets[task], device=self.device)
        return x, own, rtg, True

    @torch.no_grad()
    def act(self, obs, avail, state, task, reward=None, global_state=None):
        x, own, rtg, first = state
        if reward is not None and not first:
            rtg = rtg - torch.as_tensor(np.asarray(reward), device=self.device,
                                        dtype=rtg.dtype)
        o = torch.as_tensor(np.asarray(obs), device=self.device, dtype=torch.float32)
        s = torch.as_tensor(np.asarray(global_state), device=self.device, dtype=torch.float32)
        av = torch.as_tensor(np.asarray(avail), device=self.device)
        slot = torch.zeros_like(own) if self.quirks else own
        logits, nxt = self.net.step(o, s, slot, rtg, x)
        logits = masked_logits(task_logits(logits, self.layouts[task]), av)
        if self.generator is None:
            actions = logits.argmax(-1)
        else:
            probs = F.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
            actions = torch.multinomial(probs, 1, generator=self.generator).view(
                logits.shape[:-1])
        taken = F.one_hot(actions, self.net.widths.actions).float()
        if self.quirks:  # the history holds each step's own action: carry that state
            _, nxt = self.net.step(o, s, taken, rtg, x)
        return actions.cpu().numpy().astype(np.int64), (nxt, taken, rtg, False)

    def sampling(self, seed: int) -> Policy:
        sampler = copy.copy(self)
        sampler.generator = torch.Generator(device=self.device).manual_seed(seed)
        return sampler


@register
class MADS4(Learner):
    name = "mads4"
    label = "MADS4"
    title = "MADS4 (S4 agents acting in sequence, return-conditioned)"
    Config = MADS4Config
    fusable = False  # each job's evaluation return-to-go comes from its own data
    quirks = ("the reference's alignment: training reads step t−1's action and return-to-go "
              "with step t's observation, evaluation step t's return-to-go and a zero action "
              "slot; default: both read step t's return-to-go and the previous action")

    def __init__(self, layouts: dict[str, Layout], config: MADS4Config, device: torch.device):
        super().__init__(layouts, config, device)
        self.widths = FlatWidths.of(layouts)
        state_dim = max(lay.state_dim for lay in layouts.values())
        self.agent = MADS4Net(self.widths, state_dim, config).to(device)
        self.optimiser = torch.optim.AdamW(self.agent.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        warm = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimiser, lambda steps: min((steps + 1) / warm, 1))
        self.targets: dict[str, float] = {}

    def observe_data(self, data: list[dict[str, TaskData]]) -> None:
        """The evaluation return-to-go of each task from its data's largest episode return."""
        if len(data) != 1:
            raise ValueError("mads4 does not train fused: each job's return-to-go comes from "
                             "its own data")
        self.targets = {task: self.config.target_scale * float(np.max(d.returns))
                        for task, d in data[0].items()}

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        lay = self.layouts[task]
        length = min(batch.obs.shape[1], self.config.context)
        obs, state = batch.obs[:, :length], batch.state[:, :length]
        actions, mask = batch.actions[:, :length].long(), batch.mask[:, :length]
        rtg = returns_to_go(batch.reward, batch.filled)[:, :length]
        onehot = F.one_hot(actions, self.widths.actions).float()
        if self.config.reference_quirks:  # step t reads step t−1's action and return-to-go
            logits = self.agent.unroll(obs[:, 1:], state[:, 1:], onehot[:, :-1], rtg[:, :-1])
            target, mask = actions[:, 1:], mask[:, 1:]
        else:
            previous = F.pad(onehot, (0, 0, 0, 0, 1, 0))[:, :-1]
            logits = self.agent.unroll(obs, state, previous, rtg)
            target = actions
        total = torch.zeros((), device=obs.device)
        weight = mask.sum().clamp(min=1)
        for i, lg in enumerate(logits):
            ce = F.cross_entropy(task_logits(lg, lay).reshape(-1, lay.n_actions),
                                 target[:, :, i].reshape(-1), reduction="none")
            total = total + (ce * mask.reshape(-1)).sum() / weight
        return total

    def after_step(self) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.agent.state_dict(), "optimiser": self.optimiser.state_dict(),
                "scheduler": self.scheduler.state_dict(), "targets": dict(self.targets)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        if "optimiser" in state:
            self.optimiser.load_state_dict(state["optimiser"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.targets = dict(state.get("targets", {}))

    def policy(self) -> Policy:
        self.agent.eval()
        targets = dict(self.targets)
        if self.config.target_return is not None:
            targets = {task: self.config.target_return for task in self.layouts}
        missing = [t for t in self.layouts if t not in targets]
        if missing:
            raise ValueError(f"mads4 has no evaluation return-to-go for {', '.join(missing)}: "
                             "train it on data first or set target_return")
        return MADS4Policy(self.agent, self.layouts, self.device, targets,
                           self.config.reference_quirks)
