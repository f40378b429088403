"""Real StarCraft II backend: oxwhirl SMAC environments behind the vectorised interface.

Each parallel episode owns one StarCraft II process, driven by a worker process of its own
(``StarCraft2Env`` is not thread-safe and its game can crash or hang). A worker that dies,
raises or does not answer within ``step_timeout`` seconds is killed and started again; the
episode it was playing is reported as ``crashed`` and evaluation plays a replacement episode.

The environment is configured as the ODIS family's ``sc2_offline.yaml`` (protocol.md §5), so
observations, states, masks and rewards need no remapping: SMAC already speaks SMAC. The
SMACv2-style tasks use SMACv2's capability wrapper with options that keep SMAC's layout.
Maps outside stock SMAC (the unseen marine and stalker/zealot maps) are added to SMAC's map
registry from marlbench's; their ``.SC2Map`` files must be installed (the ODIS map patch), which
``marlbench doctor`` checks.

Install with ``pip install -e '.[starcraft]'`` and a StarCraft II binary under ``$SC2PATH``.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marlbench.envs.maps import MapSpec
from marlbench.envs.smax import StepResult

# sc2_offline.yaml of ODIS / HiSSD / STAIRS-Former
SMAC_KWARGS = {
    "step_mul": 8,
    "move_amount": 2,
    "difficulty": "7",
    "obs_all_health": True,
    "obs_own_health": True,
    "obs_last_action": False,
    "obs_pathing_grid": False,
    "obs_terrain_height": False,
    "obs_timestep_number": False,
    "state_last_action": True,
    "state_timestep_number": False,
    "continuing_episode": False,
    "reward_only_positive": True,
    "reward_scale": True,
    "reward_scale_rate": 20,
    "reward_win": 200,
    "reward_death_value": 10,
}
# SMAC's races (a_race, b_race: "P" sides carry shields) and map_type, by the side's first
# unit (oxwhirl/smac smac_maps.py: marines, stalkers_and_zealots, hydralisks, colossus, zealots)
_RACE = {"marine": "T", "marauder": "T", "stalker": "P", "zealot": "P", "colossus": "P",
         "zergling": "Z", "hydralisk": "Z"}
_MAP_TYPE = {"marine": "marines", "stalker": "stalkers_and_zealots", "hydralisk": "hydralisks",
             "colossus": "colossus", "zealot": "zealots"}


def sc2_path() -> Path:
    return Path(os.environ.get("SC2PATH", Path.home() / "StarCraftII"))


def smac_map_params(spec: MapSpec) -> dict:
    """SMAC registry entry of a marlbench map (the ODIS map patch's values; for stock SMAC
    maps, stock SMAC's)."""
    return {
        "n_agents": spec.n_agents,
        "n_enemies": spec.n_enemies,
        "limit": spec.episode_limit,
        "a_race": _RACE[spec.ally_units[0]],
        "b_race": _RACE[spec.enemy_units[0]],
        "unit_type_bits": spec.unit_type_bits,
        "map_type": _MAP_TYPE[spec.ally_units[0]],
    }


def make_smac_env(map_name: str, seed: int):
    """A ``smac.env.StarCraft2Env`` for ``map_name`` configured like the reference code."""
    from smac.env import StarCraft2Env
    from smac.env.starcraft2.maps import smac_maps

    from marlbench.envs.maps import get_map

    registry = smac_maps.get_smac_map_registry()
    if map_name not in registry:  # an ODIS-patch map: register it as the patch does
        registry[map_name] = smac_map_params(get_map(map_name))
        type(map_name, (smac_maps.SMACMap,), {"filename": map_name})
    return StarCraft2Env(map_name=map_name, seed=seed, **SMAC_KWARGS)


def smacv2_capability_config(spec: MapSpec) -> dict:
    """SMACv2 capability config of a marlbench SMACv2-style task: the race's first two unit
    types with equal weight (the third, which SMAX lacks, gets weight 0) and SMACv2's
    surround-or-reflect starts on its 32 × 32 map."""
    third = spec.type_order[2]
    return {
        "n_units": spec.n_agents,
        "n_enemies": spec.n_enemies,
        "team_gen": {
            "dist_type": "weighted_teams",
            "unit_types": list(spec.type_order),
            "weights": [0.5, 0.5, 0.0],
            "exception_unit_types": [third],
            "observe": True,
        },
        "start_positions": {
            "dist_type": "surrounded_and_reflect",
            "p": 0.5,
            "n_enemies": spec.n_enemies,
            "map_x": 32,
            "map_y": 32,
        },
    }


def make_smacv2_env(map_name: str, seed: int):
    """A SMACv2 ``StarCraftCapabilityEnvWrapper`` for a marlbench SMACv2-style task, with the
    observation options that give SMAC's layout (no own position, no conic field of view,
    SMAC's shooting range) so it matches the embedded backend's widths."""
    from smacv2.env.starcraft2.wrapper import StarCraftCapabilityEnvWrapper

    from marlbench.envs.maps import get_map

    spec = get_map(map_name)
    race = spec.name.split("_")[0]
    return StarCraftCapabilityEnvWrapper(
        capability_config=smacv2_capability_config(spec), map_name=f"10gen_{race}", seed=seed,
        conic_fov=False, obs_own_pos=False, use_unit_ranges=False, min_attack_range=2,
        **SMAC_KWARGS,
    )


def _resolve(factory: str):
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)


