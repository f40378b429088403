"""Unit profiles of the embedded StarCraft backend: the statistics SMAX simulates units with.

``smax`` is JaxMARL SMAX's own table (its constructor defaults). ``sc2`` is StarCraft II's
unit data as SMAC meets it (game version 4.10, time in "faster" game seconds, 22.4 game loops
per second, SMAC's step_mul 8), each value with its source in :data:`SC2_SOURCES`; what the
facts leave open (how game time maps to simulator time) is fitted on real StarCraft II
trajectories by ``marlbench env fidelity`` and stated in :data:`FITTED`.
"""

from __future__ import annotations

from dataclasses import dataclass

UNIT_PROFILES = ("smax", "sc2")
DEFAULT_UNITS = "smax"

# SMAX's unit type order (jaxmarl smax_env.SMAX unit_type_names).
SMAX_UNIT_TYPES = {"marine": 0, "marauder": 1, "stalker": 2, "zealot": 3, "zergling": 4,
                   "hydralisk": 5}

GAME_LOOPS_PER_SECOND = 22.4  # "faster" game speed (Liquipedia: Game Speed)
SMAC_STEP_MUL = 8  # game loops per agent step (SMAC StarCraft2Env step_mul default)


@dataclass(frozen=True)
class UnitStats:
    """One unit type. Distances in game units, times in faster game seconds."""

    hit_points: float
    shields: float
    armour: float
    damage: float  # per hit
    hits: int  # hits per attack (a zealot strikes twice)
    bonus_vs_armoured: float
    armoured: bool
    cooldown: float  # seconds between attacks
    weapon_range: float  # edge to edge, as StarCraft II measures it
    speed: float  # game units per second
    radius: float
    sight: float


@dataclass(frozen=True)
class UnitProfile:
    """A backend's unit table and its time step."""

    name: str
    units: dict[str, UnitStats]
    time_per_loop: float  # simulator seconds per world step
    loops_per_step: int = SMAC_STEP_MUL
    sc2_rules: bool = False  # armour, bonuses, edge ranges, attack-move enemy (sc2_rules.py)
    enemy_acquire: str = "reach"  # sc2_rules: the attack-moving enemy picks targets in "reach"
    # (weapon range, edge to edge) or "sight"
    enemy_targeting: str = "random"  # sc2_rules: a "random" acquired agent every game loop, or
    # the "closest" / a random one ("sticky"), kept while alive and in reach

    def __post_init__(self) -> None:
        if self.enemy_acquire not in ("reach", "sight"):
            raise ValueError(f"enemy_acquire must be reach or sight, not {self.enemy_acquire!r}")
        if self.enemy_targeting not in ("random", "closest", "sticky"):
            raise ValueError("enemy_targeting must be random, closest or sticky, not "
                             f"{self.enemy_targeting!r}")

    def column(self, attr: str) -> list[float]:
        """``attr`` of every SMAX unit type, in SMAX's type order."""
        return [float(getattr(self.units[u], attr)) for u in SMAX_UNIT_TYPES]

    def smax_kwargs(self) -> dict:
        """SMAX constructor arguments for this profile (none for SMAX's own: its defaults)."""
        return smax_kwargs(self)


def _smax(hp, sh, damage, cooldown, rng, speed, radius, sight) -> UnitStats:
    return UnitStats(hit_points=hp, shields=sh, armour=0.0, damage=damage, hits=1,
                     bonus_vs_armoured=0.0, armoured=False, cooldown=cooldown,
                     weapon_range=rng, speed=speed, radius=radius, sight=sight)


# jaxmarl 0.2.0 smax_env.SMAX.__init__ defaults. SMAX keeps one pool (its unit_type_health:
# stalker 160, zealot 150 = hit points + shields), split back here into SMAC's two bars.
SMAX_PROFILE = UnitProfile(
    name="smax",
    units={
        "marine": _smax(45, 0, 9.0, 0.61, 5.0, 3.15, 0.375, 9.0),
        "marauder": _smax(125, 0, 10.0, 1.07, 6.0, 2.25, 0.5625, 10.0),
        "stalker": _smax(80, 80, 13.0, 1.87, 6.0, 4.13, 0.625, 10.0),
        "zealot": _smax(100, 50, 8.0, 0.86, 2.0, 3.15, 0.5, 9.0),
        "zergling": _smax(35, 0, 5.0, 0.5, 2.0, 4.13, 0.375, 8.0),
        "hydralisk": _smax(80, 0, 12.0, 0.59, 5.0, 3.15, 0.625, 9.0),
    },
    time_per_loop=1.0 / 16,
)

