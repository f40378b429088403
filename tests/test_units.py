"""Unit profiles: SMAX's equals the installed SMAX's defaults; every StarCraft II value equals
the source it cites (SMAC's map files, the SC2 API unit data, Liquipedia, SMAC's code)."""

import inspect

import numpy as np
import pytest

from marlbench.envs import units as U

# (unit, field) -> (value, source). Faster game seconds; speeds per faster second.
# [MAP]  oxwhirl/smac smac/env/starcraft2/maps/SMAC_Maps/*.SC2Map, UnitData.xml of the agents'
#        *_RL units (speeds there in normal game seconds: x 1.4 for faster)
# [API]  BurnySc2/sc2-techtree data/data.json (SC2 API UnitTypeData, patch 5.0.3; normal s)
# [LP]   Liquipedia, Unit Statistics (Legacy of the Void), faster values
CITED = {
    ("marine", "hit_points"): (45, "[MAP] 3m Marine_RL LifeMax 45"),
    ("marine", "armour"): (0, "[API] armor 0.0"),
    ("marine", "damage"): (6, "[API] damage_per_hit 6.0, attacks 1"),
    ("marine", "cooldown"): (0.61, "[LP] Marine cooldown .61 (API 0.8608 normal / 1.4)"),
    ("marine", "weapon_range"): (5, "[API] range 5.0"),
    ("marine", "speed"): (3.15, "[MAP] Speed 2.25 normal = 3.15 faster; [LP] 3.15"),
    ("marine", "radius"): (0.375, "[MAP] Radius 0.375"),
    ("marine", "sight"): (9, "[MAP] Sight 9"),
    ("marauder", "hit_points"): (125, "[MAP] MMM Marauder_RL LifeMax 125"),
    ("marauder", "armour"): (1, "[MAP] LifeArmor 1"),
    ("marauder", "damage"): (10, "[API] damage_per_hit 10.0"),
    ("marauder", "bonus_vs_armoured"): (10, "[API] bonuses Armored +10"),
    ("marauder", "cooldown"): (1.07, "[LP] 1.07 (API 1.5 normal)"),
    ("marauder", "weapon_range"): (6, "[API] range 6.0"),
    ("marauder", "speed"): (3.15, "[MAP] Speed 2.25 normal"),
    ("marauder", "radius"): (0.5625, "[MAP] Radius 0.5625"),
    ("marauder", "sight"): (10, "[MAP] Sight 10"),
    ("stalker", "hit_points"): (80, "[MAP] 2s3z Stalker_RL LifeMax 80"),
    ("stalker", "shields"): (80, "[MAP] ShieldsMax 80; SMAC unit_max_shield 80"),
    ("stalker", "armour"): (1, "[MAP] LifeArmor 1"),
    ("stalker", "damage"): (13, "[API] damage_per_hit 13.0"),
    ("stalker", "bonus_vs_armoured"): (5, "[API] bonuses Armored +5"),
    ("stalker", "cooldown"): (1.34, "[LP] 1.34 (API 1.8701 normal)"),
    ("stalker", "weapon_range"): (6, "[API] range 6.0"),
    ("stalker", "speed"): (4.13, "[MAP] Speed 2.9531 normal; [LP] 4.13"),
    ("stalker", "radius"): (0.625, "[MAP] Radius 0.625"),
    ("stalker", "sight"): (10, "[MAP] Sight 10"),
    ("zealot", "hit_points"): (100, "[MAP] Zealot_RL LifeMax 100"),
    ("zealot", "shields"): (50, "[MAP] ShieldsMax 50; SMAC unit_max_shield 50"),
    ("zealot", "armour"): (1, "[MAP] LifeArmor 1"),
    ("zealot", "damage"): (8, "[API] damage_per_hit 8.0"),
    ("zealot", "hits"): (2, "[API] attacks 2"),
    ("zealot", "cooldown"): (0.86, "[LP] 0.86 (API 1.2 normal)"),
    ("zealot", "weapon_range"): (0.1, "[API] range 0.1001 (melee)"),
    ("zealot", "speed"): (3.15, "[MAP] Speed 2.25 normal (no Charge)"),
    ("zealot", "radius"): (0.5, "[API] radius 0.5"),
    ("zealot", "sight"): (9, "[MAP] Sight 9"),
    ("zergling", "hit_points"): (35, "[MAP] bane_vs_bane Zergling_RL LifeMax 35"),
    ("zergling", "damage"): (5, "[API] damage_per_hit 5.0"),
    ("zergling", "cooldown"): (0.497, "[LP] 0.497 (API 0.696 normal)"),
    ("zergling", "weapon_range"): (0.1, "[API] range 0.1001 (melee)"),
    ("zergling", "speed"): (4.13, "[MAP] Speed 2.9531 normal; [LP] 4.13"),
    ("zergling", "radius"): (0.375, "[MAP] Radius 0.375"),
    ("zergling", "sight"): (8, "[MAP] Sight 8"),
    ("hydralisk", "hit_points"): (80, "[MAP] 6h_vs_8z Hydralisk_RL LifeMax 80 (stock 90)"),
    ("hydralisk", "shields"): (0, "[API] no max_shield (Zerg); SMAC shield_bits_ally 0"),
    ("hydralisk", "armour"): (0, "[API] armor 0.0; [MAP] no LifeArmor override"),
    ("hydralisk", "damage"): (12, "[API] damage_per_hit 12.0"),
    ("hydralisk", "hits"): (1, "[API] attacks 1"),
    ("hydralisk", "bonus_vs_armoured"): (0, "[API] bonuses [] (NeedleSpines)"),
    ("hydralisk", "armoured"): (False, "[MAP] Attributes Light, Biological; [API] same"),
    ("hydralisk", "cooldown"): (0.59, "[API] 0.825 normal / 1.4 (patch 5.0.3)"),
    ("hydralisk", "weapon_range"): (5, "[API] range 5.0"),
    ("hydralisk", "speed"): (3.15, "[MAP] Speed 2.25 normal"),
    ("hydralisk", "radius"): (0.625, "[MAP] Radius 0.625"),
    ("hydralisk", "sight"): (9, "[MAP] Sight 9"),
}


