"""HiSSD (algorithms.md §2.5): hierarchical, separable skill discovery.

Every module is an entity transformer (64 / 1 / 1) with its own entity embeddings:
- **planner** (common skills): [own, enemies, allies, history]; per-type MLPs 64→128→64
  (LN, Tanh) turn its token outputs into skill tokens for the decoder ("action") and for the
  value net ("value");
- **forward predictor**: planner tokens plus a carried enemy memory → attention (softmax over
  queries) → decoders of the *next* state's ally rows (with the current and last compact
  actions) and enemy rows (with the "attacked" bit); MSE;
- **discriminator** (task-specific skill): [own, enemies, allies] → own output → ``ssl_proj``
  (64→128→64, InfoNCE logits through a bilinear W) and ``act_proj`` (64→128→64, LN, Tanh);
- **decoder** (low-level policy): [own, enemies, allies, planner skill tokens, history] → MLP
  128→128→6 on [own output, task skill] and MLP 128→128→1 on [enemy j output, task skill];
- **value net**: [own, enemies, allies, history] → ``reward_fc`` 64→128→1 per agent, mixed by
  ``mt_qattn``; its transformer also reads the planner's value tokens (target-value path).

Per task batch, three optimiser steps as the reference's ``train`` makes them (AdamW, wd 1e-4,
lr = ``critic_lr`` 1e-4 because ``pretrain`` is off): (1) decoder CE + β·InfoNCE (MoCo: anchor =
agent i at a random t, positive = another agent at the same t, negatives = the target
discriminator on the last batch of the last other task; labels all 0, as in the reference);
(2) expectile value loss with τ 0.9 whose weights are averaged before multiplying Σu² (quirk);
(3) forward-prediction MSE weighted by clamp(exp(10·mean TD), 100), *accumulated* and stepped
once after the round. The reference's zero_grad sequence is kept: a task's planner gradient is
still in ``.grad`` when the next task's step (1) runs, so it is applied there. Targets (all
modules and the mixer) are hard-copied every 80 task batches.

Execution: planner → action skill tokens; discriminator → task skill; decoder → greedy action.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, Interval, NonNegative, Positive, Probability, Rate, Width
from marlbench.learners.base import Learner, LearnerConfig, Metrics, Policy, register
from marlbench.learners.updet_m import NETWORKS, copy_targets, load_networks, networks_state
from marlbench.nets.entity import EntityTokenizer, entity_widths
from marlbench.nets.history import HistoryTransformer, last_actions
from marlbench.nets.mixers import (
    attend_over_queries,
    make_mixer,
    state_entities_with_actions,
    state_entity_widths,
)
from marlbench.nets.transformer import Transformer


def mlp(inp: int, out: int, hidden: int = 128, norm: bool = True) -> nn.Sequential:
    """Linear → ReLU → Linear, optionally followed by LayerNorm and Tanh (``MLPNet``)."""
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, out)]
    if norm:
        layers += [nn.LayerNorm(out), nn.Tanh()]
    return nn.Sequential(*layers)


class TokenHeads(nn.Module):
    """One MLP per token type (own / enemies / allies)."""

    def __init__(self, emb: int):
        super().__init__()
        self.own, self.enemy, self.ally = mlp(emb, emb), mlp(emb, emb), mlp(emb, emb)

    def forward(self, tokens: torch.Tensor, layout: Layout) -> torch.Tensor:
        m = layout.n_enemies
        return torch.cat([self.own(tokens[..., :1, :]), self.enemy(tokens[..., 1 : 1 + m, :]),
                          self.ally(tokens[..., 1 + m :, :])], -2)


class ForwardPredictor(nn.Module):
    """``MergeRec``: planner tokens of every agent + enemy memory → next state rows; MSE."""

    def __init__(self, layouts: list[Layout], emb: int, attn_embed: int):
        super().__init__()
        widths = {state_entity_widths(lay) for lay in layouts}
        if len(widths) != 1:
            raise ValueError(f"task layouts disagree on state entity widths: {sorted(widths)}")
        (wa, we), nb = widths.pop(), layouts[0].n_no_attack
        self.own_qk = nn.Linear(emb, 2 * attn_embed)
        self.enemy_qk = nn.Linear(emb, 2 * attn_embed)
        self.enemy_ref_qk = nn.Linear(emb, 2 * attn_embed)
        self.enemy_hidden = nn.Parameter(torch.zeros(1, 1, emb))
        self.ally_dec = mlp(emb, wa + 2 * (nb + 1))
        self.enemy_dec = mlp(emb, we + 1)

    def unroll(self, tokens: torch.Tensor, state: torch.Tensor, actions: torch.Tensor,
               layout: Layout) -> torch.Tensor:
        """tokens [B, T, n, E, emb] (planner outputs), next states [B, T, S], actions [B, T, n]
        → per-step loss [T]."""
        b, t, n = tokens.shape[:3]
        m = layout.n_enemies
        allies_next, enemies_next = state_entities_with_actions(state, actions, layout)
        own = tokens[..., 0, :]  # [B, T, n, e]
        # each enemy as seen by every agent: [B, T, m, n, e]
        enemy = tokens[..., 1 : 1 + m, :].transpose(2, 3)
        memory = self.enemy_hidden.expand(b, m, -1)
        losses = []
        # one unbind each (not T selects): the backward pass then does not zero-fill T copies
        for k, (own_k, enemy_k) in enumerate(zip(own.unbind(1), enemy.unbind(1), strict=True)):
            seen = torch.cat([memory.unsqueeze(-2), enemy_k], -2)  # [B, m, n+1, e]
            q, key = self.enemy_qk(seen).chunk(2, -1)
            ref = attend_over_queries(seen, q, key)[..., 0, :]  # [B, m, e]
            oq, ok = self.own_qk(own_k).chunk(2, -1)
            rq, rk = self.enemy_ref_qk(ref).chunk(2, -1)
            out = attend_over_queries(torch.cat([own_k, ref], -2), torch.cat([oq, rq], -2),
                                      torch.cat([ok, rk], -2))
            memory = out[:, n:]
            losses.append(F.mse_loss(self.ally_dec(out[:, :n]), allies_next[:, k])
                          + F.mse_loss(self.enemy_dec(memory), enemies_next[:, k]))
        return torch.stack(losses)


class Discriminator(nn.Module):
    """[own, enemies, allies] (no history) → (InfoNCE feature, task-specific skill)."""

    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int):
        super().__init__()
        self.tokenizer = EntityTokenizer(layouts, emb)
        self.transformer = Transformer(emb, heads, depth, emb)
        self.W = nn.Parameter(torch.rand(emb, emb))
        self.ssl_proj = mlp(emb, emb, norm=False)
        self.act_proj = mlp(emb, emb)

    def forward(self, obs: torch.Tensor, last: torch.Tensor, layout: Layout):
        tokens = self.tokenizer(obs, last, layout)
        lead = tokens.shape[:-2]
        own = self.transformer(tokens.reshape(-1, *tokens.shape[-2:]), keep=(1, 0))[:, 0]
        own = own.view(*lead, -1)
        return self.ssl_proj(own), self.act_proj(own)

    def logits(self, z: torch.Tensor, z_pos: torch.Tensor) -> torch.Tensor:
        logits = z @ (self.W @ z_pos.T)
        return logits - logits.max(1, keepdim=True).values


class HissdAgent(nn.Module):
    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int,
                 attn_embed: int):
        super().__init__()
        self.planner = HistoryTransformer(layouts, emb, heads, depth)
        self.act_heads, self.value_heads = TokenHeads(emb), TokenHeads(emb)
        self.predictor = ForwardPredictor(layouts, emb, attn_embed)
        self.discr = Discriminator(layouts, emb, heads, depth)
        self.decoder = HistoryTransformer(layouts, emb, heads, depth)
        self.base_q = mlp(2 * emb, entity_widths(layouts)[-1], norm=False)
        self.attack_q = mlp(2 * emb, 1, norm=False)
        self.value = HistoryTransformer(layouts, emb, heads, depth)
        self.reward_fc = mlp(emb, 1, norm=False)

    def action_values(self, dec_out: torch.Tensor, skill: torch.Tensor,
                      layout: Layout) -> torch.Tensor:
        """Decoder outputs [..., tokens, emb] and task skill [..., emb] → values [..., A]."""
        basic = self.base_q(torch.cat([dec_out[..., 0, :], skill], -1))
        m = layout.n_enemies
        enemies = dec_out[..., 1 : 1 + m, :]
        s = skill.unsqueeze(-2).expand(*enemies.shape[:-1], skill.shape[-1])
        attack = self.attack_q(torch.cat([enemies, s], -1)).squeeze(-1)
        return torch.cat([basic, attack], -1)

    def values(self, batch: Batch, layout: Layout) -> torch.Tensor:
        out = self.value.unroll(batch.obs, batch.actions, layout, keep=(1, 1))
        return self.reward_fc(out[..., 0, :]).squeeze(-1)  # [B, T, n]

    def values_from_skills(self, tokens: torch.Tensor) -> torch.Tensor:
        """The value transformer over planner value tokens [B, T, n, E, emb] (its own history
        carried in time) → [B, T, n]."""
        b, t, n = tokens.shape[:3]
        steps = tokens.transpose(0, 1).reshape(t, b * n, *tokens.shape[-2:]).unbind(0)
        hist = self.value.initial_hist(b * n, tokens.device)
        outs = []
        for x in steps:
            out = self.value.transformer(torch.cat([x, hist], 1), keep=(1, 1))
            hist = out[:, -1:]
            outs.append(self.reward_fc(out[:, 0]))
        return torch.stack(outs, 0).view(t, b, n).transpose(0, 1)


class HissdConfig(LearnerConfig):
    lr: Rate = 1e-4  # the reference's critic_lr, which every step uses with pretrain off
    weight_decay: NonNegative = 1e-4
    emb: Width = 64
    heads: Width = 1
    depth: Width = 1
    attn_embed: Width = 8
    beta: NonNegative = 0.05  # InfoNCE weight
    expectile: Probability = 0.9  # ``epsilon``
    td_weight: NonNegative = 10.0
    max_weight: Positive = 100.0
    mixer: Literal["mt_qattn", "vdn"] = "mt_qattn"
    gamma: Discount = 0.99
    target_update_interval: Interval = 80  # task batches
    update_discipline: Literal["per_task", "per_round"] = "per_round"
    # The reference trains its value network on the first task batch only: ``train_value``'s
    # forward runs while ``agent.value`` is still frozen by the previous ``train_planner``
    # (``requires_grad_(True)`` comes after the forward; hissd_learner.py ~424, ~526), so from
    # then on only the mixer learns V(s). True reproduces that; False trains it every batch.
    reference_quirks: bool = False


class HissdPolicy(Policy):
    def __init__(self, agent: HissdAgent, layouts: dict[str, Layout], device: torch.device):
        self.agent, self.layouts, self.device = agent, layouts, device

    def initial_state(self, batch_size: int, task: str) -> Any:
        n = self.layouts[task].n_agents
        h = self.agent.planner.initial_hist(batch_size * n, self.device)
        last = torch.full((batch_size, n), -1, dtype=torch.long, device=self.device)
        return h, h.clone(), last

    @torch.no_grad()
    def act(self, obs, avail, state, task):
        lay, a = self.layouts[task], self.agent
        h_plan, h_dec, last = state
        o = torch.as_tensor(obs, device=self.device)
        av = torch.as_tensor(avail, device=self.device)
        b, n = o.shape[:2]
        emb = a.planner.emb
        p_out, h_plan = a.planner.step(
            a.planner.tokenizer(o, last, lay).reshape(b * n, -1, emb), h_plan)
        skills = a.act_heads(p_out[:, :-1], lay)  # entity tokens, not the history
        _, task_skill = a.discr(o, last, lay)
        d_out, h_dec = a.decoder.step(
            a.decoder.tokenizer(o, last, lay).reshape(b * n, -1, emb), h_dec, skills,
            keep=(1 + lay.n_enemies, 1))
        q = a.action_values(d_out, task_skill.reshape(b * n, -1), lay)
        actions = q.view(b, n, -1).masked_fill(av == 0, -1e10).argmax(-1)
        return actions.cpu().numpy().astype(np.int64), (h_plan, h_dec, actions)


@register
class Hissd(Learner):
    network_names = NETWORKS
    name = "hissd"
    label = "HiSSD"
    title = "HiSSD (common planner skills + contrastive task skills, expectile value, decoder)"
    Config = HissdConfig
    quirks = ("the reference's value network trained on the first task batch only (its "
              "requires_grad is re-enabled after the forward pass); default: trained every "
              "batch")

    def __init__(self, layouts: dict[str, Layout], config: HissdConfig, device: torch.device):
        super().__init__(layouts, config, device)
        lays = list(layouts.values())
        c = config
        self.agent = HissdAgent(lays, c.emb, c.heads, c.depth, c.attn_embed).to(device)
        self.mixer = make_mixer(c.mixer, lays).to(device)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.params = [*self.agent.parameters(), *self.mixer.parameters()]
        self.optimiser = torch.optim.AdamW(self.params, lr=c.lr, weight_decay=c.weight_decay)
        self.generator = torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, (1,)).item()))
        self.last_batch: dict[str, Batch] = {}
        self.batches = 0
        self.last_target_update = 0

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=self.generator).item())

    # ---- (1) decoder + InfoNCE -------------------------------------------------------------
    def decoder_loss(self, batch: Batch, negatives: Batch | None = None, *, task: str,
                     neg_task: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(1)'s two terms; ``negatives``: the last batch of ``neg_task`` (the InfoNCE
        negatives), None when there is none yet."""
        lay, a = self.layouts[task], self.agent
        t = batch.obs.shape[1] - 1
        valid = batch.rows[1:]  # [T-1]: this batch's rows, not a fused group's padding
        plan = a.planner.unroll(batch.obs, batch.actions, lay)[:, :-1, :, :-1]  # no history
        skills = a.act_heads(plan, lay)
        last = last_actions(batch.actions)[:, :-1]
        z, task_skill = a.discr(batch.obs[:, :-1], last, lay)
        dec = a.decoder.unroll(batch.obs[:, :-1], batch.actions[:, :-1], lay, extra=skills,
                               keep=(1 + lay.n_enemies, 1))
        q = a.action_values(dec, task_skill, lay)  # [B, T-1, n, A]
        b, _, n, na = q.shape
        ce = F.cross_entropy(q.reshape(-1, na), batch.actions[:, :-1].reshape(-1),
                             reduction="none").view(b, t, n).sum((0, 2))
        dec_loss = (ce * valid / batch.mask[:, :-1].sum(0).clamp(min=1.0) / n).sum()
        dec_loss = dec_loss / (batch.steps - 1)
        if negatives is None or neg_task is None:
            return dec_loss, z.new_zeros(())
        return dec_loss, self.infonce(z, batch, negatives, neg_task)

    def infonce(self, z: torch.Tensor, batch: Batch, nb: Batch, neg_task: str) -> torch.Tensor:
        """MoCo-style InfoNCE on the discriminator features z [B, T-1, n, e] (n ≥ 2); the
        negatives: the target discriminator on ``nb``, the last batch of the last other task
        (the reference keeps only that task's)."""
        n = z.shape[2]
        cur = self._randint(n)
        pos = self._randint(n - 1)
        pos += pos >= cur
        # a step uniform over this batch's own T − 1 (drawn the same way whatever its length)
        u = torch.rand((), generator=self.generator)
        k = (u * (batch.steps - 1)).long().clamp(max=z.shape[1] - 1).to(z.device).view(1)
        at_k = z.index_select(1, k).squeeze(1)  # [B, n, e]
        anchor, positive = at_k[:, cur], at_k[:, pos]
        lay = self.layouts[neg_task]
        with torch.no_grad():
            neg, _ = self.target_agent.discr(nb.obs[:, :-1], last_actions(nb.actions)[:, :-1],
                                             lay)
            neg = neg[:, :, self._randint(lay.n_agents)]  # [B', T'-1, e]
            neg_valid = nb.rows[1:].expand(neg.shape[:2]).reshape(-1)
            neg = neg.reshape(-1, neg.shape[-1])
        logits = self.agent.discr.logits(torch.cat([anchor, neg]),
                                         torch.cat([positive, neg]).detach())
        valid = torch.cat([neg_valid.new_ones(anchor.shape[0]), neg_valid])
        logits = logits.masked_fill(valid[None, :] == 0, -1e9)  # a fused group's padding
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        ce = F.cross_entropy(logits, labels, reduction="none")
        return (ce * valid).sum() / valid.sum()

    # ---- (2) expectile value --------------------------------------------------------------
    def value_loss(self, batch: Batch, task: str) -> torch.Tensor:
        c, lay = self.config, self.layouts[task]
        values = self.agent.values(batch, lay)
        if c.reference_quirks and self.batches > 0:
            values = values.detach()  # the value network frozen after the first task batch
        mixed = self.mixer(values, batch.state, lay)
        with torch.no_grad():
            target = self.target_mixer(self.target_agent.values(batch, lay), batch.state, lay)
        valid = batch.rows[1:]
        mask = batch.mask[:, :-1] * valid
        u = (mixed[:, :-1] - batch.reward[:, :-1]
             - c.gamma * (1 - batch.terminated[:, :-1]) * target[:, 1:]) * mask
        # averaged first (quirk), over every row of the batch (padded episodes' too)
        weight = ((c.expectile - (u < 0).float()).abs() * valid).sum()
        weight = weight / (u.shape[0] * (batch.steps - 1))
        return weight * (u**2).sum() / mask.sum().clamp(min=1.0)

    # ---- (3) planner forward prediction, TD-weighted ----------------------------------------
    def planner_loss(self, batch: Batch, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        c, lay, a = self.config, self.layouts[task], self.agent
        plan = a.planner.unroll(batch.obs, batch.actions, lay)[..., :-1, :]  # no history
        pred = a.predictor.unroll(plan[:, :-1], batch.state[:, 1:], batch.actions[:, :-1], lay)
        pred_loss = (pred * batch.rows[1:]).sum() / batch.obs.shape[0]
        with torch.no_grad():
            mixed = self.mixer(a.values(batch, lay), batch.state, lay)
            value_tokens = a.value_heads(plan, lay)
            target = self.target_mixer(self.target_agent.values_from_skills(value_tokens),
                                       batch.state, lay)
            mask = batch.mask[:, :-1] * batch.rows[1:]
            td = c.gamma * target[:, 1:] + batch.reward[:, :-1] - mixed[:, :-1]
            td = (td * mask).sum() / mask.sum().clamp(min=1.0)
            weight = torch.exp(td * c.td_weight).clamp(max=c.max_weight)
        return weight * pred_loss, weight

    def _step(self) -> torch.Tensor:
        norm = self.clip_gradients(self.params)
        self.optimiser.step()
        self.optimiser.zero_grad()
        return norm.detach()

    def update_round(self, batches: dict[str, Batch]) -> Metrics:
        self.agent.train()
        sums = {k: torch.zeros((), device=self.device)
                for k in ("dec_loss", "ssl_loss", "value_loss", "plan_loss", "td_weight")}
        for task, batch in batches.items():
            batch = batch.to(self.device)
            others = [k for k in self.last_batch if k != task]
            neg_task = others[-1] if others and self.layouts[task].n_agents >= 2 else None
            negatives = () if neg_task is None else (self.last_batch[neg_task],)
            dec, ssl = self.compute(self.decoder_loss, batch, *negatives, task=task,
                                    neg_task=neg_task)
            (dec + self.config.beta * ssl).sum().backward()
            self._step()
            self.last_batch[task] = batch
            value = self.compute(self.value_loss, batch, task=task)
            value.sum().backward()
            self._step()
            plan, weight = self.compute(self.planner_loss, batch, task=task)
            plan.sum().backward()  # accumulated; stepped after the round
            if self.batches - self.last_target_update >= self.config.target_update_interval:
                copy_targets(self)
                self.last_target_update = self.batches
            self.batches += 1
            for k, v in zip(sums, (dec, ssl, value, plan, weight), strict=True):
                sums[k] = sums[k] + v.detach()
        grad_norm = self._step()
        metrics = {k: v / len(batches) for k, v in sums.items()}
        return {"loss": metrics["dec_loss"] + metrics["value_loss"] + metrics["plan_loss"],
                "grad_norm": grad_norm, **metrics}

    def state_dict(self) -> dict[str, Any]:
        return {**networks_state(self), "batches": self.batches,
                "last_target_update": self.last_target_update,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_networks(self, state)
        self.batches = state.get("batches", 0)
        self.last_target_update = state.get("last_target_update", 0)
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def policy(self) -> Policy:
        self.agent.eval()
        return HissdPolicy(self.agent, self.layouts, self.device)