# SMAC's own constants (oxwhirl/smac smac/env/starcraft2/starcraft2.py): unit_shoot_range 6,
# unit_sight_range 9, unit_max_cooldown (game loops; the state's cooldown is divided by it).
SMAC_SHOOT_RANGE = 6.0
SMAC_SIGHT_RANGE = 9.0
SMAC_MAX_COOLDOWN_LOOPS = {"marine": 15, "marauder": 25, "stalker": 35, "zealot": 22,
                           "zergling": 11, "hydralisk": 10}


def _sc2(hp, sh, armour, damage, hits, bonus, armoured, cooldown, rng, speed, radius,
         sight) -> UnitStats:
    return UnitStats(hit_points=hp, shields=sh, armour=armour, damage=damage, hits=hits,
                     bonus_vs_armoured=bonus, armoured=armoured, cooldown=cooldown,
                     weapon_range=rng, speed=speed, radius=radius, sight=sight)


SC2_PROFILE = UnitProfile(
    name="sc2",
    units={
        "marine": _sc2(45, 0, 0, 6, 1, 0, False, 0.61, 5, 3.15, 0.375, 9),
        "marauder": _sc2(125, 0, 1, 10, 1, 10, True, 1.07, 6, 3.15, 0.5625, 10),
        "stalker": _sc2(80, 80, 1, 13, 1, 5, True, 1.34, 6, 4.13, 0.625, 10),
        "zealot": _sc2(100, 50, 1, 8, 2, 0, False, 0.86, 0.1, 3.15, 0.5, 9),
        "zergling": _sc2(35, 0, 0, 5, 1, 0, False, 0.497, 0.1, 4.13, 0.375, 8),
        # 6h_vs_8z's Hydralisk_RL: LifeMax 80 (stock 90), Attributes Light + Biological (not
        # armoured), armour 0; NeedleSpines 12 damage, range 5, cooldown 0.825 normal s
        "hydralisk": _sc2(80, 0, 0, 12, 1, 0, False, 0.59, 5, 3.15, 0.625, 9),
    },
    time_per_loop=1.0 / GAME_LOOPS_PER_SECOND,
    sc2_rules=True,
)

PROFILES = {"smax": SMAX_PROFILE, "sc2": SC2_PROFILE}

# What the facts leave open, fitted on the public ODIS 3m medium file (2000 episodes recorded
# in StarCraft II; `marlbench env fidelity 3m --fit`, benchmarks/fidelity.py). Each choice is
# the one with the smaller one-step error, or the statistic it matches.
FITTED = {
    "time_scale": "1.0: simulator seconds per faster game second; one-step position error "
                  "(allies + enemies) 0.251 / 0.178 / 0.142 / 0.116 / 0.146 / 0.187 / 0.265 at "
                  "0.8 / 0.9 / 0.95 / 1.0 / 1.05 / 1.1 / 1.2",
    "enemy_acquire": "reach: the enemy walks on until an agent is within its weapon reach "
                     "(enemy position error 0.080, against 0.210 acquiring in sight)",
    "enemy_targeting": "random: each shot at an agent in reach drawn uniformly; the agents "
                       "hit rank closest / second / third 0.640 / 0.273 / 0.086 in simulation "
                       "and 0.638 / 0.270 / 0.092 in the recording (keeping the closest: "
                       "0.711 / 0.244 / 0.045)",
    "not fitted": "the episodes follow (BC-t cloned from the file with 1000 updates wins 53.9 "
                  "% of 512 embedded 3m battles, return 14.35, length 24.9, against the "
                  "recording's 54.1 %, 14.00, 25.2; 10.4 % on units smax; another clone seed "
                  "42.4 %) once the agents start where the recording puts each of them; "
                  "the alternatives lose it: keeping the closest target (enemy_targeting "
                  "closest: agent health error 0.028, but 0 % won), keeping a target drawn at "
                  "random (sticky: 0.029, 3.9 % won), acquiring in sight (enemy position "
                  "error 0.210, 79.7 % won); the built-in AI's rules are not public "
                  "(oxwhirl/smac#85)",
}


def get_profile(name: str) -> UnitProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown unit profile {name!r}; choose one of: "
                         f"{', '.join(UNIT_PROFILES)}") from None