@pytest.mark.parametrize("key", sorted(CITED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_each_sc2_value_equals_its_source(key):
    unit, field = key
    value, _source = CITED[key]
    assert getattr(U.SC2_PROFILE.units[unit], field) == pytest.approx(value, abs=0.006)


def test_every_hydralisk_value_is_cited():
    # 6h_vs_8z's agents: each field of the sc2 profile's hydralisk has a source above
    fields = set(U.UnitStats.__dataclass_fields__)
    assert {f for u, f in CITED if u == "hydralisk"} == fields
    hydra = U.SC2_PROFILE.units["hydralisk"]
    assert hydra.armoured is False and hydra.hits == 1  # exact, not approximately


def test_speeds_are_the_map_files_normal_speeds_at_faster():
    normal = {"marine": 2.25, "marauder": 2.25, "stalker": 2.9531, "zealot": 2.25,
              "zergling": 2.9531, "hydralisk": 2.25}  # [MAP] <Speed value=.../>
    for unit, v in normal.items():
        assert U.SC2_PROFILE.units[unit].speed == pytest.approx(1.4 * v, abs=0.005)


def test_time_is_smac_step_mul_at_faster_speed():
    # s2client-proto: "faster" game speed, 22.4 game loops per second; SMAC step_mul 8
    assert U.SC2_PROFILE.time_per_loop == pytest.approx(1 / 22.4)
    assert U.SC2_PROFILE.loops_per_step == 8
    assert U.SMAC_SHOOT_RANGE == 6 and U.SMAC_SIGHT_RANGE == 9
    assert U.SMAC_MAX_COOLDOWN_LOOPS == {"marine": 15, "marauder": 25, "stalker": 35,
                                         "zealot": 22, "zergling": 11, "hydralisk": 10}
    assert U.AGENT_SPAWN == (9.0, 16.0)  # 3m Objects: Team 1 at 9,16


def test_smax_profile_is_the_installed_smax_defaults():
    from marlbench.envs.smax import _import_smax

    _import_smax()
    from jaxmarl.environments.smax.smax_env import SMAX

    params = inspect.signature(SMAX.__init__).parameters
    names = params["unit_type_names"].default
    assert list(names) == list(U.SMAX_UNIT_TYPES)
    prof = U.SMAX_PROFILE
    pool = np.add(prof.column("hit_points"), prof.column("shields"))
    for arg, got in [("unit_type_velocities", prof.column("speed")),
                     ("unit_type_attacks", prof.column("damage")),
                     ("unit_type_attack_ranges", prof.column("weapon_range")),
                     ("unit_type_sight_ranges", prof.column("sight")),
                     ("unit_type_radiuses", prof.column("radius")),
                     ("unit_type_health", pool),
                     ("unit_type_weapon_cooldowns", prof.column("cooldown"))]:
        np.testing.assert_allclose(got, np.asarray(params[arg].default), rtol=1e-6, err_msg=arg)
    assert prof.time_per_loop == params["time_per_step"].default
    assert prof.loops_per_step == params["world_steps_per_env_step"].default
    assert U.smax_kwargs(prof) == {}  # SMAX's own: built with its defaults, untouched


def test_start_positions_reproduce_the_recorded_3m_start():
    allies, enemies = U.start_positions(3, 3, 32.0)
    # ODIS 3m, every episode: agent 0 at (-7, -0.69), agent 1 at (-7, 0), agent 2 at
    # (-6.31, 0) from the centre, in this order (an agent sees its allies in unit order)
    rec = np.array([[-7, -0.6875], [-7, 0], [-6.3125, 0]])
    np.testing.assert_allclose(allies - 16.0, rec, atol=1e-5)
    # the enemies, shuffled every episode: (6.86, 0), (6.86, -0.69), (7.55, 0)
    rec_e = np.array([[6.8625, -0.6875], [6.8625, 0], [7.55, 0]])
    got = np.array(sorted(map(tuple, enemies - 16.0)))
    np.testing.assert_allclose(got, rec_e, atol=1e-5)
    gap = enemies.mean(0)[0] - allies.mean(0)[0]
    assert gap == pytest.approx(13.86, abs=0.05)  # recorded centroid distance
    assert U.rally_point(32.0) == (9.0, 16.0)


def test_start_positions_equal_the_real_recording():
    from conftest import ODIS_3M

    from marlbench import fidelity as fid
    from marlbench.envs.maps import get_map

    if not ODIS_3M.exists():
        pytest.skip(f"ODIS sample data not found at {ODIS_3M}")
    spec = get_map("3m")
    eps = fid.load_recording(ODIS_3M, spec)
    dec = fid.decode(eps, spec, fid.playable_size(eps, spec))
    allies, enemies = U.start_positions(3, 3, 32.0)
    # every episode starts there (a few dozen of 2000 with agent 2 up to 0.13 lower)
    first = dec.positions[:, 0]
    np.testing.assert_allclose(np.median(first[:, :3], axis=0), allies - 16.0, atol=0.01)
    assert np.abs(first[:, :3] - (allies - 16.0)).max() < 0.15
    order = np.lexsort((first[:, 3:, 1], first[:, 3:, 0]), axis=-1)  # by x, then y
    enemy_sorted = np.take_along_axis(first[:, 3:], order[..., None], axis=1)
    e0 = enemies - 16.0
    e0 = e0[np.lexsort((e0[:, 1], e0[:, 0]))]
    np.testing.assert_allclose(np.median(enemy_sorted, axis=0), e0, atol=0.01)
    assert np.abs(enemy_sorted - e0).max() < 0.15


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown unit profile 'sc3'"):
        U.get_profile("sc3")
