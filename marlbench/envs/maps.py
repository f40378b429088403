"""Map registry and SMAC entity layouts (protocol.md §2 and §5).

A :class:`MapSpec` carries the facts of one StarCraft map; :class:`Layout` derives the
observation, state and action widths that SMAC produces for it, and is how learners cut a
flat observation into entity tokens.

Widths follow oxwhirl/smac ``smac/env/starcraft2/starcraft2.py`` with the flags of the ODIS
family's ``sc2_offline.yaml`` (obs_all_health, obs_own_health, state_last_action on;
obs_last_action, obs_pathing_grid, obs_terrain_height, timesteps off):

- shields are per side: ``shield_bits_ally = 1 if a_race == "P"``, ``shield_bits_enemy = 1 if
  b_race == "P"``;
- ``get_obs_move_feats_size`` = n_actions_move 4 (+8 pathing, +9 height, both off);
- ``get_obs_enemy_feats_size`` = 4 + unit_type_bits + 1 + shield_bits_enemy;
- ``get_obs_ally_feats_size`` = 4 + unit_type_bits + 1 + shield_bits_ally;
- ``get_obs_own_feats_size`` = unit_type_bits + 1 + shield_bits_ally;
- ``get_state_size`` = n_agents (4 + shield_bits_ally + bits) + n_enemies (3 + shield_bits_enemy
  + bits) + n_agents n_actions, with n_actions = 6 + n_enemies.
"""

from __future__ import annotations

from dataclasses import dataclass

N_NO_ATTACK = 6  # SMAC: 0 no-op, 1 stop, 2-5 move N/S/E/W; 6 + j attacks enemy j
MOVE_FEATS = 4


@dataclass(frozen=True)
class MapSpec:
    """One StarCraft map: unit counts and types, episode limit, unit-type bits."""

    name: str
    n_agents: int
    n_enemies: int
    episode_limit: int
    unit_type_bits: int
    ally_units: tuple[str, ...]
    enemy_units: tuple[str, ...]
    type_order: tuple[str, ...] = ()  # unit types in the order of the one-hot bits
    sampled_from: tuple[str, ...] = ()  # SMACv2-style: unit types drawn anew each episode
    defined_by: str = "SMAC / ODIS map registry"
    backends: tuple[str, ...] = ("smax", "sc2")  # where it runs, the default first

    @property
    def shield_ally(self) -> bool:
        """The agents are Protoss: SMAC adds a shield feature to every ally and own block and
        ally state row (``shield_bits_ally``)."""
        return any(u in PROTOSS for u in self.ally_units + self.sampled_from)

    @property
    def shield_enemy(self) -> bool:
        """The enemies are Protoss: SMAC adds a shield feature to every enemy block and enemy
        state row (``shield_bits_enemy``)."""
        return any(u in PROTOSS for u in self.enemy_units + self.sampled_from)

    @property
    def layout(self) -> Layout:
        return Layout.for_map(self)


SMAC_ORDER = ("move", "enemy", "ally", "own")


