"""Batched greedy evaluation: many episodes of one task in parallel → one record's numbers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from marlbench.envs import make_env
from marlbench.learners.base import Policy
from marlbench.rollout import PolicyActor, rollout

MAX_PARALLEL = 256
_ENV_CACHE: dict[tuple[str, int, str | None], object] = {}


def cached_env(task: str, batch: int, backend: str | None):
    """Reuse a constructed (and compiled) environment within one worker process."""
    key = (task, batch, backend)
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = make_env(task, batch, backend)
    return _ENV_CACHE[key]


def evaluate(
    policy: Policy,
    task: str,
    episodes: int,
    seed: int,
    backend: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Win rate and return statistics of greedy ``policy`` over ``episodes`` episodes."""
    won, returns, lengths, dead_a, dead_e = [], [], [], [], []
    done = 0
    chunk = 0
    while done < episodes:
        b = min(MAX_PARALLEL, episodes - done)
        env = cached_env(task, b, backend)
        r = rollout(env, PolicyActor(policy, task, b), seed * 7919 + chunk)
        won.append(r.won)
        returns.append(r.returns)
        lengths.append(r.lengths)
        dead_a.append(r.dead_allies)
        dead_e.append(r.dead_enemies)
        done += b
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
    }
