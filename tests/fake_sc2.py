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


# oxwhirl/smac smac/env/starcraft2/maps/smac_maps.py map_param_registry, as shipped
SMAC_REGISTRY = {
    "6h_vs_8z": {"n_agents": 6, "n_enemies": 8, "limit": 150, "a_race": "Z", "b_race": "P",
                 "unit_type_bits": 0, "map_type": "hydralisks"},
    "2c_vs_64zg": {"n_agents": 2, "n_enemies": 64, "limit": 400, "a_race": "P", "b_race": "Z",
                   "unit_type_bits": 0, "map_type": "colossus"},
    "corridor": {"n_agents": 6, "n_enemies": 24, "limit": 400, "a_race": "P", "b_race": "Z",
                 "unit_type_bits": 0, "map_type": "zealots"},
}


def smac_sizes(params: dict) -> dict[str, int]:
    """StarCraft2Env's size helpers (oxwhirl/smac starcraft2.py get_obs_*_feats_size,
    get_obs_size, get_state_size) under the ODIS sc2_offline flags: obs_all_health,
    obs_own_health and state_last_action on; obs_last_action, obs_pathing_grid,
    obs_terrain_height, obs_timestep_number, state_timestep_number off."""
    n, m, bits = params["n_agents"], params["n_enemies"], params["unit_type_bits"]
    sa = 1 if params["a_race"] == "P" else 0  # shield_bits_ally
    se = 1 if params["b_race"] == "P" else 0  # shield_bits_enemy
    n_actions = 6 + m  # n_actions_no_attack 6 + n_enemies
    move = 4  # n_actions_move; + n_obs_pathing 8 / n_obs_height 9 only when those flags are on
    nf_en = 4 + bits + (1 + se)  # obs_all_health: health + shield
    nf_al = 4 + bits + (1 + sa)  # (+ n_actions with obs_last_action, off)
    own = bits + (1 + sa)  # obs_own_health
    state = n * (4 + sa + bits) + m * (3 + se + bits) + n * n_actions  # + last actions
    return {"move": move, "nf_en": nf_en, "nf_al": nf_al, "own": own, "n_actions": n_actions,
            "obs": move + m * nf_en + (n - 1) * nf_al + own, "state": state,
            "shield_ally": sa, "shield_enemy": se}


ALLY_SHIELD, ENEMY_SHIELD = 0.25, 0.75  # marker values the fake puts in the shield features


class SizedSmac:
    """A StarCraft2Env of a stock SMAC map from the registry above: observations and states of
    SMAC's sizes with its feature order (every unit alive and in sight, full health, shields
    at the marker values), won after three steps."""

    def __init__(self, map_name: str, seed: int):
        self.params = SMAC_REGISTRY[map_name]
        self.sizes = smac_sizes(self.params)
        self._episode_steps = 0

    def reset(self):
        self._episode_steps = 0

    def get_obs(self):
        p, z = self.params, self.sizes
        enemy = [1.0, 0.5, 0.25, 0.25, 1.0] + [ENEMY_SHIELD] * z["shield_enemy"]
        ally = [1.0, 0.3, 0.1, 0.1, 1.0] + [ALLY_SHIELD] * z["shield_ally"]
        own = [1.0] + [ALLY_SHIELD] * z["shield_ally"]
        obs = [1.0] * z["move"] + enemy * p["n_enemies"] + ally * (p["n_agents"] - 1) + own
        assert len(obs) == z["obs"]
        return [list(obs) for _ in range(p["n_agents"])]

    def get_state(self):
        p, z = self.params, self.sizes
        ally = [1.0, 0.0, -0.2, 0.0] + [ALLY_SHIELD] * z["shield_ally"]
        enemy = [1.0, 0.2, 0.0] + [ENEMY_SHIELD] * z["shield_enemy"]
        last = [0.0] * (p["n_agents"] * z["n_actions"])
        state = ally * p["n_agents"] + enemy * p["n_enemies"] + last
        assert len(state) == z["state"]
        return state

    def get_avail_actions(self):
        p = self.params
        return [[0, 1, 1, 1, 1, 1] + [1] * p["n_enemies"] for _ in range(p["n_agents"])]

    def step(self, actions):
        assert len(actions) == self.params["n_agents"]
        self._episode_steps += 1
        won = self._episode_steps >= 3
        info = {"dead_allies": 0, "dead_enemies": self.params["n_enemies"] if won else 0}
        if won:
            info["battle_won"] = True
        return (20.0 if won else 0.0), won, info

    def close(self):
        pass
