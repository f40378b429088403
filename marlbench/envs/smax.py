"""Embedded StarCraft backend: JaxMARL SMAX, batched and jitted, speaking SMAC's conventions.

SMAX simulates the units; this module rebuilds what SMAC would show an agent from SMAX's raw
unit state (positions, health, cooldowns, alive flags): SMAC's observation blocks and feature
order, SMAC's global state, SMAC's action indices and masks, SMAC's shaped reward scaled so a
won episode returns about 20, and ``battle_won``. B episodes advance together under one jitted
call; an episode that has ended is frozen until the next reset.

Two unit profiles (``units``, :mod:`marlbench.envs.units`): ``smax`` runs SMAX as JaxMARL ships
it (its own unit table, 0.5 s per step, its heuristic enemy: attack the closest unit in range,
otherwise advance); ``sc2`` runs StarCraft II's unit data and combat rules as SMAC meets them
(:mod:`marlbench.envs.sc2_rules`: 8 game loops per step, edge-to-edge ranges, armour, SMAC's
shoot range 6 and cooldown scale, the recorded 3m start, an attack-move enemy). Neither
regenerates shields.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marlbench.envs.maps import N_NO_ATTACK, Layout, MapSpec
from marlbench.envs.units import (
    DEFAULT_UNITS,
    SMAC_MAX_COOLDOWN_LOOPS,
    SMAC_MOVE_AMOUNT,
    SMAC_SHOOT_RANGE,
    SMAC_SIGHT_RANGE,
    SMAX_UNIT_TYPES,
    UnitProfile,
    arena_bounds,
    get_profile,
    rally_point,
    start_positions,
)

REWARD_DEATH_VALUE = 10.0
REWARD_WIN = 200.0
REWARD_SCALE_RATE = 20.0
MAP_SIZE = 32.0

# SMAC action → SMAX discrete action. SMAX: 0 N(+y), 1 E(+x), 2 S, 3 W, 4 stop, 5 + j attack j.
# SMAC: 0 no-op (dead only), 1 stop, 2 N, 3 S, 4 E, 5 W, 6 + j attack j.
_SMAC_TO_SMAX_MOVE = np.array([4, 4, 0, 2, 1, 3], dtype=np.int32)
# Unit direction of SMAC moves N, S, E, W.
_MOVE_DIRS = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)


def _configure_jax() -> None:
    """Persist compiled programs so a second process does not pay compilation again."""
    import jax

    cache = os.environ.get(
        "MARLBENCH_JAX_CACHE", str(Path.home() / ".cache" / "marlbench" / "jax")
    )
    jax.config.update("jax_platforms", os.environ.get("JAX_PLATFORMS", "cpu") or "cpu")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence jaxmarl's import banners: a module it imports rebinds ``sys.stdout`` to the
    process's file descriptor 1, so both the descriptor and the Python streams are restored."""
    streams = sys.stdout, sys.stderr
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout, sys.stderr = streams


def _import_smax():
    _configure_jax()
    with _quiet_stdout():
        from jaxmarl.environments.smax.heuristic_enemy_smax_env import HeuristicEnemySMAX
        from jaxmarl.environments.smax.smax_env import Scenario
    return HeuristicEnemySMAX, Scenario


@dataclass
class StepResult:
    """What one batched step (or a reset) returns, as numpy arrays with batch first."""

    obs: np.ndarray  # [B, n, obs_dim] float32
    state: np.ndarray  # [B, state_dim] float32
    avail_actions: np.ndarray  # [B, n, n_actions] int32
    reward: np.ndarray  # [B] float32 (SMAC-scaled team reward)
    terminated: np.ndarray  # [B] bool (battle over: a side is dead)
    truncated: np.ndarray  # [B] bool (episode limit reached, battle not over)
    won: np.ndarray  # [B] bool
    dead_allies: np.ndarray  # [B] int
    dead_enemies: np.ndarray  # [B] int
    crashed: np.ndarray | None = None  # [B] bool: the simulator failed; episode invalid

    @property
    def done(self) -> np.ndarray:
        done = self.terminated | self.truncated
        return done if self.crashed is None else done | self.crashed


