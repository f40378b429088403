"""ODIS (algorithms.md §2.4): offline data-driven skill discovery, then a skill-conditioned
multi-task policy.

Phase 1 (skill pre-training, the first ``pretrain_fraction`` of the job's task batches; the
reference's 15k of 15k + 35k): a state encoder reads the global state with the *current* joint
action (entity attention, softmax over queries, pooled per ally) and ``encoder`` (Linear 64 → K)
gives per-agent skill logits; a Gumbel-softmax sample (τ 1) conditions the decoder, an entity
transformer over local observations whose action head Linear(64 + 64 → 6) reads [token output,
Linear(skill)]. Loss = Σ_t CE_t / mask_t / n, over T − 1, + β·KL(sample ‖ uniform), β 0.001.

Phase 2 (a fresh optimiser; encoder, state encoder and decoder frozen): skill labels = argmax
of the state encoder; Q over skills from the observation encoder (transformer + Linear 64 → K),
mixed by ``mt_qattn``. Loss = TD² + α·cons + φ·CE, α = φ = 5, where CE trains the observation
encoder to predict the labels through the frozen ``encoder`` head (as the reference does). The
target network is copied every 80 task batches of phase 2.

Execution: skill = argmax_z Q(o, z); action = argmax of the decoder given (o, skill).
Gradients are summed over every seen task's batch, then one step (``per_round``).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, Interval, NonNegative, Probability, Rate, Width
from marlbench.learners.base import Learner, LearnerConfig, Metrics, Policy, register
from marlbench.learners.updet_m import NETWORKS, copy_targets, load_networks, networks_state
from marlbench.nets.entity import entity_widths
from marlbench.nets.history import HistoryTransformer
from marlbench.nets.mixers import (
    make_mixer,
    query_softmax_attention,
    state_entities_with_actions,
    state_entity_widths,
)


class StateSkillEncoder(nn.Module):
    """Global state + current joint action → one feature per ally [..., n, emb]."""

    def __init__(self, layouts: list[Layout], emb: int = 64, attn_embed: int = 8):
        super().__init__()
        widths = {state_entity_widths(lay) for lay in layouts}
        if len(widths) != 1:
            raise ValueError(f"task layouts disagree on state entity widths: {sorted(widths)}")
        (wa, we), nb = widths.pop(), layouts[0].n_no_attack
        self.ally_encoder = nn.Linear(wa + 2 * (nb + 1), emb)
        self.enemy_encoder = nn.Linear(we + 1, emb)
        self.query = nn.Linear(emb, attn_embed)
        self.key = nn.Linear(emb, attn_embed)

    def forward(self, state: torch.Tensor, actions: torch.Tensor, layout: Layout) -> torch.Tensor:
        allies, enemies = state_entities_with_actions(state, actions, layout)
        entities = torch.cat([self.ally_encoder(allies), self.enemy_encoder(enemies)], -2)
        out = query_softmax_attention(entities, self.query, self.key)
        return out[..., : layout.n_agents, :]


class SkillDecoder(nn.Module):
    """Entity transformer over local observations; actions from [token output, Linear(skill)]:
    basic values from the own token, attack j = mean of the same head on enemy token j."""

    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int, skills: int):
        super().__init__()
        self.body = HistoryTransformer(layouts, emb, heads, depth)
        self.skill_enc = nn.Linear(skills, emb)
        self.q_skill = nn.Linear(2 * emb, entity_widths(layouts)[-1])

    def head(self, out: torch.Tensor, skill: torch.Tensor, layout: Layout) -> torch.Tensor:
        """out [..., tokens, emb], skill [..., K] → action values [..., A]."""
        s = self.skill_enc(skill)
        basic = self.q_skill(torch.cat([out[..., 0, :], s], -1))
        if layout.n_attack == 0:
            return basic
        enemies = out[..., 1 : 1 + layout.n_enemies, :]
        s_e = s.unsqueeze(-2).expand(*enemies.shape[:-1], s.shape[-1])
        attack = self.q_skill(torch.cat([enemies, s_e], -1)).mean(-1)
        return torch.cat([basic, attack], -1)


class OdisAgent(nn.Module):
    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int, skills: int,
                 attn_embed: int):
        super().__init__()
        self.skills = skills
        self.state_encoder = StateSkillEncoder(layouts, emb, attn_embed)
        self.obs_encoder = HistoryTransformer(layouts, emb, heads, depth)
        self.encoder = nn.Linear(emb, skills)  # skill logits (state side) / classifier (obs side)
        self.qnet = nn.Linear(emb, skills)
        self.decoder = SkillDecoder(layouts, emb, heads, depth, skills)


def gumbel_noise(shape: torch.Size, layout: Layout, device: torch.device) -> torch.Tensor:
    """Gumbel(0, 1) noise of ``shape`` [B, T, ...], as ``F.gumbel_softmax`` draws it from
    torch's generator, but drawn for the task's full length (episode limit + 1 rows) and cut
    to T, so that the draw does not depend on the batch's length (a job alone and in a fused
    group draw the same)."""
    rows = max(shape[1], layout.episode_limit + 1)
    e = torch.empty(shape[0], rows, *shape[2:], device=device).exponential_()
    return -e.log()[:, : shape[1]]


class OdisConfig(LearnerConfig):
    lr: Rate = 5e-4  # phase 1 (the reference's pre-optimiser)
    critic_lr: Rate = 5e-4  # phase 2
    emb: Width = 64
    heads: Width = 1
    depth: Width = 1
    attn_embed: Width = 8
    skill_dim: Width = 3
    pretrain_fraction: Probability = 0.3
    beta: NonNegative = 0.001
    coef_conservative: NonNegative = 5.0
    coef_dist: NonNegative = 5.0
    mixer: Literal["mt_qattn", "vdn"] = "mt_qattn"
    gamma: Discount = 0.99
    target_update_interval: Interval = 80  # task batches
    double_q: bool = True
    update_discipline: Literal["per_task", "per_round"] = "per_round"


class OdisPolicy(Policy):
    """skill = argmax Q(o, ·) each step, then the decoder's greedy action."""

    def __init__(self, agent: OdisAgent, layouts: dict[str, Layout], device: torch.device):
        self.agent, self.layouts, self.device = agent, layouts, device

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        h = self.agent.obs_encoder.initial_hist(batch_size * n, self.device)
        last = torch.full((batch_size, n), -1, dtype=torch.long, device=self.device)
        return h, h.clone(), last

    @torch.no_grad()
    def act(self, obs, avail, state, task):
        lay, a = self.layouts[task], self.agent
        h_enc, h_dec, last = state
        o = torch.as_tensor(obs, device=self.device)
        av = torch.as_tensor(avail, device=self.device)
        b, n = o.shape[:2]
        enc_out, h_enc = a.obs_encoder.step(
            a.obs_encoder.tokenizer(o, last, lay).reshape(b * n, -1, a.obs_encoder.emb), h_enc,
            keep=(1, 1))
        skill = F.one_hot(a.qnet(enc_out[:, 0]).argmax(-1), a.skills).float()
        dec_out, h_dec = a.decoder.body.step(
            a.decoder.body.tokenizer(o, last, lay).reshape(b * n, -1, a.obs_encoder.emb), h_dec,
            keep=(1 + lay.n_enemies, 1))
        q = a.decoder.head(dec_out, skill, lay).view(b, n, -1).masked_fill(av == 0, -1e10)
        actions = q.argmax(-1)
        return actions.cpu().numpy().astype(np.int64), (h_enc, h_dec, actions)


