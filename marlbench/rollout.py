"""Batched episode roll-outs shared by evaluation and dataset collection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from marlbench.data.format import EpisodeArrays
from marlbench.envs.smax import StepResult

ActFn = Callable[[StepResult], np.ndarray]


class PolicyActor:
    """Adapts a recurrent greedy policy (``initial_state`` / ``act``) to a roll-out's ActFn."""

    def __init__(self, policy, task: str, batch_size: int):
        self.policy, self.task = policy, task
        self.state = policy.initial_state(batch_size, task)

    def __call__(self, res: StepResult) -> np.ndarray:
        extra = {}
        if getattr(self.policy, "uses_reward", False):  # return-conditioned policies
            extra["reward"] = res.reward
        if getattr(self.policy, "uses_state", False):  # policies reading the global state
            extra["global_state"] = res.state
        actions, self.state = self.policy.act(res.obs, res.avail_actions, self.state,
                                              self.task, **extra)
        return actions


@dataclass
class RolloutResult:
    """Per-episode outcomes of one batch of B episodes (and their transitions if recorded)."""

    won: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray  # transitions per episode
    dead_allies: np.ndarray
    dead_enemies: np.ndarray
    episodes: EpisodeArrays | None = None
    crashed: np.ndarray | None = None  # episodes lost to a simulator failure (real SC2 only)


def rollout(env, act: ActFn, seed: int, record: bool = False) -> RolloutResult:
    """Play B episodes to the end with ``act``; optionally keep them in the ODIS layout."""
    lay = env.layout
    b, n, limit = env.batch_size, lay.n_agents, lay.episode_limit
    res = env.reset(seed)
    if record:
        t1 = limit + 1
        buf = EpisodeArrays(
            obs=np.zeros((b, t1, n, lay.obs_dim), np.float32),
            state=np.zeros((b, t1, lay.state_dim), np.float32),
            actions=np.zeros((b, t1, n), np.int64),
            avail_actions=np.zeros((b, t1, n, lay.n_actions), np.int32),
            reward=np.zeros((b, t1), np.float32),
            terminated=np.zeros((b, t1), np.uint8),
            filled=np.zeros((b, t1), np.int64),
        )
    running = np.ones(b, dtype=bool)
    returns = np.zeros(b, np.float32)
    lengths = np.zeros(b, np.int64)
    won = np.zeros(b, bool)
    crashed = np.zeros(b, bool)
    for t in range(limit):
        actions = act(res)
        if record:
            idx = np.flatnonzero(running)
            buf.obs[idx, t] = res.obs[idx]
            buf.state[idx, t] = res.state[idx]
            buf.avail_actions[idx, t] = res.avail_actions[idx]
            buf.actions[idx, t] = actions[idx]
            buf.filled[idx, t] = 1
        res = env.step(actions)
        returns += res.reward * running
        lengths += running
        won |= res.won
        if res.crashed is not None:
            crashed |= res.crashed
        if record:
            buf.reward[idx, t] = res.reward[idx]
            ended = idx[res.done[idx]]
            # time-outs are stored as terminal, as in the public ODIS data
            buf.terminated[ended, t] = 1
            buf.obs[ended, t + 1] = res.obs[ended]
            buf.state[ended, t + 1] = res.state[ended]
            buf.avail_actions[ended, t + 1] = res.avail_actions[ended]
            buf.filled[ended, t + 1] = 1
        running &= ~res.done
        if not running.any():
            break
    return RolloutResult(
        won=won,
        returns=returns,
        lengths=lengths,
        dead_allies=res.dead_allies,
        dead_enemies=res.dead_enemies,
        episodes=buf if record else None,
        crashed=crashed,
    )
