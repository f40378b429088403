"""Batched greedy evaluation: many episodes of one task in parallel → one record's numbers."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from marlbench.envs import make_env
from marlbench.learners.base import Policy
from marlbench.rollout import PolicyActor, rollout

MAX_PARALLEL = 256
MAX_LOST_EPISODES = 32


def max_parallel(backend: str | None) -> int:
    """Episodes played at once: many on the embedded simulators, a few StarCraft II games."""
    if backend == "sc2":
        return int(os.environ.get("MARLBENCH_SC2_PARALLEL", "4"))
    return MAX_PARALLEL
_ENV_CACHE: dict[tuple[str, int, str | None, str | None, str | None], object] = {}


def cached_env(task: str, batch: int, backend: str | None, units: str | None = None,
               reward: str | None = None):
    """Reuse a constructed (and compiled) environment within one worker process."""
    key = (task, batch, backend, units, reward)
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = make_env(task, batch, backend, units, reward)
    return _ENV_CACHE[key]


class StandardisedPolicy(Policy):
    """A policy trained on standardised observations, fed the environment's raw ones."""

    def __init__(self, policy: Policy, standardiser):
        self.policy, self.standardiser = policy, standardiser
        self.uses_reward = getattr(policy, "uses_reward", False)
        self.uses_state = getattr(policy, "uses_state", False)

    def initial_state(self, batch_size: int, task: str):
        return self.policy.initial_state(batch_size, task)

    def act(self, obs, avail, state, task, **kwargs):
        if "global_state" in kwargs:
            kwargs["global_state"] = self.standardiser.state(kwargs["global_state"])
        return self.policy.act(self.standardiser.obs(obs), avail, state, task, **kwargs)


def evaluate(
    policy: Policy,
    task: str,
    episodes: int,
    seed: int,
    backend: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    units: str | None = None,
    reward: str | None = None,
) -> dict:
    """Win rate and return statistics of ``policy`` over ``episodes`` episodes."""
    won, returns, lengths, dead_a, dead_e = [], [], [], [], []
    done = 0
    chunk = 0
    lost = 0
    parallel = max_parallel(backend)
    while done < episodes:
        b = min(parallel, episodes - done)
        env = cached_env(task, b, backend, units, reward)
        r = rollout(env, PolicyActor(policy, task, b), seed * 7919 + chunk)
        keep = ~r.crashed  # an episode lost to a simulator crash is played again
        lost += int(r.crashed.sum())
        if lost > MAX_LOST_EPISODES:
            raise RuntimeError(f"{task}: {lost} episodes lost to simulator crashes; giving up")
        won.append(r.won[keep])
        returns.append(r.returns[keep])
        lengths.append(r.lengths[keep])
        dead_a.append(r.dead_allies[keep])
        dead_e.append(r.dead_enemies[keep])
        done += int(keep.sum())
        chunk += 1
        if progress:
            progress(done, episodes, f"eval {task}")
    won_a = np.concatenate(won)
    ret = np.concatenate(returns)
    return {
        "win_rate": float(won_a.mean()),
        "mean_return": float(ret.mean()),
        "return_std": float(ret.std()),
        "mean_length": float(np.concatenate(lengths).mean()),
        "dead_allies": float(np.concatenate(dead_a).mean()),
        "dead_enemies": float(np.concatenate(dead_e).mean()),
        "episodes": int(won_a.size),
        "crashed_episodes": lost,
    }
