"""OMIGA: offline multi-agent RL with implicit global-to-local value regularisation
(algorithms.md §3.6).

Facts from ``ZhengYinan-AIR/OMIGA``, branch ``SMAC`` (``models/omiga_model.py``,
``framework/trainer_omiga.py``, ``framework/rollout_omiga.py``, ``run_omiga_sc2.py``):

- Per-agent networks shared by the agents, on the observation with the one-hot id appended:
  Q (→ 256 → 256 → |A|), V (→ 256 → 256 → 1) and the actor (→ 256 → 256 → |A| logits),
  ReLU. Mixer: w(s) = |Linear(64 → n)(ReLU(Linear(S → 64)))|, b(s) = Linear(64 → 1)(the same
  hidden); ``v_mix_model`` is built but never used: V is mixed with the Q mixer's weights.
- Losses, on a batch of transitions: Q_tot = Σ_i w_i Q_i(a_i) + b regressed on r + γ(1 − d)
  V_tot'(s') (V_tot' with the target networks' V and mixer); with the target Q and mixer,
  z = (w'·Q' − w'·V)/α clamped to [−10, 10], m = max(max z, −1) (detached); V loss = mean of
  exp(z − m) + exp(−m)·w'·V/α; actor loss = −mean(exp(z) · log π(a_i | o_i)) with exp(z)
  detached and no availability mask.
- Settings: α 10, γ 0.99, τ 0.005 (soft update of every network, the actor's included, into
  one target copy after each step), Adam lr 5e-4 for each of three optimisers (actor; Q and
  the mixer; V), each clipped to gradient norm 1.0; the three losses are computed before any
  step; 128 transitions per batch; 55 epochs over 1,000 episodes.
- Evaluation: greedy actor with unavailable actions masked.

Deviations: one marlbench update is one step of the three optimisers on every transition of
``batch_episodes`` episodes (the references' batches are 128 shuffled transitions). The mixer
reads the environment's global state [S]; the reference concatenates MAPPO's agent-specific
states of the n agents ([n·S], ``use_state_agent``), which SMAC-format data do not carry. The
episode end d is the data's ``terminated`` (the reference infers it from s' = s); with several
tasks, inputs are padded to the widest and the mixer's weights cut to the task's agents. The
maximum of z runs over the batch's transitions only (the reference's batches hold no padding).
Jobs do not train fused (three optimisers stepping apart).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, Positive, Width
from marlbench.learners.base import LearnerConfig, Metrics, register
from marlbench.learners.bc import FlatLearner
from marlbench.nets.flat import agent_inputs, task_logits


class OMIGAConfig(LearnerConfig):
    lr: Positive = 5e-4  # offline_lr
    grad_norm_clip: Positive = 1.0  # TrainerConfig.grad_norm_clip
    alpha: Positive = 10.0
    gamma: Discount = 0.99
    tau: Positive = 0.005
    hidden: Width = 256
    hyper_hidden: Width = 64  # hyper_hidden_dim


def _mlp(inputs: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, out))


class Mixer(nn.Module):
    """w(s) = |w_v(ReLU(f_v(s)))| [.., n], b(s) = b_v(ReLU(f_v(s))) [.., 1]."""

    def __init__(self, state_dim: int, agents: int, hidden: int):
        super().__init__()
        self.f_v = nn.Linear(state_dim, hidden)
        self.w_v = nn.Linear(hidden, agents)
        self.b_v = nn.Linear(hidden, 1)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.f_v(state))
        return self.w_v(x).abs(), self.b_v(x)


class OMIGANet(nn.Module):
    def __init__(self, inputs: int, actions: int, state_dim: int, agents: int,
                 config: OMIGAConfig):
        super().__init__()
        self.q = _mlp(inputs, config.hidden, actions)
        self.v = _mlp(inputs, config.hidden, 1)
        self.actor = _mlp(inputs, config.hidden, actions)
        self.mixer = Mixer(state_dim, agents, config.hyper_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The policy's logits."""
        return self.actor(x)


