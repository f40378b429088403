"""StarCraft II's combat rules on SMAX's unit state, for the ``sc2`` unit profile.

SMAX moves units and resolves attacks in world steps; this module replaces its world step
with the rules as StarCraft II applies them to SMAC's orders, and its heuristic enemy with an
attack-move enemy like the one SMAC's maps script:

- weapon range is measured edge to edge (centre distance <= range + both radii);
- an attack order on a target out of weapon range walks toward it (SMAC lets an agent attack
  anything within its shoot range 6, beyond a marine's reach of 5.75), a unit in range stands;
- damage is (damage + bonus vs armoured - target armour) per hit, at least 0.5, times the
  hits per attack; shields take damage first and ignore armour (shield armour 0);
- the enemy attack-moves toward the agents' spawn (SMAC's maps order it so): it walks on
  until an agent is within its reach and shoots an agent in reach drawn anew for every shot
  (both fitted on recorded StarCraft II: ``units.FITTED``; the profile's ``enemy_acquire``
  and ``enemy_targeting`` switch to acquiring in sight, or to keeping the closest or a
  randomly drawn target while it lives and stays in reach); past the
  spawn it walks toward the closest agent;
- SMAC's agents are passive: they shoot only what they are ordered to;
- units stay inside the pathable arena of SMAC's maps (28 x 18 around the centre).

Not modelled: shield regeneration, acceleration, projectile travel, pathing around units
(SMAX pushes overlapping units apart instead).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from marlbench.envs.units import SMAX_UNIT_TYPES, UnitProfile, arena_bounds


def _column(profile: UnitProfile, attr: str, dtype=jnp.float32) -> jax.Array:
    return jnp.asarray(profile.column(attr), dtype=dtype)


class Sc2Rules:
    """World steps with StarCraft II's rules for one SMAX environment ``env`` built with the
    profile's speeds, radii, ranges and time step."""

    def __init__(self, env, profile: UnitProfile, n_allies: int, n_enemies: int):
        self.env = env
        self.n, self.m = n_allies, n_enemies
        self.dt = profile.time_per_loop
        self.loops = profile.loops_per_step
        self.hit_points = _column(profile, "hit_points")
        self.armour = _column(profile, "armour")
        self.damage = _column(profile, "damage")
        self.hits = _column(profile, "hits")
        self.bonus = _column(profile, "bonus_vs_armoured")
        self.armoured = _column(profile, "armoured")
        self.cooldown = _column(profile, "cooldown")
        self.weapon_range = _column(profile, "weapon_range")
        self.speed = _column(profile, "speed")
        self.radius = _column(profile, "radius")
        self.sight = _column(profile, "sight")
        low, high = arena_bounds(float(env.map_width))
        self.low, self.high = jnp.asarray(low), jnp.asarray(high)
        self.acquire = profile.enemy_acquire
        self.targeting = profile.enemy_targeting
        assert len(SMAX_UNIT_TYPES) == self.speed.shape[0]

    # -- the enemy ---------------------------------------------------------------------
    def enemy_targets(self, state, key) -> jax.Array:
        """Each enemy's target (unit index, or -1 to walk on) for the coming game loop, among
        the agents it acquires (within its weapon reach, or its sight: the profile's
        ``enemy_acquire``). ``enemy_targeting`` "random": one drawn uniformly every loop, so
        each shot goes to a random agent in reach; "closest" / "sticky": its current target
        while alive and in reach, else the closest / one drawn at random."""
        n = self.n
        pos, alive = state.unit_positions, state.unit_alive
        t = state.unit_types.astype(jnp.int32)
        e_pos, a_pos = pos[n:], pos[:n]
        dist = jnp.linalg.norm(e_pos[:, None] - a_pos[None], axis=-1)  # [m, n]
        gap = dist - self.radius[t[n:]][:, None] - self.radius[t[:n]][None]
        reach = self.weapon_range[t[n:]][:, None]
        if self.acquire == "reach":
            seen = alive[None, :n] & (gap <= reach)
        else:
            seen = alive[None, :n] & (dist <= self.sight[t[n:]][:, None])
        draw = jax.random.uniform(key, seen.shape)
        pick = jnp.argmax(jnp.where(seen, draw, -1.0), axis=-1)
        if self.targeting == "random":
            return jnp.where(alive[n:] & jnp.any(seen, axis=-1), pick, -1)
        if self.targeting == "sticky":
            fresh = pick
        else:
            fresh = jnp.argmin(jnp.where(seen, dist, jnp.inf), axis=-1)
        prev = state.prev_attack_actions[n:] - 1  # stored as target + 1; 0 = none
        prev_ok = (prev >= 0) & alive[jnp.clip(prev, 0)] & (
            jnp.take_along_axis(gap, jnp.clip(prev, 0)[:, None], axis=1)[:, 0] <= reach[:, 0])
        target = jnp.where(prev_ok, prev, jnp.where(jnp.any(seen, axis=-1), fresh, -1))
        return jnp.where(alive[n:], target, -1)

    def enemy_moves(self, state, target: jax.Array, rally: jax.Array) -> jax.Array:
        """Unit vectors toward the rally point (the agents' start) for enemies without a
        target; once there, toward the closest living agent."""
        n = self.n
        pos, alive = state.unit_positions, state.unit_alive
        e_pos = pos[n:]
        to_rally = rally[None] - e_pos
        dist_a = jnp.linalg.norm(e_pos[:, None] - pos[None, :n], axis=-1)
        closest = jnp.argmin(jnp.where(alive[None, :n], dist_a, jnp.inf), axis=-1)
        to_agent = pos[closest] - e_pos
        arrived = jnp.linalg.norm(to_rally, axis=-1) < 1.0
        vec = jnp.where(arrived[:, None], to_agent, to_rally)
        norm = jnp.linalg.norm(vec, axis=-1, keepdims=True)
        vec = jnp.where(norm > 1e-6, vec / jnp.maximum(norm, 1e-6), 0.0)
        return jnp.where((target < 0)[:, None], vec, 0.0)

    # -- one world step (one game loop) ------------------------------------------------
    def world_step(self, key, state, move: jax.Array, target: jax.Array):
        """Advance one game loop: ``move`` [N, 2] unit vectors (zero to stand), ``target``
        [N] the unit each one attacks (-1: none). A unit whose target has died stands idle:
        SMAC's agents are passive (their map units never acquire targets themselves); the
        enemy picks a new target in the next loop."""
        pos, alive, pool = state.unit_positions, state.unit_alive, state.unit_health
        t = state.unit_types.astype(jnp.int32)
        has = target >= 0
        tgt = jnp.clip(target, 0)
        vec = pos[tgt] - pos
        dist = jnp.linalg.norm(vec, axis=-1)
        reach = self.weapon_range[t] + self.radius[t] + self.radius[t[tgt]]
        tgt_ok = has & alive[tgt] & alive
        in_reach = tgt_ok & (dist <= reach)
        chase = tgt_ok & ~in_reach
        direction = jnp.where(chase[:, None], vec / jnp.maximum(dist, 1e-6)[:, None], move)
        direction = jnp.where((has & ~chase)[:, None], 0.0, direction)  # attacking: stand
        step = direction * (self.speed[t] * self.dt)[:, None]
        new_pos = jnp.clip(pos + step, self.low, self.high)  # the arena's walls
        new_pos = jnp.where(alive[:, None], new_pos, pos)
        # attacks whose weapon is ready
        fire = in_reach & (state.unit_weapon_cooldowns <= 0.0)
        tt = t[tgt]
        per_hit = self.damage[t] + self.bonus[t] * self.armoured[tt]
        total = per_hit * self.hits[t]
        shield_left = jnp.maximum(pool[tgt] - self.hit_points[tt], 0.0)
        on_shield = jnp.minimum(total, shield_left)
        rest = total - on_shield
        on_hp = jnp.where(
            rest > 0,
            jnp.maximum(rest - self.armour[tt] * self.hits[t] * rest / jnp.maximum(total, 1e-6),
                        0.5 * self.hits[t]),
            0.0,
        )
        loss = jnp.where(fire, on_shield + on_hp, 0.0)
        health = jnp.maximum(pool - jax.ops.segment_sum(loss, tgt, num_segments=pool.shape[0]),
                             0.0)
        jitter = jax.random.uniform(key, pool.shape, minval=-self.dt, maxval=2 * self.dt)
        # the weapon cools during the loop it fires in too: one attack per cooldown, with
        # SMAX's jitter of -1 to +2 loops (pysc2's advice to randomise)
        cd = jnp.where(fire, self.cooldown[t] + jitter, state.unit_weapon_cooldowns) - self.dt
        return state.replace(unit_positions=new_pos, unit_health=health,
                             unit_weapon_cooldowns=cd)

    def step(self, key, state, move: jax.Array, target: jax.Array, rally: jax.Array):
        """One agent step (``loops`` game loops) from the agents' orders (``move`` [n, 2]
        unit vectors, ``target`` [n] enemy unit index or -1); the enemy decides every loop."""
        n = self.n
        env = self.env

        def loop(carry, _):
            s, k = carry
            k, sub, pick = jax.random.split(k, 3)
            e_target = self.enemy_targets(s, pick)
            e_move = self.enemy_moves(s, e_target, rally)
            s = self.world_step(sub, s, jnp.concatenate([move, e_move]),
                                jnp.concatenate([target, e_target]))
            s = s.replace(unit_alive=s.unit_health > 0)
            s = env._push_units_away(s)
            memory = jnp.concatenate([jnp.zeros((n,), jnp.int32), e_target + 1])
            s = s.replace(prev_attack_actions=memory.astype(s.prev_attack_actions.dtype))
            return (s, k), None

        (state, _), _ = jax.lax.scan(loop, (state, key), None, length=self.loops)
        return state.replace(step=state.step + 1, done=env.is_terminal(state))