class SmaxEnv:
    """B parallel SMAX episodes of one map, exposing SMAC's per-agent interface."""

    backend = "smax"

    def __init__(self, spec: MapSpec, batch_size: int, units: str | UnitProfile = DEFAULT_UNITS):
        unsupported = set(spec.ally_units + spec.enemy_units) - set(SMAX_UNIT_TYPES)
        if unsupported:
            raise ValueError(f"map {spec.name}: SMAX has no {', '.join(sorted(unsupported))}")
        self.spec = spec
        self.profile: UnitProfile = units if isinstance(units, UnitProfile) else get_profile(units)
        self.units = self.profile.name
        self.layout: Layout = spec.layout
        self.batch_size = batch_size
        self._build()
        self._key = None
        self._state = None

    # -- construction -------------------------------------------------------------------
    def _build(self) -> None:
        import jax
        import jax.numpy as jnp

        HeuristicEnemySMAX, Scenario = _import_smax()
        spec, lay = self.spec, self.layout
        n, m = spec.n_agents, spec.n_enemies
        types = [SMAX_UNIT_TYPES[u] for u in spec.ally_units + spec.enemy_units]
        sampled = bool(spec.sampled_from)
        scenario = Scenario(jnp.array(types, dtype=jnp.uint8), n, m, sampled, False)
        prof = self.profile
        env = HeuristicEnemySMAX(
            scenario=scenario,
            max_steps=spec.episode_limit,
            map_width=int(MAP_SIZE),
            map_height=int(MAP_SIZE),
            walls_cause_death=False,
            see_enemy_actions=True,
            attack_mode="closest",
            **prof.smax_kwargs(),
        )
        self._env = env
        rules = None
        if prof.sc2_rules:
            from marlbench.envs.sc2_rules import Sc2Rules

            rules = Sc2Rules(env._env, prof, n, m)
            starts = start_positions(n, m, MAP_SIZE)
            ally_start = jnp.asarray(starts[0])
            enemy_start = jnp.asarray(starts[1])
            rally = jnp.asarray(rally_point(MAP_SIZE))
            arena_low, arena_high = (jnp.asarray(b) for b in arena_bounds(MAP_SIZE))
        self._rules = rules
        # per-unit constants are looked up from each episode's unit types (SMAX type ids)
        hp_table = jnp.asarray(prof.column("hit_points"), dtype=jnp.float32)
        shield_table = jnp.asarray(prof.column("shields"), dtype=jnp.float32)
        if rules is None:  # SMAX's own: ranges centre to centre, cooldown by its own maximum
            sight_table = env.unit_type_sight_ranges
            shoot_table = env.unit_type_attack_ranges
            cd_scale = env.unit_type_weapon_cooldowns
        else:  # SMAC's: sight 9, shoot range 6, cooldown in game loops over SMAC's maximum
            sight_table = jnp.full((len(SMAX_UNIT_TYPES),), SMAC_SIGHT_RANGE, jnp.float32)
            shoot_table = jnp.full((len(SMAX_UNIT_TYPES),), SMAC_SHOOT_RANGE, jnp.float32)
            cd_scale = jnp.asarray([SMAC_MAX_COOLDOWN_LOOPS[u] * prof.time_per_loop
                                    for u in SMAX_UNIT_TYPES], dtype=jnp.float32)
        bits = spec.unit_type_bits
        onehot_table = np.zeros((len(SMAX_UNIT_TYPES), bits), dtype=np.float32)
        for k, unit in enumerate(spec.type_order):
            if unit in SMAX_UNIT_TYPES:  # types SMAX lacks are never drawn
                onehot_table[SMAX_UNIT_TYPES[unit], k] = 1.0
        onehot_table = jnp.asarray(onehot_table)
        ally_shield, enemy_shield = spec.shield_ally, spec.shield_enemy  # SMAC: per side
        pool_ids = jnp.array([SMAX_UNIT_TYPES[u] for u in spec.sampled_from] or [0])

        def unit_constants(unit_types):
            t = unit_types.astype(jnp.int32)
            a = t[:n]
            return {
                "pool_max": env.unit_type_health[t],  # SMAX pool = hit points + shields
                "hp_max": hp_table[t],
                "shield_max": shield_table[t],
                "onehot": onehot_table[t],
                "sight": sight_table[a],
                "shoot": shoot_table[a],
                "max_cd": cd_scale[a],
                "step_len": env.unit_type_velocities[a] * env.time_per_step
                * env.world_steps_per_env_step,
            }

        others = np.array([[k for k in range(n) if k != i] for i in range(n)], dtype=np.int32)
        move_dirs = jnp.asarray(_MOVE_DIRS)
        smac_to_smax_move = jnp.asarray(_SMAC_TO_SMAX_MOVE)
        agents = [f"ally_{i}" for i in range(n)]
        n_actions = lay.n_actions

        def smac_view(s, last_actions):
            pos, alive, pool = s.unit_positions, s.unit_alive, s.unit_health
            c = unit_constants(s.unit_types)
            hp_max, shield_max = c["hp_max"], c["shield_max"]
            sight, shoot, max_cd, step_len = c["sight"], c["shoot"], c["max_cd"], c["step_len"]
            # per-unit body features in SMAC order: health, [shield], unit-type one-hot; the
            # shield column only on a Protoss side (shield_bits_ally / shield_bits_enemy)
            health = (jnp.minimum(pool, hp_max) / hp_max)[:, None]
            shield = jnp.clip(pool - hp_max, 0.0, shield_max)
            shield = jnp.where(shield_max > 0, shield / jnp.maximum(shield_max, 1.0), 0.0)

            def body_of(side: slice, with_shield: bool):
                cols = [health[side]] + ([shield[side, None]] if with_shield else [])
                return jnp.concatenate(cols + [c["onehot"][side]], axis=-1)

            a_body = body_of(slice(0, n), ally_shield)
            e_body = body_of(slice(n, None), enemy_shield)
            a_pos, e_pos = pos[:n], pos[n:]
            a_alive, e_alive = alive[:n], alive[n:]
            # enemies as seen by each agent
            d_e = e_pos[None, :, :] - a_pos[:, None, :]
            dist_e = jnp.linalg.norm(d_e, axis=-1)
            both_e = a_alive[:, None] & e_alive[None, :]
            vis_e = both_e & (dist_e < sight[:, None])
            shootable = both_e & (dist_e < shoot[:, None])
            e_feats = jnp.concatenate(
                [
                    shootable[..., None].astype(jnp.float32),
                    (dist_e / sight[:, None])[..., None],
                    d_e / sight[:, None, None],
                    jnp.broadcast_to(e_body[None], (n, m, e_body.shape[-1])),
                ],
                axis=-1,
            ) * vis_e[..., None]
            # other allies, in index order skipping oneself
            d_a = a_pos[None, :, :] - a_pos[:, None, :]
            dist_a = jnp.linalg.norm(d_a, axis=-1)
            vis_a = a_alive[:, None] & a_alive[None, :] & (dist_a < sight[:, None])
            a_feats = jnp.concatenate(
                [
                    vis_a[..., None].astype(jnp.float32),
                    (dist_a / sight[:, None])[..., None],
                    d_a / sight[:, None, None],
                    jnp.broadcast_to(a_body[None], (n, n, a_body.shape[-1])),
                ],
                axis=-1,
            ) * vis_a[..., None]
            a_feats = jnp.take_along_axis(a_feats, others[:, :, None], axis=1)
            # moves that keep the unit on the map
            if rules is None:  # SMAX: the step ahead stays on the map
                target = a_pos[:, None, :] + move_dirs[None] * step_len[:, None, None]
                inside = jnp.all((target > 0.0) & (target < MAP_SIZE), axis=-1)
            else:  # SMAC: the point move_amount / 2 ahead is inside the pathable arena
                target = a_pos[:, None, :] + move_dirs[None] * (SMAC_MOVE_AMOUNT / 2)
                inside = jnp.all((target >= arena_low) & (target < arena_high), axis=-1)
            can_move = inside & a_alive[:, None]
            own = a_body
            obs = jnp.concatenate(
                [
                    can_move.astype(jnp.float32),
                    e_feats.reshape(n, -1),
                    a_feats.reshape(n, -1),
                    own,
                ],
                axis=-1,
            ) * a_alive[:, None]
            avail = jnp.concatenate(
                [
                    (~a_alive)[:, None],  # no-op only for dead agents
                    a_alive[:, None],  # stop
                    can_move,
                    shootable,
                ],
                axis=-1,
            ).astype(jnp.int32)
            # global state, SMAC layout
            centre = MAP_SIZE / 2.0
            rel = (pos - centre) / MAP_SIZE
            cd = jnp.clip(s.unit_weapon_cooldowns[:n] / max_cd, 0.0, 1.0)
            # ally rows [health, cooldown, x, y, (shield), type]; enemy rows [health, x, y, ...]
            ally_rows = jnp.concatenate(
                [a_body[:, :1], cd[:, None], rel[:n], a_body[:, 1:]], axis=-1
            ) * a_alive[:, None]
            enemy_rows = jnp.concatenate(
                [e_body[:, :1], rel[n:], e_body[:, 1:]], axis=-1
            ) * e_alive[:, None]
            last = jax.nn.one_hot(last_actions, n_actions, dtype=jnp.float32)
            state = jnp.concatenate(
                [ally_rows.reshape(-1), enemy_rows.reshape(-1), last.reshape(-1)]
            )
            return obs, state, avail

        def reset_one(key):
            key, type_key = jax.random.split(key)
            _, s = env.reset(key)
            if sampled:  # a new unit mix each episode; enemies mirror the allies
                k1, k2 = jax.random.split(type_key)
                ally = pool_ids[jax.random.randint(k1, (n,), 0, pool_ids.size)]
                extra = pool_ids[jax.random.randint(k2, (m,), 0, pool_ids.size)]
                idx = jnp.arange(m)
                enemy = jnp.where(idx < n, ally[jnp.minimum(idx, n - 1)], extra)
                unit_types = jnp.concatenate([ally, enemy]).astype(s.state.unit_types.dtype)
                s = s.replace(state=s.state.replace(
                    unit_types=unit_types, unit_health=env.unit_type_health[unit_types]))
            if rules is not None:  # the recorded StarCraft II start; enemies in shuffled slots
                order = jax.random.permutation(jax.random.fold_in(type_key, 1), m)
                pos = jnp.concatenate([ally_start, enemy_start[order]])
                inner = s.state.replace(
                    unit_positions=pos.astype(s.state.unit_positions.dtype),
                    prev_attack_actions=jnp.zeros_like(s.state.prev_attack_actions))
                s = s.replace(state=rules.env._push_units_away(inner))
            # strong dtypes everywhere, so reset and step states share one compiled step
            s = jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), s)
            last = jnp.zeros((n,), dtype=jnp.int32)
            obs, state, avail = smac_view(s.state, last)
            return s, last, obs, state, avail

        def step_one(key, s, done, actions):
            smax_actions = jnp.where(
                actions >= N_NO_ATTACK,
                actions - N_NO_ATTACK + 5,
                smac_to_smax_move[jnp.clip(actions, 0, N_NO_ATTACK - 1)],
            )
            if rules is None:
                act = {agents[i]: smax_actions[i] for i in range(n)}
                _, s2, _, _, _ = env.step_env(key, s, act)
            else:  # SMAC's orders: stop, move 2 units N/S/E/W, attack enemy j
                moving = (actions >= 2) & (actions < N_NO_ATTACK)
                move = jnp.where(moving[:, None], move_dirs[jnp.clip(actions - 2, 0, 3)], 0.0)
                target = jnp.where(actions >= N_NO_ATTACK, actions - N_NO_ATTACK + n, -1)
                s2 = s.replace(state=rules.step(key, s.state, move, target, rally))
            inner_before, inner = s.state, s2.state
            hp0, hp1 = inner_before.unit_health[n:], inner.unit_health[n:]
            killed = inner_before.unit_alive[n:] & ~inner.unit_alive[n:]
            a_alive = inner.unit_alive[:n]
            e_alive = inner.unit_alive[n:]
            won = ~jnp.any(e_alive) & jnp.any(a_alive)
            over = ~jnp.any(e_alive) | ~jnp.any(a_alive)
            truncated = ~over & (inner.step >= spec.episode_limit)
            raw = jnp.sum(hp0 - hp1) + REWARD_DEATH_VALUE * jnp.sum(killed) + REWARD_WIN * won
            enemy_pool = env.unit_type_health[inner.unit_types[n:].astype(jnp.int32)]
            max_reward = m * REWARD_DEATH_VALUE + REWARD_WIN + jnp.sum(enemy_pool)
            reward = raw / (max_reward / REWARD_SCALE_RATE)
            last = jnp.where(a_alive, actions, 0).astype(jnp.int32)
            # an episode that already ended stays frozen
            s_out = jax.tree.map(lambda old, new: jnp.where(done, old, new), s, s2)
            obs, state, avail = smac_view(s_out.state, last)
            return (
                s_out,
                obs,
                state,
                avail,
                jnp.where(done, 0.0, reward),
                over & ~done,
                truncated & ~done,
                won & ~done,
                jnp.sum(~s_out.state.unit_alive[:n]),
                jnp.sum(~s_out.state.unit_alive[n:]),
            )

        self._reset = jax.jit(jax.vmap(reset_one))
        self._step = jax.jit(jax.vmap(step_one))
        self._smac_view = smac_view  # exposed for feature tests
        self._jax = jax

    # -- public API ---------------------------------------------------------------------
    def reset(self, seed: int) -> StepResult:
        """Start B new episodes; the batch is fully determined by ``seed``."""
        jax = self._jax
        self._key = jax.random.PRNGKey(seed)
        self._key, sub = jax.random.split(self._key)
        keys = jax.random.split(sub, self.batch_size)
        self._state, _, obs, state, avail = self._reset(keys)
        self._done = np.zeros(self.batch_size, dtype=bool)
        b = self.batch_size
        zeros = np.zeros(b, dtype=bool)
        return StepResult(
            np.array(obs),
            np.array(state),
            np.array(avail),
            np.zeros(b, dtype=np.float32),
            zeros,
            zeros,
            zeros,
            np.zeros(b, dtype=np.int64),
            np.zeros(b, dtype=np.int64),
        )

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every running episode by one SMAC step; ended episodes stay frozen."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        jax = self._jax
        self._key, sub = jax.random.split(self._key)
        keys = jax.random.split(sub, self.batch_size)
        actions = np.asarray(actions, dtype=np.int32)
        out = self._step(keys, self._state, self._done, actions)
        self._state = out[0]
        res = StepResult(
            np.array(out[1]),
            np.array(out[2]),
            np.array(out[3]),
            np.asarray(out[4], dtype=np.float32),
            np.asarray(out[5]),
            np.asarray(out[6]),
            np.asarray(out[7]),
            np.asarray(out[8]).astype(np.int64),
            np.asarray(out[9]).astype(np.int64),
        )
        self._done = self._done | res.done
        return res

    # -- the fidelity yardstick's door: put recorded states in, read unit states out -----
    def inject(self, positions: np.ndarray, pool: np.ndarray, ally_cooldown: np.ndarray,
               step: np.ndarray, enemy_cooldown: np.ndarray | None = None,
               enemy_target: np.ndarray | None = None) -> None:
        """Overwrite what SMAC's state records of the B episodes: ``positions`` [B, N, 2] in
        map units, ``pool`` [B, N] health + shields (0: dead), ``ally_cooldown`` [B, n] in
        simulator seconds, ``step`` [B] the episode step. What SMAC's state does not record
        (enemy cooldowns and, under StarCraft II's rules, the enemy's remembered targets,
        unless ``enemy_cooldown`` / ``enemy_target`` [B, m] give them; target -1 keeps the
        remembered one) stays the simulator's own."""
        if self._state is None:
            raise RuntimeError("call reset() before inject()")
        jnp = self._jax.numpy
        inner = self._state.state
        n = self.spec.n_agents
        cd = jnp.concatenate([jnp.asarray(ally_cooldown, dtype=inner.unit_weapon_cooldowns.dtype),
                              inner.unit_weapon_cooldowns[:, n:]], axis=1)
        inner = inner.replace(
            unit_positions=jnp.asarray(positions, dtype=inner.unit_positions.dtype),
            unit_health=jnp.asarray(pool, dtype=inner.unit_health.dtype),
            unit_alive=jnp.asarray(pool > 0),
            unit_weapon_cooldowns=cd,
            step=jnp.asarray(step, dtype=inner.step.dtype),
        )
        if enemy_cooldown is not None:
            inner = inner.replace(unit_weapon_cooldowns=inner.unit_weapon_cooldowns.at[:, n:].set(
                jnp.asarray(enemy_cooldown, dtype=inner.unit_weapon_cooldowns.dtype)))
        if enemy_target is not None and self._rules is not None:  # -1: keep the remembered
            memory = inner.prev_attack_actions[:, n:]
            given = jnp.asarray(enemy_target)
            memory = jnp.where(given >= 0, given + 1, memory).astype(memory.dtype)
            inner = inner.replace(prev_attack_actions=inner.prev_attack_actions.at[:, n:].set(
                memory))
        self._state = self._state.replace(state=inner)
        self._done = np.zeros(self.batch_size, dtype=bool)

    def unit_state(self) -> dict[str, np.ndarray]:
        """The B episodes' raw unit state: positions, pool (health + shields), cooldowns
        (simulator seconds), alive flags."""
        inner = self._state.state
        return {"positions": np.asarray(inner.unit_positions),
                "pool": np.asarray(inner.unit_health),
                "cooldown": np.asarray(inner.unit_weapon_cooldowns),
                "alive": np.asarray(inner.unit_alive)}

    @property
    def all_done(self) -> bool:
        return bool(self._done.all())