@register
class OMIGA(FlatLearner):
    name = "omiga"
    label = "OMIGA"
    title = "OMIGA (implicit global-to-local value regularisation)"
    Config = OMIGAConfig
    network_names = ("agent", "target")
    fusable = False  # three optimisers stepping apart

    def __init__(self, layouts: dict[str, Layout], config: OMIGAConfig, device: torch.device):
        super().__init__(layouts, config, device)
        self.state_dim = max(lay.state_dim for lay in layouts.values())
        self.agent = OMIGANet(self.widths.inputs, self.widths.actions, self.state_dim,
                              self.widths.agents, config).to(device)
        self.target = copy.deepcopy(self.agent)
        self.target.requires_grad_(False)
        a = self.agent
        self.optimisers = {
            "actor": torch.optim.Adam(a.actor.parameters(), lr=config.lr),
            "q": torch.optim.Adam([*a.q.parameters(), *a.mixer.parameters()], lr=config.lr),
            "v": torch.optim.Adam(a.v.parameters(), lr=config.lr),
        }

    def _mix(self, mixer: Mixer, state: torch.Tensor, n: int):
        w, b = mixer(F.pad(state, (0, self.state_dim - state.shape[-1])))
        return w[..., :n], b

    def losses(self, batch: Batch, task: str) -> dict[str, torch.Tensor]:
        """The three losses on the batch's transitions (row t → row t + 1)."""
        lay, c = self.layouts[task], self.config
        n = lay.n_agents
        x = agent_inputs(batch.obs, self.widths)
        x_now, x_next = x[:, :-1], x[:, 1:]
        s_now, s_next = batch.state[:, :-1], batch.state[:, 1:]
        act = batch.actions[:, :-1].long().unsqueeze(-1)
        mask = batch.mask[:, :-1]
        r, done = batch.reward[:, :-1], batch.terminated[:, :-1]
        count = mask.sum().clamp(min=1)

        def mean(v: torch.Tensor) -> torch.Tensor:  # over transitions (and agents)
            m = mask if v.dim() == 2 else mask[..., None]
            return (v * m).sum() / (count * (1 if v.dim() == 2 else v.shape[-1]))

        q = task_logits(self.agent.q(x_now), lay).gather(-1, act).squeeze(-1)  # [B, T, n]
        w, b = self._mix(self.agent.mixer, s_now, n)
        q_total = (w * q).sum(-1) + b.squeeze(-1)
        with torch.no_grad():
            v_next = self.target.v(x_next).squeeze(-1)
            w_next, b_next = self._mix(self.target.mixer, s_next, n)
            v_next_total = (w_next * v_next).sum(-1) + b_next.squeeze(-1)
            expected = r + c.gamma * (1 - done) * v_next_total
            target_q = task_logits(self.target.q(x_now), lay).gather(-1, act).squeeze(-1)
            target_w, _ = self._mix(self.target.mixer, s_now, n)
        q_loss = mean((q_total - expected) ** 2)
        v = self.agent.v(x_now).squeeze(-1)
        z = ((target_w * target_q - target_w * v) / c.alpha).clamp(-10.0, 10.0)
        valid = mask[..., None].expand_as(z) > 0
        max_z = z.detach()[valid].max().clamp(min=-1.0) if valid.any() else z.new_tensor(-1.0)
        v_loss = mean(torch.exp(z - max_z) + torch.exp(-max_z) * target_w * v / c.alpha)
        logits = task_logits(self.agent.actor(x_now), lay)
        log_probs = F.log_softmax(logits, -1).gather(-1, act).squeeze(-1)
        actor_loss = -mean(torch.exp(z).detach() * log_probs)
        return {"actor": actor_loss, "q": q_loss, "v": v_loss}

    def update_round(self, batches: dict[str, Batch]) -> Metrics:
        self.agent.train()
        for opt in self.optimisers.values():
            opt.zero_grad()
        totals = {k: torch.zeros((), device=self.device) for k in self.optimisers}
        for task, batch in batches.items():
            losses = self.losses(batch.to(self.device), task)
            sum(losses.values()).backward()  # disjoint parameters: each loss reaches its own
            for k in totals:
                totals[k] = totals[k] + losses[k].detach()
        norms = {}
        for k, opt in self.optimisers.items():
            params = [p for g in opt.param_groups for p in g["params"]]
            norms[k] = nn.utils.clip_grad_norm_(params, self.config.grad_norm_clip)
            opt.step()
        with torch.no_grad():
            tau = self.config.tau
            for p, t in zip(self.agent.parameters(), self.target.parameters(), strict=True):
                t.mul_(1 - tau).add_(tau * p)
        k = len(batches)
        return {"loss": sum(totals.values()) / k, "grad_norm": norms["actor"],
                **{f"{name}_loss": v / k for name, v in totals.items()}}

    def step(self, inputs: torch.Tensor, state: Any, task: str) -> tuple[torch.Tensor, Any]:
        return self.agent.actor(inputs), state

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.agent.state_dict(), "target": self.target.state_dict(),
                "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.target.load_state_dict(state["target"])
        for k, o in self.optimisers.items():
            if k in state.get("optimisers", {}):
                o.load_state_dict(state["optimisers"][k])
