"""Test doubles of ``smac.env.StarCraft2Env`` for the SC2 adapter's contract tests.

``RecordedSmac`` replays episodes recorded from real StarCraft II (the public ODIS 3m medium
file): observations, states, masks, rewards and termination exactly as SC2 produced them.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

from conftest import ODIS_3M

from marlbench.data.format import read_part


@lru_cache(maxsize=1)
def recorded():
    return read_part(ODIS_3M / "part_0.h5")


class RecordedSmac:
    def __init__(self, map_name: str, seed: int):
        assert map_name == "3m"
        self.seed = seed
        self.episode = seed % 2000
        self._episode_steps = 0

    def _row(self, key):
        return getattr(recorded(), key)[self.episode, self._episode_steps]

    def reset(self):
        self._episode_steps = 0

    def get_obs(self):
        return list(self._row("obs"))

    def get_state(self):
        return self._row("state")

    def get_avail_actions(self):
        return list(self._row("avail_actions"))

    def step(self, actions):
        eps = recorded()
        t = self._episode_steps
        reward = float(eps.reward[self.episode, t])
        terminated = bool(eps.terminated[self.episode, t])
        self._episode_steps += 1
        state = self.get_state()
        info = {"dead_allies": int((state[0:12:4] == 0).sum()),
                "dead_enemies": int((state[12:21:3] == 0).sum())}
        if terminated:
            info["battle_won"] = bool(eps.returns[self.episode] > 19.9)
        return reward, terminated, info

    def close(self):
        pass


class CrashingSmac(RecordedSmac):
    """Dies at step 3 of the first game it plays with seed 0 (as SC2 sometimes does)."""

    def step(self, actions):
        if self.seed == 0 and self._episode_steps == 3:
            os._exit(1)
        return super().step(actions)


class HangingSmac(RecordedSmac):
    """Stops answering at step 2 of the game with seed 1."""

    def step(self, actions):
        if self.seed == 1 and self._episode_steps == 2:
            time.sleep(3600)
        return super().step(actions)