@dataclass(frozen=True)
class Layout:
    """Entity layout of a flat observation, cut into blocks in ``order``.

    SMAC: [move | enemies × nf_en | allies × nf_al | own]. Grid navigation (ODIS's
    ``cn_decomposer``): [own | other agents | landmarks], landmarks playing the enemy role.
    Actions: ``n_no_attack`` basic actions, then one per enemy entity.
    """

    n_agents: int
    n_enemies: int
    move_feats: int
    enemy_feats: int
    ally_feats: int
    own_feats: int
    n_actions: int
    state_dim: int
    episode_limit: int
    unit_type_bits: int = 0
    shield_ally: int = 0  # 1 when allies carry a shield feature (the agents are Protoss)
    shield_enemy: int = 0  # 1 when enemies carry a shield feature (the enemies are Protoss)
    order: tuple[str, ...] = SMAC_ORDER
    n_no_attack: int = N_NO_ATTACK
    kind: str = "entity"  # "entity" (SMAC family, grid navigation) or "flat" (one vector)

    @classmethod
    def for_map(cls, spec: MapSpec) -> Layout:
        """SMAC's widths for ``spec`` (the formulas in the module docstring)."""
        sa, se, bits = int(spec.shield_ally), int(spec.shield_enemy), spec.unit_type_bits
        n_actions = N_NO_ATTACK + spec.n_enemies
        state = (
            spec.n_agents * (4 + sa + bits)
            + spec.n_enemies * (3 + se + bits)
            + spec.n_agents * n_actions
        )
        return cls(
            n_agents=spec.n_agents,
            n_enemies=spec.n_enemies,
            move_feats=MOVE_FEATS,
            enemy_feats=4 + bits + 1 + se,
            ally_feats=4 + bits + 1 + sa,
            own_feats=bits + 1 + sa,
            n_actions=n_actions,
            state_dim=state,
            episode_limit=spec.episode_limit,
            unit_type_bits=bits,
            shield_ally=sa,
            shield_enemy=se,
        )

    @property
    def shield(self) -> int:
        """The shield width shared by both sides, for code written before shields were per
        side; asymmetric maps (6h_vs_8z, corridor, ...) must ask for the side."""
        if self.shield_ally != self.shield_enemy:
            raise ValueError("this map's sides differ in shields; use shield_ally or "
                             "shield_enemy")
        return self.shield_ally

    @property
    def ally_state_feats(self) -> int:
        """Width of one ally row of SMAC's state: health, cooldown, x, y, [shield], type."""
        return 4 + self.shield_ally + self.unit_type_bits

    @property
    def enemy_state_feats(self) -> int:
        """Width of one enemy row of SMAC's state: health, x, y, [shield], type."""
        return 3 + self.shield_enemy + self.unit_type_bits

    @property
    def obs_dim(self) -> int:
        return (
            self.move_feats
            + self.n_enemies * self.enemy_feats
            + (self.n_agents - 1) * self.ally_feats
            + self.own_feats
        )

    @property
    def n_attack(self) -> int:
        return self.n_actions - self.n_no_attack

    def block_widths(self) -> dict[str, int]:
        return {
            "move": self.move_feats,
            "enemy": self.n_enemies * self.enemy_feats,
            "ally": (self.n_agents - 1) * self.ally_feats,
            "own": self.own_feats,
        }

    def slices(self) -> dict[str, slice]:
        """Where each block sits in the flat observation."""
        out, start = {}, 0
        widths = self.block_widths()
        for block in self.order:
            out[block] = slice(start, start + widths[block])
            start += widths[block]
        out.setdefault("move", slice(0, 0))
        return out


PROTOSS = {"stalker", "zealot", "colossus"}


def _marines(name: str, n: int, m: int, limit: int) -> MapSpec:
    return MapSpec(name, n, m, limit, 0, ("marine",) * n, ("marine",) * m)


def _sz(name: str, s: int, z: int, limit: int) -> MapSpec:
    units = ("stalker",) * s + ("zealot",) * z
    return MapSpec(name, s + z, s + z, limit, 2, units, units, ("stalker", "zealot"))


# SMACv2 races with their unit types in SMACv2's one-hot order. SMAX has no colossus, medivac
# or baneling, so marlbench's SMACv2-style tasks draw only the first two types, with equal
# probability (SMACv2's weights 0.45 / 0.45 / 0.1 without the third); the third bit stays
# in the layout so that real SMACv2 (with weight 0 on the third type) has the same widths.
SMACV2_RACES = {
    "protoss": ("stalker", "zealot", "colossus"),
    "terran": ("marine", "marauder", "medivac"),
    "zerg": ("zergling", "hydralisk", "baneling"),
}


def _v2(race: str, n: int, m: int) -> MapSpec:
    order = SMACV2_RACES[race]
    pool = order[:2]
    return MapSpec(f"{race}_{n}_vs_{m}", n, m, 200, len(order), (pool[0],) * n, (pool[0],) * m,
                   order, pool, "marlbench (SMACv2-style unit mixes)")