def _avail(env) -> np.ndarray:
    avail = env.get_avail_actions()
    if isinstance(avail, tuple):  # some SMACv2 versions also return the unmasked actions
        avail = avail[0]
    return np.asarray(avail, np.int32)


def _worker(conn, factory: str, map_name: str, seed: int) -> None:
    env = _resolve(factory)(map_name, seed)
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "reset":
                env.reset()
                conn.send((np.asarray(env.get_obs(), np.float32),
                           np.asarray(env.get_state(), np.float32),
                           _avail(env)))
            elif cmd == "step":
                reward, terminated, info = env.step(list(arg))
                conn.send((float(reward), bool(terminated), dict(info),
                           int(getattr(env, "_episode_steps", 0)),
                           np.asarray(env.get_obs(), np.float32),
                           np.asarray(env.get_state(), np.float32),
                           _avail(env)))
            elif cmd == "close":
                break
    finally:
        env.close()
        conn.close()


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: object
    seed: int


class Sc2Env:
    """B parallel StarCraft II episodes of one map (one SC2 process each)."""

    backend = "sc2"

    def __init__(self, spec: MapSpec, batch_size: int, factory: str | None = None,
                 step_timeout: float = 120.0):
        self.spec = spec
        self.layout = spec.layout
        self.batch_size = batch_size
        default = ("marlbench.envs.sc2:make_smacv2_env" if spec.sampled_from
                   else "marlbench.envs.sc2:make_smac_env")
        self.factory = factory or os.environ.get("MARLBENCH_SC2_FACTORY", default)
        self.step_timeout = step_timeout
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot | None] = [None] * batch_size
        self.restarts = 0

    # -- worker management ----------------------------------------------------------------
    def _start(self, i: int, seed: int) -> _Slot:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(child, self.factory, self.spec.name, seed),
                                 daemon=True)
        proc.start()
        child.close()
        self._slots[i] = _Slot(proc, parent, seed)
        return self._slots[i]

    def _kill(self, i: int) -> None:
        slot = self._slots[i]
        if slot is not None:
            slot.process.kill()
            slot.process.join(timeout=5)
            self._slots[i] = None

    def _call(self, i: int, cmd: str, arg=None):
        """Send a command to slot i and wait for its answer; None if the worker failed."""
        slot = self._slots[i]
        try:
            slot.conn.send((cmd, arg))
            if not slot.conn.poll(self.step_timeout):
                raise TimeoutError
            return slot.conn.recv()
        except (EOFError, OSError, TimeoutError, BrokenPipeError):
            self._kill(i)
            self.restarts += 1
            self._start(i, slot.seed + 1_000_003 * self.restarts)
            return None

    # -- API ------------------------------------------------------------------------------
    def reset(self, seed: int) -> StepResult:
        b, lay = self.batch_size, self.layout
        for i in range(b):
            if self._slots[i] is None:
                self._start(i, seed + i)
        self._done = np.zeros(b, dtype=bool)
        self._dead = np.zeros((2, b), dtype=np.int64)  # dead allies, dead enemies
        self._obs = np.zeros((b, lay.n_agents, lay.obs_dim), np.float32)
        self._state = np.zeros((b, lay.state_dim), np.float32)
        self._avail = np.zeros((b, lay.n_agents, lay.n_actions), np.int32)
        for i in range(b):
            out = self._call(i, "reset")
            if out is None:  # the restarted worker gets one more chance
                out = self._call(i, "reset")
            if out is None:
                raise RuntimeError(f"StarCraft II failed to start for {self.spec.name}")
            self._obs[i], self._state[i], self._avail[i] = out
        zeros = np.zeros(b, dtype=bool)
        return StepResult(self._obs.copy(), self._state.copy(), self._avail.copy(),
                          np.zeros(b, np.float32), zeros, zeros.copy(), zeros.copy(),
                          np.zeros(b, np.int64), np.zeros(b, np.int64), zeros.copy())

    def step(self, actions: np.ndarray) -> StepResult:
        b, spec = self.batch_size, self.spec
        reward = np.zeros(b, np.float32)
        terminated = np.zeros(b, bool)
        truncated = np.zeros(b, bool)
        won = np.zeros(b, bool)
        dead_a, dead_e = self._dead
        crashed = np.zeros(b, bool)
        for i in np.flatnonzero(~self._done):
            out = self._call(i, "step", np.asarray(actions[i]).tolist())
            if out is None:
                crashed[i] = True
                self._done[i] = True
                continue
            r, term, info, steps, obs, state, avail = out
            self._obs[i], self._state[i], self._avail[i] = obs, state, avail
            reward[i] = r
            won[i] = bool(info.get("battle_won", False))
            dead_a[i] = int(info.get("dead_allies", 0))
            dead_e[i] = int(info.get("dead_enemies", 0))
            battle_over = won[i] or dead_a[i] >= spec.n_agents or dead_e[i] >= spec.n_enemies
            if term:
                timed_out = steps >= spec.episode_limit and not battle_over
                truncated[i], terminated[i] = timed_out, not timed_out
                self._done[i] = True
        return StepResult(self._obs.copy(), self._state.copy(), self._avail.copy(), reward,
                          terminated, truncated, won, dead_a.copy(), dead_e.copy(), crashed)

    @property
    def all_done(self) -> bool:
        return bool(self._done.all())

    def close(self) -> None:
        for i, slot in enumerate(self._slots):
            if slot is not None:
                try:
                    slot.conn.send(("close", None))
                    slot.process.join(timeout=10)
                except (OSError, BrokenPipeError):
                    pass
                self._kill(i)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