def smax_kwargs(profile: UnitProfile) -> dict:
    """SMAX constructor arguments for ``profile`` (none for SMAX's own: its defaults)."""
    if profile.name == "smax":
        return {}
    import jax.numpy as jnp

    col = profile.column
    pool = [h + s for h, s in zip(col("hit_points"), col("shields"), strict=True)]
    return {
        "unit_type_velocities": jnp.array(col("speed")),
        "unit_type_attacks": jnp.array([d * k for d, k in zip(col("damage"), col("hits"),
                                                              strict=True)]),
        "unit_type_attack_ranges": jnp.array(col("weapon_range")),
        "unit_type_sight_ranges": jnp.array(col("sight")),
        "unit_type_radiuses": jnp.array(col("radius")),
        "unit_type_health": jnp.array(pool),
        "unit_type_weapon_cooldowns": jnp.array(col("cooldown")),
        "time_per_step": profile.time_per_loop,
        "world_steps_per_env_step": profile.loops_per_step,
    }


# The start of every recorded StarCraft II 3m episode (public ODIS 3m medium file, all 2000
# episodes): agent 0 at (-7, -0.69), agent 1 at (-7, 0), agent 2 at (-6.31, 0) from the centre;
# the enemies at (6.86, 0), (6.86, -0.69), (7.55, 0) in shuffled order. StarCraft II puts the
# first unit on the spawn point, the next below it, the next east of the first: the same shape
# for both teams (translated, not mirrored), units 0.6875 apart.
SPAWN_POINT = {"ally": (-7.0, 0.0), "enemy": (6.8625, 0.0)}  # first unit, from the centre
SPAWN_SPACING = 0.6875


# SMAC's maps (3m MapScript.galaxy and Objects, and the same points on 8m, 25m, 5m_vs_6m, 2s3z,
# 3s5z, MMM, ...): the agents spawn at (9, 16), the enemy at (23, 16) on a 32 x 32 map, and
# every enemy unit is ordered to attack-move to the agents' spawn point.
AGENT_SPAWN = (9.0, 16.0)


# The pathable arena, relative to the map centre, read off the recorded availability masks of
# the ODIS 3m file (SMAC allows a move when the point move_amount / 2 = 1 ahead is pathable):
# moving south is refused from y - 1 <= -9.08 on and allowed at y - 1 = -8.96, moving east
# refused at x + 1 = 14.35 and allowed at 13.23; the other walls by the map's symmetry. An
# arena 28 wide (SMAC's playable width of 3m) and 18 high, shared by SMAC's maps that use
# the same spawn points.
ARENA = ((-14.0, 14.0), (-9.0, 9.0))
SMAC_MOVE_AMOUNT = 2.0  # StarCraft2Env move_amount: a move order targets 2 units ahead


def arena_bounds(map_size: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """(low x, low y), (high x, high y) of the pathable arena on a map of ``map_size``."""
    c = map_size / 2
    return (c + ARENA[0][0], c + ARENA[1][0]), (c + ARENA[0][1], c + ARENA[1][1])


def rally_point(map_size: float) -> tuple[float, float]:
    """Where the enemy attack-moves to: the agents' spawn, placed on a map of ``map_size``."""
    return AGENT_SPAWN[0] - 16.0 + map_size / 2, AGENT_SPAWN[1] - 16.0 + map_size / 2


# Not modelled: maps laid out otherwise start as 3m does. 6h_vs_8z's Objects put the
# hydralisks at (14.60, 9.49) and the zealots at (14.41, 16.76), 7.3 apart north to south.
def start_positions(n: int, m: int, map_size: float):
    """Ally and enemy start positions in unit order (allies as recorded; SMAC shuffles the
    enemy's order every episode): StarCraft II's placement as recorded on 3m, the first unit
    on the team's spawn point, then down the column and east to the next column, in columns
    of ceil(sqrt(k)) units, agent 0 being the unit placed second (measured for three units;
    larger teams continue the pattern)."""
    import numpy as np

    def team(k: int, side: str) -> np.ndarray:
        rows = int(np.ceil(np.sqrt(k)))
        x0, y0 = SPAWN_POINT[side]
        out = []
        for i in range(k):
            col, row = divmod(i, rows)
            out.append([x0 + col * SPAWN_SPACING, y0 - row * SPAWN_SPACING])
        if side == "ally" and k > 1:  # as recorded: agent 0 is the unit placed second
            out[0], out[1] = out[1], out[0]
        return np.asarray(out, dtype=np.float32) + map_size / 2

    return team(n, "ally"), team(m, "enemy")