# MADS4's SMAC maps (protocol.md §8.4), as oxwhirl/smac smac/env/starcraft2/maps/smac_maps.py
# registers them: unit_type_bits 0 and one race per side, so shields are on one side only.
# The units are those the maps' MapScript.galaxy creates (SMAC_Maps/*.SC2Map): 6 Hydralisk_RL
# vs 8 Zealot; 2 Colossus_RL vs 64 Zergling; 6 Zealot_RL vs 24 Zergling.
_SMAC = "oxwhirl/smac smac_maps.py map_param_registry"
_MADS4_MAPS = [
    # a_race Z, b_race P, map_type hydralisks: 6 Hydralisk_RL vs 8 Zealot; enemy shields only
    MapSpec("6h_vs_8z", 6, 8, 150, 0, ("hydralisk",) * 6, ("zealot",) * 8, defined_by=_SMAC),
    # a_race P, b_race Z, map_type colossus: 2 colossi vs 64 zerglings; ally shields only.
    # SMAX has no colossus: real StarCraft II only
    MapSpec("2c_vs_64zg", 2, 64, 400, 0, ("colossus",) * 2, ("zergling",) * 64,
            defined_by=_SMAC, backends=("sc2",)),
    # a_race P, b_race Z, map_type zealots: 6 zealots vs 24 zerglings; ally shields only. Its
    # walled corridor is not SMAX's open square: real StarCraft II only
    MapSpec("corridor", 6, 24, 400, 0, ("zealot",) * 6, ("zergling",) * 24,
            defined_by=_SMAC, backends=("sc2",)),
]

_MAPS = [
    _marines("3m", 3, 3, 60),
    _marines("4m", 4, 4, 75),
    _marines("5m", 5, 5, 90),
    _marines("6m", 6, 6, 100),
    _marines("7m", 7, 7, 110),
    _marines("8m", 8, 8, 120),
    _marines("9m", 9, 9, 120),
    _marines("10m", 10, 10, 120),
    _marines("11m", 11, 11, 150),
    _marines("12m", 12, 12, 150),
    _marines("5m_vs_6m", 5, 6, 70),
    _marines("7m_vs_8m", 7, 8, 90),
    _marines("8m_vs_9m", 8, 9, 120),
    _marines("9m_vs_10m", 9, 10, 140),
    _marines("10m_vs_11m", 10, 11, 150),
    _marines("10m_vs_12m", 10, 12, 160),
    _marines("13m_vs_15m", 13, 15, 160),
    _sz("1s3z", 1, 3, 120),
    _sz("1s4z", 1, 4, 130),
    _sz("1s5z", 1, 5, 140),
    _sz("2s3z", 2, 3, 120),
    _sz("2s4z", 2, 4, 130),
    _sz("2s5z", 2, 5, 150),
    _sz("3s3z", 3, 3, 140),
    _sz("3s4z", 3, 4, 140),
    _sz("3s5z", 3, 5, 150),
    _sz("4s3z", 4, 3, 150),
    _sz("4s4z", 4, 4, 150),
    _sz("4s5z", 4, 5, 160),
    _sz("4s6z", 4, 6, 170),
    *(_v2(race, n, m) for race in SMACV2_RACES for n, m in ((5, 5), (10, 10), (10, 11))),
    *_MADS4_MAPS,
]

MAPS: dict[str, MapSpec] = {m.name: m for m in _MAPS}


def get_map(name: str):
    """Look a task up by name: a SMAC map (3m, 2s3z, ...) or a grid navigation task (cn-2, ...)."""
    from marlbench.envs.cn import CN_TASKS
    from marlbench.envs.rware import RWARE_TASKS

    if name in MAPS:
        return MAPS[name]
    if name in CN_TASKS:
        return CN_TASKS[name]
    if name in RWARE_TASKS:
        return RWARE_TASKS[name]
    known = ", ".join([*MAPS, *CN_TASKS, *RWARE_TASKS])
    raise KeyError(f"unknown map {name!r}; known maps: {known}")
