"""MAPPO: the online learner of the registry; trained in a batched environment it is the
behaviour policy of marlbench's collected datasets (and of the online track to come).

The ODIS protocol trains an online learner per task and rolls out its checkpoints. marlbench
uses MAPPO (shared-parameter feed-forward actor on the agent's observation and one-hot id,
centralised critic on the global state, GAE, clipped PPO), because its large on-policy batches
suit B episodes stepped together under one jitted call. Every iteration plays B episodes with
the stochastic policy; those episodes are the medium-replay log.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from torch import nn

from marlbench.data.format import EpisodeArrays
from marlbench.envs.maps import Layout
from marlbench.fields import Discount, NonNegative, Positive, Probability, Rate, Width
from marlbench.learners.base import register_online
from marlbench.rollout import RolloutResult, rollout


@dataclass(config=ConfigDict(extra="forbid", allow_inf_nan=False))
class MappoConfig:
    """Hyperparameters of the behaviour learner (stated in every manifest); validated on
    construction (a pydantic dataclass), so a suite's ``data.behaviour.params`` are checked."""

    hidden: Width = 128
    lr: Rate = 5e-4
    gamma: Discount = 0.99
    gae_lambda: Probability = 0.95
    clip: Positive = 0.2
    epochs: Width = 4
    minibatches: Width = 2
    entropy_coef: NonNegative = 0.03
    value_coef: NonNegative = 0.5
    grad_norm_clip: Positive = 10.0


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, out),
    )


class MappoNet(nn.Module):
    """Actor π(a | o_i, id_i) shared by all agents; critic V(s) on the global state."""

    def __init__(self, layout: Layout, hidden: int):
        super().__init__()
        self.n_agents = layout.n_agents
        self.actor = _mlp(layout.obs_dim + layout.n_agents, hidden, layout.n_actions)
        self.critic = _mlp(layout.state_dim, hidden, 1)

    def logits(self, obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """obs [..., n, obs_dim], avail [..., n, A] → masked logits [..., n, A]."""
        ids = torch.eye(self.n_agents, device=obs.device).expand(*obs.shape[:-1], self.n_agents)
        out = self.actor(torch.cat([obs, ids], -1))
        return out.masked_fill(avail <= 0, -1e10)

    def value(self, state: torch.Tensor) -> torch.Tensor:
        return self.critic(state).squeeze(-1)


class MappoActor:
    """A roll-out ActFn: samples from π (training) or takes its argmax (greedy)."""

    def __init__(self, net: MappoNet, greedy: bool, generator: torch.Generator | None = None):
        self.net, self.greedy, self.generator = net, greedy, generator

    @torch.no_grad()
    def __call__(self, res) -> np.ndarray:
        logits = self.net.logits(torch.from_numpy(res.obs), torch.from_numpy(res.avail_actions))
        if self.greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits, -1)
        flat = probs.reshape(-1, probs.shape[-1])
        drawn = torch.multinomial(flat, 1, generator=self.generator)
        return drawn.reshape(probs.shape[:-1]).numpy()


def _battle_over(r: RolloutResult, n_agents: int) -> np.ndarray:
    """Won, or every ally dead (grid navigation reports no deaths: over only on success)."""
    return r.won | (r.dead_allies >= n_agents)


@register_online
class Mappo:
    """One MAPPO learner for one task: ``play`` a batch of episodes, ``update`` on it."""

    name = "mappo"
    label = "MAPPO"
    title = "MAPPO (online; the behaviour policy of collected data)"
    Config = MappoConfig

    def __init__(self, layout: Layout, config: MappoConfig, seed: int):
        torch.manual_seed(seed)
        self.layout, self.config = layout, config
        self.net = MappoNet(layout, config.hidden)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, eps=1e-5)
        self.generator = torch.Generator().manual_seed(seed)

    def play(self, env, seed: int, greedy: bool) -> RolloutResult:
        return rollout(env, MappoActor(self.net, greedy, self.generator), seed, record=True)

    def update(self, r: RolloutResult) -> dict[str, float]:
        """PPO epochs over every (episode, step, alive agent) of one batch of episodes."""
        c, ep = self.config, r.episodes
        b, t1 = ep.filled.shape
        obs = torch.from_numpy(ep.obs)
        avail = torch.from_numpy(ep.avail_actions)
        actions = torch.from_numpy(ep.actions)
        reward = torch.from_numpy(ep.reward)
        filled = torch.from_numpy(ep.filled).float()
        lengths = torch.from_numpy(r.lengths)  # transitions per episode
        steps = torch.arange(t1)[None]
        valid = (steps < lengths[:, None]).float()  # transition rows
        # bootstrap only where the episode limit cut a battle short (data files store it as
        # terminal, as ODIS does; the learner need not)
        cut = torch.from_numpy(~_battle_over(r, self.layout.n_agents)
                               & (r.lengths >= self.layout.episode_limit))
        with torch.no_grad():
            values = self.net.value(torch.from_numpy(ep.state)) * filled
            old_logp = torch.log_softmax(self.net.logits(obs, avail), -1)
            old_logp = old_logp.gather(-1, actions[..., None]).squeeze(-1)
            nxt = torch.cat([values[:, 1:], torch.zeros(b, 1)], 1)
            last = steps == (lengths[:, None] - 1)
            keep_next = torch.where(last, cut[:, None].float(), 1.0) * valid
            delta = (reward + c.gamma * nxt * keep_next - values) * valid
            adv = torch.zeros_like(delta)
            running = torch.zeros(b)
            for t in range(t1 - 1, -1, -1):
                running = delta[:, t] + c.gamma * c.gae_lambda * keep_next[:, t] * running
                adv[:, t] = running
            returns = adv + values
        # agents with a choice (a dead SMAC agent may only no-op)
        alive = ((avail > 0).sum(-1) > 1).float() * valid[..., None]
        rows = valid.bool()
        o, av, a, lp0 = obs[rows], avail[rows], actions[rows], old_logp[rows]
        s, ret, alive_r = torch.from_numpy(ep.state)[rows], returns[rows], alive[rows]
        adv_r = adv[rows]
        adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
        n = o.shape[0]
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": []}
        for _ in range(c.epochs):
            perm = torch.randperm(n, generator=self.generator)
            for idx in perm.chunk(c.minibatches):
                logp_all = torch.log_softmax(self.net.logits(o[idx], av[idx]), -1)
                logp = logp_all.gather(-1, a[idx][..., None]).squeeze(-1)
                ratio = torch.exp(logp - lp0[idx])
                w = alive_r[idx]
                denom = w.sum().clamp(min=1.0)
                aa = adv_r[idx][:, None]
                surrogate = torch.min(ratio * aa, ratio.clamp(1 - c.clip, 1 + c.clip) * aa)
                policy_loss = -(surrogate * w).sum() / denom
                probs = logp_all.exp()
                entropy = -((probs * logp_all.clamp(min=-1e4)).sum(-1) * w).sum() / denom
                value_loss = (self.net.value(s[idx]) - ret[idx]).pow(2).mean()
                loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_norm_clip)
                self.opt.step()
                stats["policy_loss"].append(policy_loss.item())
                stats["value_loss"].append(value_loss.item())
                stats["entropy"].append(entropy.item())
        return {k: float(np.mean(v)) for k, v in stats.items()}

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "generator": self.generator.get_state(),
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.generator.set_state(state["generator"])


def episodes_of(r: RolloutResult, keep: int | None = None) -> EpisodeArrays:
    """The recorded episodes of a roll-out, optionally only the first ``keep``."""
    return r.episodes if keep is None else r.episodes.select(slice(0, keep))