@register
class Odis(Learner):
    network_names = NETWORKS
    name = "odis"
    label = "ODIS"
    title = "ODIS (skill pre-training from the state, then a skill-level offline value policy)"
    Config = OdisConfig

    def __init__(self, layouts: dict[str, Layout], config: OdisConfig, device: torch.device):
        super().__init__(layouts, config, device)
        lays = list(layouts.values())
        c = config
        self.agent = OdisAgent(lays, c.emb, c.heads, c.depth, c.skill_dim, c.attn_embed).to(device)
        self.mixer = make_mixer(c.mixer, lays).to(device)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.pretrain_updates = 0
        self.batches = 0  # task batches seen (the reference's t_env, both phases)
        self.last_target_update = 0
        self._phase2 = False
        self.optimiser = self._optimiser(c.lr)

    def _optimiser(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam([*self.agent.parameters(), *self.mixer.parameters()], lr=lr)

    def set_budget(self, updates: int) -> None:
        self.pretrain_updates = round(self.config.pretrain_fraction * updates)

    @property
    def pretraining(self) -> bool:
        return self.batches < self.pretrain_updates

    # ---- phase 1 -------------------------------------------------------------------------
    def skill_logits(self, batch: Batch, layout: Layout, agent: OdisAgent | None = None):
        a = agent or self.agent
        return a.encoder(a.state_encoder(batch.state, batch.actions, layout))  # [B, T, n, K]

    def pretrain_loss(self, batch: Batch, task: str) -> torch.Tensor:
        c, lay = self.config, self.layouts[task]
        logits = self.skill_logits(batch, lay)[:, :-1]
        z = torch.softmax(logits + gumbel_noise(logits.shape, lay, logits.device), -1)  # τ 1
        valid = batch.rows[1:]  # [T-1]: rows of this batch (not a fused group's padding)
        b, t, n = logits.shape[:3]
        steps = batch.steps - 1
        kl = (((torch.special.xlogy(z, z) - z * math.log(1 / c.skill_dim)).sum((0, 2, 3))
               * valid).sum() / (b * steps * n * c.skill_dim))
        out = self.agent.decoder.body.unroll(batch.obs, batch.actions, lay,
                                             keep=(1 + lay.n_enemies, 1))[:, :-1]
        q = self.agent.decoder.head(out, z, lay)  # [B, T-1, n, A]
        a = q.shape[-1]
        ce = F.cross_entropy(q.reshape(-1, a), batch.actions[:, :-1].reshape(-1),
                             reduction="none").view(b, t, n).sum((0, 2))
        per_step = ce * valid / batch.mask[:, :-1].sum(0).clamp(min=1.0) / n
        dec = per_step.sum() / steps
        self._last = {"dec_loss": dec.detach(), "kl": kl.detach()}
        return dec + c.beta * kl

    # ---- phase 2 -------------------------------------------------------------------------
    def policy_loss(self, batch: Batch, task: str) -> torch.Tensor:
        c, lay = self.config, self.layouts[task]
        with torch.no_grad():
            skills = self.skill_logits(batch, lay).argmax(-1)  # [B, T, n] labels
        enc = self.agent.obs_encoder.unroll(batch.obs, batch.actions, lay, keep=(1, 1))[..., 0, :]
        qs = self.agent.qnet(enc)  # [B, T, n, K]
        logits = self.agent.encoder(enc)
        mask = batch.mask
        b, t, n = skills.shape
        dist = F.cross_entropy(logits.reshape(-1, c.skill_dim), skills.reshape(-1),
                               reduction="none").view(b, t, n)
        dist = (dist * batch.rows[:, None]).sum() / mask.sum() / n
        with torch.no_grad():
            t_enc = self.target_agent.obs_encoder.unroll(batch.obs, batch.actions, lay,
                                                         keep=(1, 1))
            target_qs = self.target_agent.qnet(t_enc[..., 0, :])
        chosen = qs.gather(-1, skills[..., None]).squeeze(-1)
        greedy = qs.detach().argmax(-1, keepdim=True)
        if c.double_q:
            target_max = target_qs.gather(-1, greedy).squeeze(-1)
        else:
            target_max = target_qs.max(-1).values
        q_tot = self.mixer(chosen, batch.state, lay)
        with torch.no_grad():
            target_tot = self.target_mixer(target_max, batch.state, lay)
        cons_tot = self.mixer(qs.gather(-1, greedy).squeeze(-1), batch.state, lay)
        y = batch.reward[:, :-1] + c.gamma * (1 - batch.terminated[:, :-1]) * target_tot[:, 1:]
        td_mask = mask[:, :-1] * batch.rows[1:]
        td = (((q_tot[:, :-1] - y) * td_mask) ** 2).sum() / td_mask.sum().clamp(min=1.0)
        cons = ((cons_tot - q_tot) * mask).sum() / mask.sum().clamp(min=1.0)
        self._last = {"td_loss": td.detach(), "cons_gap": cons.detach(),
                      "dist_loss": dist.detach()}
        return td + c.coef_conservative * cons + c.coef_dist * dist

    def update_round(self, batches: dict[str, Batch]) -> Metrics:
        phase = 1 if self.pretraining else 2
        if phase == 2 and not self._phase2:
            self._start_phase2()
        self.loss = self.pretrain_loss if phase == 1 else self.policy_loss
        metrics = super().update_round(batches)
        if phase == 2:  # hard copies every ``target_update_interval`` phase-2 batches (t_env)
            t_env = self.batches - self.pretrain_updates
            if t_env - self.last_target_update >= self.config.target_update_interval:
                copy_targets(self)
                self.last_target_update = t_env
        self.batches += len(batches)
        return {"phase": float(phase), **metrics}

    def _start_phase2(self) -> None:
        self._phase2 = True
        for module in (self.agent.encoder, self.agent.state_encoder, self.agent.decoder):
            module.requires_grad_(False)
        self.optimiser = self._optimiser(self.config.critic_lr)

    def state_dict(self) -> dict[str, Any]:
        return {**networks_state(self), "batches": self.batches,
                "pretrain_updates": self.pretrain_updates,
                "last_target_update": self.last_target_update}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # the optimiser last: entering phase 2 replaces it
        load_networks(self, {k: v for k, v in state.items() if k != "optimiser"})
        self.batches = state.get("batches", 0)
        self.pretrain_updates = state.get("pretrain_updates", self.pretrain_updates)
        self.last_target_update = state.get("last_target_update", 0)
        if not self.pretraining and not self._phase2:
            self._start_phase2()
        if "optimiser" in state:
            self.optimiser.load_state_dict(state["optimiser"])

    def policy(self) -> Policy:
        self.agent.eval()
        return OdisPolicy(self.agent, self.layouts, self.device)
