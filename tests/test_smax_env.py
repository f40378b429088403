"""The embedded backend speaks SMAC: features at known positions, masks, reward, flags."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marlbench.data.behaviour import FocusFirePolicy
from marlbench.envs import make_env
from marlbench.rollout import rollout

UNITS = ["smax", "sc2"]  # both unit profiles keep SMAC's layout, masks and reward


@pytest.fixture(scope="module")
def env3m():
    return make_env("3m", 64)


@pytest.fixture(scope="module", params=UNITS)
def any3m(request):
    return make_env("3m", 64, units=request.param)


def _placed_state(env, positions, alive, health):
    _, s = env._env.reset(jax.random.PRNGKey(0))
    inner = s.state.replace(
        unit_positions=jnp.array(positions, dtype=jnp.float32),
        unit_alive=jnp.array(alive),
        unit_health=jnp.array(health, dtype=jnp.float32),
        unit_weapon_cooldowns=jnp.zeros(6),
    )
    return inner


def test_features_and_masks_at_known_positions(env3m):
    # allies 0-2, enemies 3-5; marine sight 9, shooting range 5 (SMAX), health 45
    positions = [[10, 16], [14, 16], [25, 16], [13, 20], [12, 16], [20, 20]]
    alive = [True, True, True, True, True, False]
    health = [45, 45, 45, 22.5, 45, 0]
    inner = _placed_state(env3m, positions, alive, health)
    obs, state, avail = env3m._smac_view(inner, jnp.zeros(3, dtype=jnp.int32))
    obs, state, avail = np.asarray(obs), np.asarray(state), np.asarray(avail)
    a0 = obs[0]
    assert a0.shape == (30,)
    np.testing.assert_allclose(a0[:4], [1, 1, 1, 1])  # can move N, S, E, W
    e0, e1, e2 = a0[4:9], a0[9:14], a0[14:19]
    np.testing.assert_allclose(e0, [0, 5 / 9, 3 / 9, 4 / 9, 0.5], atol=1e-6)  # dist 5: not < 5
    np.testing.assert_allclose(e1, [1, 2 / 9, 2 / 9, 0, 1.0], atol=1e-6)  # in range: shootable
    np.testing.assert_allclose(e2, 0)  # dead enemy: zeros
    al1, al2 = a0[19:24], a0[24:29]
    np.testing.assert_allclose(al1, [1, 4 / 9, 4 / 9, 0, 1.0], atol=1e-6)
    np.testing.assert_allclose(al2, 0)  # 15 away: out of sight
    assert a0[29] == pytest.approx(1.0)  # own health
    # SMAC masks: no-op only for dead agents; stop; moves; attack j if shootable
    np.testing.assert_array_equal(avail[0], [0, 1, 1, 1, 1, 1, 0, 1, 0])
    # global state: ally rows [health, cooldown, (x-16)/32, (y-16)/32], enemy rows [health, x, y]
    np.testing.assert_allclose(state[:4], [1, 0, (10 - 16) / 32, 0], atol=1e-6)
    np.testing.assert_allclose(state[12:15], [0.5, (13 - 16) / 32, 4 / 32], atol=1e-6)
    np.testing.assert_allclose(state[18:21], 0)  # dead enemy row
    assert state.shape == (48,)


def test_dead_agent_and_map_edge(env3m):
    positions = [[0.5, 16], [14, 16], [25, 16], [13, 20], [12, 16], [20, 20]]
    inner = _placed_state(env3m, positions, [True, False, True, True, True, True],
                          [45, 0, 45, 45, 45, 45])
    obs, _, avail = env3m._smac_view(inner, jnp.zeros(3, dtype=jnp.int32))
    obs, avail = np.asarray(obs), np.asarray(avail)
    np.testing.assert_array_equal(obs[1], 0)  # dead agent sees nothing
    np.testing.assert_array_equal(avail[1], [1, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(avail[0][:6], [0, 1, 1, 1, 1, 0])  # cannot move west off map
    assert obs[0][3] == 0


def test_shapes_and_determinism(any3m):
    a, b = any3m.reset(7), any3m.reset(7)
    np.testing.assert_array_equal(a.obs, b.obs)
    assert a.obs.shape == (64, 3, 30) and a.state.shape == (64, 48)
    assert a.avail_actions.shape == (64, 3, 9)
    act = (np.random.default_rng(0).random(a.avail_actions.shape) * a.avail_actions).argmax(-1)
    first = any3m.step(act).obs  # after reset(7)
    any3m.reset(7)
    np.testing.assert_array_equal(any3m.step(act).obs, first)


def _play(env, policy_fn, seed=3):
    return rollout(env, policy_fn, seed)


def test_random_loses_scripted_wins_and_wins_return_20(any3m):
    rng = np.random.default_rng(0)
    rand = _play(any3m, lambda r: (rng.random(r.avail_actions.shape) * r.avail_actions).argmax(-1))
    assert rand.won.mean() <= 0.05
    pol = FocusFirePolicy(any3m.layout, 0.0, np.random.default_rng(0))
    scripted = _play(any3m, lambda r: pol.act(r.obs, r.avail_actions))
    assert scripted.won.mean() > 0.3
    np.testing.assert_allclose(scripted.returns[scripted.won], 20.0, atol=1e-3)
    assert (scripted.returns[~scripted.won] < 20).all()
    assert (scripted.lengths <= 60).all()


@pytest.mark.parametrize("units", UNITS)
def test_episode_limit_truncates_not_terminates(units):
    env = make_env("3m", 4, units=units)
    env.reset(0)
    far = jnp.array([[2.0, 8], [2, 16], [2, 24], [30, 8], [30, 16], [30, 24]])
    inner = env._state.state.replace(
        step=jnp.full((4,), 59), unit_positions=jnp.broadcast_to(far, (4, 6, 2))
    )
    env._state = env._state.replace(state=inner)
    r = env.step(np.ones((4, 3), dtype=np.int64))  # the 60th step of a 60-step limit
    assert r.truncated.all() and not r.terminated.any() and not r.won.any()
    assert env.all_done
    after = env.step(np.ones((4, 3), dtype=np.int64))  # ended episodes stay frozen
    assert not after.truncated.any() and not after.terminated.any()
    assert (after.reward == 0).all()


def test_protoss_shields_types_and_widths():
    env = make_env("1s3z", 2)  # ally 0 stalker, allies 1-3 zealots; same for enemies
    lay = env.layout
    assert (lay.obs_dim, lay.state_dim, lay.n_actions) == (64, 92, 10)
    positions = [[10, 16], [12, 16], [8, 8], [8, 24], [13, 16], [14, 19], [30, 30], [30, 2]]
    # SMAX pools: stalker 160 = 80 hp + 80 shield; zealot 150 = 100 hp + 50 shield
    health = [160, 150, 150, 150, 120, 60, 150, 150]
    _, s = env._env.reset(jax.random.PRNGKey(0))
    inner = s.state.replace(
        unit_positions=jnp.array(positions, dtype=jnp.float32),
        unit_alive=jnp.ones(8, dtype=bool),
        unit_health=jnp.array(health, dtype=jnp.float32),
        unit_weapon_cooldowns=jnp.zeros(8),
    )
    obs, state, avail = env._smac_view(inner, jnp.zeros(4, dtype=jnp.int32))
    a0 = np.asarray(obs)[0]
    # enemy 0: a stalker 3 away with 120 of 160: hp 80/80, shield 40/80; type one-hot stalker
    np.testing.assert_allclose(a0[4:12], [1, 3 / 10, 3 / 10, 0, 1.0, 0.5, 1, 0], atol=1e-6)
    # enemy 1: a zealot with 60 of 150: hp 60/100, shield 0; type zealot; distance 5 (range 6)
    np.testing.assert_allclose(a0[12:20], [1, 5 / 10, 4 / 10, 3 / 10, 0.6, 0.0, 0, 1], atol=1e-6)
    # own: stalker at full health and shield
    np.testing.assert_allclose(a0[-4:], [1, 1, 1, 0])
    # state: ally row [health, cooldown, x, y, shield, type bits] has width 7
    np.testing.assert_allclose(np.asarray(state)[:7], [1, 0, (10 - 16) / 32, 0, 1, 1, 0])


@pytest.mark.slow
@pytest.mark.parametrize("set_name", ["marine_easy", "marine_hard", "stalker_zealot",
                                      "smacv2_protoss", "smacv2_terran", "smacv2_zerg"])
@pytest.mark.parametrize("units", UNITS)
def test_every_map_of_the_sets_constructs_and_steps(set_name, units):
    from marlbench.envs.tasksets import get_task_set

    for spec in get_task_set(set_name).maps():
        env = make_env(spec.name, 4, units=units)
        r = env.reset(0)
        assert r.obs.shape == (4, spec.n_agents, spec.layout.obs_dim)
        assert r.state.shape == (4, spec.layout.state_dim)
        rng = np.random.default_rng(0)
        for _ in range(3):
            r = env.step((rng.random(r.avail_actions.shape) * r.avail_actions).argmax(-1))
        assert r.avail_actions.shape == (4, spec.n_agents, spec.layout.n_actions)


@pytest.mark.parametrize("units", UNITS)
def test_smacv2_style_unit_mixes_are_drawn_and_mirrored(units):
    env = make_env("zerg_10_vs_11", 64, units=units)
    env.reset(5)
    types = np.asarray(env._state.state.unit_types)  # [B, 21]: 10 allies then 11 enemies
    assert set(np.unique(types)) == {4, 5}  # zergling, hydralisk
    np.testing.assert_array_equal(types[:, :10], types[:, 10:20])  # enemies mirror allies
    assert len({tuple(row) for row in types[:, :10]}) > 10  # mixes differ across episodes
    r = env.reset(5)
    lay = env.layout
    assert lay.enemy_feats == 4 + 3 + 1 and r.obs.shape == (64, 10, lay.obs_dim)
    # one-hot bits in observations follow the drawn types (enemy 0 seen by a live agent)
    enemy0 = r.obs[..., 4:4 + lay.enemy_feats]
    seen = enemy0[..., 1] > 0
    # bits: zergling, hydralisk, baneling (never drawn: SMAX has none)
    expected = np.stack([types[:, 10] == 4, types[:, 10] == 5, types[:, 10] == 99], -1)
    expected = np.repeat(expected.astype(np.float32)[:, None], 10, 1)
    np.testing.assert_array_equal(enemy0[..., 5:8][seen], expected[seen])


@pytest.mark.parametrize("units", UNITS)
def test_6h_vs_8z_runs_to_the_end_with_enemy_shields_only(units):
    # SMAC 6h_vs_8z: Zerg agents, Protoss enemies: shield_bits_ally 0, shield_bits_enemy 1
    env = make_env("6h_vs_8z", 8, units=units)
    lay = env.layout
    assert (lay.obs_dim, lay.state_dim, lay.n_actions) == (78, 140, 14)
    pol = FocusFirePolicy(lay, 0.2, np.random.default_rng(0))
    res = rollout(env, lambda r: pol.act(r.obs, r.avail_actions), 0, record=True)
    assert env.all_done and (res.lengths >= 1).all() and (res.lengths <= 150).all()
    assert not res.crashed.any()
    eps = res.episodes
    filled = eps.filled.astype(bool)  # [B, T+1]
    obs = eps.obs[filled]  # [rows, 6, 78]
    cut = lay.slices()
    enemies = obs[..., cut["enemy"]].reshape(-1, 6, 8, 6)  # shootable, d, x, y, health, shield
    allies = obs[..., cut["ally"]].reshape(-1, 6, 5, 5)  # visible, d, x, y, health
    own = obs[..., cut["own"]]  # health
    seen = enemies[..., 1] > 0
    assert seen.any()
    health, shield = enemies[..., 4][seen], enemies[..., 5][seen]
    assert ((shield >= 0) & (shield <= 1)).all() and (shield > 0).any()
    assert (health[shield > 0] == pytest.approx(1.0))  # shields go first
    assert (enemies[~seen] == 0).all()
    assert ((allies[..., 4] >= 0) & (allies[..., 4] <= 1)).all()
    assert own.shape[-1] == 1 and ((own >= 0) & (own <= 1)).all()
    # state: ally rows [health, cooldown, x, y], enemy rows [health, x, y, shield]
    state = eps.state[filled]
    enemy_rows = state[:, 24:56].reshape(-1, 8, 4)
    np.testing.assert_allclose(eps.state[:, 0, 24:56].reshape(-1, 8, 4)[..., [0, 3]], 1.0)
    assert ((enemy_rows[..., 3] >= 0) & (enemy_rows[..., 3] <= 1)).all()
    assert (state[:, 56:].reshape(-1, 6, 14).sum(-1) <= 1).all()  # last-action one-hots
