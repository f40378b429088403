"""StarCraft II's combat rules on SMAX's unit state (the ``sc2`` unit profile), on hand-made
states whose outcomes follow from the unit data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marlbench.envs.maps import get_map
from marlbench.envs.sc2_rules import Sc2Rules
from marlbench.envs.smax import SmaxEnv, _import_smax
from marlbench.envs.units import SC2_PROFILE, SMAX_UNIT_TYPES, rally_point

STEP = 8 / 22.4  # SMAC's step_mul 8 at 22.4 game loops per second


def _rules(allies: list[str], enemies: list[str], profile=SC2_PROFILE):
    """SMAX with the sc2 profile (or ``profile``) for these unit types, and its rules."""
    _import_smax()
    from jaxmarl.environments.smax.smax_env import SMAX, Scenario

    types = jnp.array([SMAX_UNIT_TYPES[u] for u in allies + enemies], dtype=jnp.uint8)
    env = SMAX(scenario=Scenario(types, len(allies), len(enemies), False, False),
               map_width=32, map_height=32, walls_cause_death=False,
               **profile.smax_kwargs())
    _, s = env.reset(jax.random.PRNGKey(0))
    return env, Sc2Rules(env, profile, len(allies), len(enemies)), s


def _place(s, positions, pool=None, cooldown=None):
    n = len(positions)
    return s.replace(unit_positions=jnp.array(positions, dtype=jnp.float32),
                     unit_health=jnp.asarray(pool if pool is not None else s.unit_health,
                                             dtype=jnp.float32),
                     unit_alive=jnp.ones(n, bool),
                     unit_weapon_cooldowns=jnp.asarray(cooldown if cooldown is not None
                                                       else np.zeros(n), dtype=jnp.float32),
                     prev_attack_actions=jnp.zeros(n, jnp.int32))


def _step(rules, s, move, target, seed=0):
    return rules.step(jax.random.PRNGKey(seed), s, jnp.asarray(move, jnp.float32),
                      jnp.asarray(target, jnp.int32), jnp.asarray(rally_point(32.0)))


def test_a_move_covers_speed_times_eight_game_loops():
    env, rules, s = _rules(["marine"], ["marine"])
    s = _place(s, [[10, 10], [28, 22]])
    s1 = _step(rules, s, [[1.0, 0.0]], [-1])
    assert float(s1.unit_positions[0, 0] - 10) == pytest.approx(3.15 * STEP, abs=1e-4)
    # the enemy, nothing in reach, attack-moves toward the agents' spawn (9, 16)
    d0 = np.linalg.norm(np.array([28, 22]) - np.array([9, 16]))
    d1 = np.linalg.norm(np.asarray(s1.unit_positions[1]) - np.array([9, 16]))
    assert d0 - d1 == pytest.approx(3.15 * STEP, abs=1e-3)


def test_units_stay_inside_the_arena_and_masks_know_its_walls():
    env, rules, s = _rules(["marine"], ["marine"])
    s = _place(s, [[10, 7.5], [28, 22]])  # the south wall is at y = 16 - 9 = 7
    s1 = _step(rules, s, [[0.0, -1.0]], [-1])
    assert float(s1.unit_positions[0, 1]) == pytest.approx(7.0)
    calibrated = SmaxEnv(get_map("3m"), 1, units="sc2")
    calibrated.reset(0)
    pos = np.array([[[10, 7.9], [12, 16], [14, 16], [23, 16], [23, 17], [23, 15]]], np.float32)
    calibrated.inject(pos, np.full((1, 6), 45.0), np.zeros((1, 3)), np.zeros(1, int))
    inner = jax.tree.map(lambda x: x[0], calibrated._state.state)
    _, _, avail = calibrated._smac_view(inner, jnp.zeros(3, jnp.int32))
    assert np.asarray(avail)[0, 2:6].tolist() == [1, 0, 1, 1]  # N ok, S refused (7.9 - 1 < 7)


def test_weapon_range_is_edge_to_edge_and_an_attack_order_walks_into_it():
    env, rules, s = _rules(["marine"], ["marine"])
    reach = 5 + 2 * 0.375
    s = _place(s, [[10, 16], [10 + reach - 0.01, 16]], cooldown=[0.0, 9.0])
    s1 = _step(rules, s, [[0.0, 0.0]], [1])
    assert float(s1.unit_health[1]) == pytest.approx(39.0)  # one shot of 6
    assert float(s1.unit_positions[0, 0]) == pytest.approx(10.0)  # attacking: it stands
    far = _place(s, [[10, 16], [10 + 5.95, 16]], cooldown=[0.0, 9.0])  # SMAC lets it attack
    s2 = _step(rules, far, [[0.0, 0.0]], [1])
    assert float(s2.unit_positions[0, 0]) == pytest.approx(10 + 5.95 - reach, abs=0.15)
    assert float(s2.unit_health[1]) == pytest.approx(39.0)  # walked in, then fired


@pytest.mark.parametrize("attacker,target,pool_after", [
    ("zealot", "marine", 45 - 2 * 8),           # two hits of 8, no armour
    ("marine", "marauder", 125 - (6 - 1)),      # armour 1
    ("marauder", "marauder", 125 - (10 + 10 - 1)),  # +10 vs armoured, armour 1
    ("stalker", "stalker", 160 - (13 + 5)),     # +5 vs armoured, all on shields (armour 0)
    ("stalker", "zealot", 150 - 13),            # zealot is light: no bonus
])
def test_damage_follows_armour_bonuses_and_shields(attacker, target, pool_after):
    env, rules, s = _rules([attacker], [target])
    s = _place(s, [[10, 16], [10.6 + (0 if attacker in ("zealot",) else 1), 16]],
               cooldown=[0.0, 99.0])
    s1 = _step(rules, s, [[0.0, 0.0]], [1])
    assert float(s1.unit_health[1]) == pytest.approx(pool_after)


def test_armour_applies_to_hit_points_not_shields():
    env, rules, s = _rules(["stalker"], ["stalker"])
    pool = [160.0, 80.0 + 10.0]  # 10 shield left: 10 on the shield, 8 on hit points less armour
    s = _place(s, [[10, 16], [12, 16]], pool=pool, cooldown=[0.0, 99.0])
    s1 = _step(rules, s, [[0.0, 0.0]], [1])
    assert float(s1.unit_health[1]) == pytest.approx(90 - 10 - (8 - 1 * 8 / 18), abs=1e-4)


def test_one_attack_per_cooldown():
    env, rules, s = _rules(["marine"], ["marine"])
    s = _place(s, [[10, 16], [12, 16]], pool=[45.0, 1e5], cooldown=[0.0, 1e3])
    shots = 0
    for k in range(40):
        h0 = float(s.unit_health[1])
        s = _step(rules, s, [[0.0, 0.0]], [1], seed=k)
        shots += round((h0 - float(s.unit_health[1])) / 6)
    loops = 40 * 8  # a shot every 0.61 s (13.7 loops) plus SMAX's jitter of -1 to +2 loops
    assert loops / 15.7 <= shots <= loops / 13.6 + 1


def test_agents_are_passive_and_the_enemy_spreads_its_shots():
    env, rules, s = _rules(["marine", "marine"], ["marine"])
    s0 = _place(s, [[10, 15], [10, 17], [14, 16]], pool=[1e4, 1e4, 45.0],
                cooldown=[0.0, 0.0, 0.0])
    s1 = _step(rules, s0, [[0.0, 0.0], [0.0, 0.0]], [-1, -1])  # both agents stop
    assert float(s1.unit_health[2]) == 45.0  # stopped agents do not acquire targets
    hits = np.zeros(2)
    for k in range(60):
        s1 = _step(rules, s0, [[0.0, 0.0], [0.0, 0.0]], [-1, -1], seed=k)
        hits += 1e4 - np.asarray(s1.unit_health[:2])
    share = hits / hits.sum()
    assert 0.3 < share[0] < 0.7  # two agents in reach: shots drawn between them


@pytest.mark.parametrize("targeting", ["closest", "sticky"])
def test_an_enemy_that_keeps_its_target(targeting):
    """``enemy_targeting`` closest: every shot at the closer agent; sticky: a target drawn
    at random once, then kept while it lives and stays in reach."""
    import dataclasses

    prof = dataclasses.replace(SC2_PROFILE, enemy_targeting=targeting)
    env, rules, s = _rules(["marine", "marine"], ["marine"], prof)
    s0 = _place(s, [[10, 15.5], [10, 17], [14, 16]], pool=[1e4, 1e4, 45.0],
                cooldown=[0.0, 0.0, 0.0])  # agent 0 is 0.15 closer to the enemy
    firsts = []
    for k in range(12):
        s1 = s0
        for j in range(5):  # five steps (40 game loops): three shots
            s1 = _step(rules, s1, [[0.0, 0.0], [0.0, 0.0]], [-1, -1], seed=100 * k + j)
        hits = 1e4 - np.asarray(s1.unit_health[:2])
        assert hits.sum() >= 18 and (hits == 0).any()  # all shots on one agent
        firsts.append(int(np.argmax(hits)))
    if targeting == "closest":
        assert set(firsts) == {0}
    else:
        assert set(firsts) == {0, 1}  # drawn at random, then kept


def test_unknown_enemy_rules_are_refused():
    import dataclasses

    with pytest.raises(ValueError, match="enemy_targeting"):
        dataclasses.replace(SC2_PROFILE, enemy_targeting="focus")
    with pytest.raises(ValueError, match="enemy_acquire"):
        dataclasses.replace(SC2_PROFILE, enemy_acquire="map")


def test_the_calibrated_env_speaks_smac_at_known_positions():
    env = SmaxEnv(get_map("3m"), 2, units="sc2")
    env.reset(0)
    pos = np.array([[10, 16], [14, 16], [25, 16], [15.5, 16], [12, 16], [20, 20]], np.float32)
    pool = np.array([45, 45, 45, 22.5, 45, 0], np.float32)
    env.inject(np.stack([pos, pos]), np.stack([pool, pool]), np.array([[4 / 22.4, 0, 0]] * 2),
               np.zeros(2, int))
    inner = jax.tree.map(lambda x: x[0], env._state.state)
    obs, state, avail = (np.asarray(x) for x in env._smac_view(inner, jnp.zeros(3, jnp.int32)))
    a0 = obs[0]
    e0 = a0[4:9]
    np.testing.assert_allclose(e0, [1, 5.5 / 9, 5.5 / 9, 0, 0.5], atol=1e-6)  # shoot range 6
    np.testing.assert_array_equal(avail[0], [0, 1, 1, 1, 1, 1, 1, 1, 0])
    assert state[1] == pytest.approx(4 / 15)  # cooldown in game loops over SMAC's 15


def test_a_suite_on_the_calibrated_units_runs_and_says_so(tmp_path):
    """Through the real pipeline: the dataset's manifest and every record name the profile."""
    import json

    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store
    from marlbench.suite import Suite

    suite = Suite.model_validate({
        "name": "sc2units", "units": "sc2", "task_sets": ["toy"], "qualities": ["scripted"],
        "seeds": [1], "algorithms": [{"name": "bc_t"}],
        "data": {"episodes": 16, "last_episodes": 16},
        "training": {"updates": 4, "batch_episodes": 4},
        "evaluation": {"episodes": 4, "interval": None}})
    plan = make_plan(suite)
    store = Store(tmp_path / "results", tmp_path / "data")
    assert execute(plan, store, workers=0).ok
    (ds,) = plan.of_kind("dataset")
    manifest = json.loads((store.job_dir(ds) / "manifest.json").read_text())
    assert manifest["units"] == "sc2" and manifest["backend"] == "smax"
    records = [r for j in plan.of_kind("eval")
               for r in json.loads((store.job_dir(j) / "records.json").read_text())]
    assert {r["units"] for r in records} == {"sc2"} and len(records) == 3
