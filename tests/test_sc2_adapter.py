"""Contract tests of the StarCraft II adapter on observations recorded from real StarCraft II,
on SMAC-sized fakes of the asymmetric-shield MADS4 maps, plus crash and hang recovery; a live
test runs only where StarCraft II is installed."""

import numpy as np
import pytest
from fake_sc2 import ALLY_SHIELD, ENEMY_SHIELD, SMAC_REGISTRY, recorded, smac_sizes

from marlbench.envs.maps import get_map
from marlbench.envs.sc2 import Sc2Env, sc2_path, smac_map_params
from marlbench.rollout import rollout

# the tests replaying recorded StarCraft II need the public ODIS sample data
needs_samples = pytest.mark.usefixtures("odis_3m")


def _env(factory, batch=2, **kw):
    return Sc2Env(get_map("3m"), batch, factory=f"fake_sc2:{factory}", **kw)


@needs_samples
def test_adapter_passes_sc2_data_through_unchanged():
    env = _env("RecordedSmac")
    try:
        first = env.reset(seed=40)  # slots play recorded episodes 40 and 41
        eps = recorded()
        np.testing.assert_array_equal(first.obs, eps.obs[[40, 41], 0])
        np.testing.assert_array_equal(first.state, eps.state[[40, 41], 0])
        np.testing.assert_array_equal(first.avail_actions, eps.avail_actions[[40, 41], 0])
        res = rollout(env, lambda r: np.ones((2, 3), dtype=np.int64), seed=40, record=True)
        for slot, ep in enumerate((40, 41)):
            n = int(eps.lengths[ep])
            np.testing.assert_array_equal(res.episodes.obs[slot, :n], eps.obs[ep, :n])
            np.testing.assert_array_equal(res.episodes.state[slot, :n], eps.state[ep, :n])
            np.testing.assert_allclose(res.returns[slot], eps.returns[ep], rtol=1e-6)
            assert res.lengths[slot] == n - 1
            assert res.won[slot] == (eps.returns[ep] > 19.9)
        assert not res.crashed.any()
    finally:
        env.close()


@needs_samples
def test_time_out_is_truncation_not_termination():
    eps = recorded()
    timeout = int(np.flatnonzero(eps.lengths == 61)[0])  # reached the 60-step limit
    env = _env("RecordedSmac", batch=1)
    try:
        env.reset(seed=timeout)
        for _ in range(60):
            r = env.step(np.ones((1, 3), dtype=np.int64))
        assert r.truncated[0] and not r.terminated[0] and not r.won[0]
    finally:
        env.close()


@needs_samples
def test_crashed_game_is_restarted_and_reported():
    env = _env("CrashingSmac")
    try:
        res = rollout(env, lambda r: np.ones((2, 3), dtype=np.int64), seed=0)
        assert res.crashed.tolist() == [True, False]
        assert env.restarts == 1
        again = rollout(env, lambda r: np.ones((2, 3), dtype=np.int64), seed=0)
        assert not again.crashed.any()  # the restarted worker plays normally
    finally:
        env.close()


@needs_samples
def test_hung_game_is_killed_after_the_timeout():
    env = _env("HangingSmac", step_timeout=3.0)
    try:
        res = rollout(env, lambda r: np.ones((2, 3), dtype=np.int64), seed=0)
        assert res.crashed.tolist() == [False, True]
        assert env.restarts == 1
    finally:
        env.close()


@needs_samples
def test_evaluation_replays_crashed_episodes(monkeypatch):
    import torch

    from marlbench.evaluate import _ENV_CACHE, evaluate
    from marlbench.learners import get_learner

    monkeypatch.setenv("MARLBENCH_SC2_FACTORY", "fake_sc2:CrashingSmac")
    monkeypatch.setenv("MARLBENCH_SC2_PARALLEL", "2")
    cls = get_learner("bc_t")
    learner = cls({"3m": get_map("3m").layout}, cls.Config(), torch.device("cpu"))
    try:
        stats = evaluate(learner.policy(), "3m", 4, seed=0, backend="sc2")
    finally:
        for key in [k for k in _ENV_CACHE if k[2] == "sc2"]:
            _ENV_CACHE.pop(key).close()
    assert stats["episodes"] == 4 and stats["crashed_episodes"] == 1


def test_odis_patch_maps_get_smac_registry_entries():
    assert smac_map_params(get_map("7m_vs_8m")) == {
        "n_agents": 7, "n_enemies": 8, "limit": 90, "a_race": "T", "b_race": "T",
        "unit_type_bits": 0, "map_type": "marines"}
    assert smac_map_params(get_map("4s6z"))["map_type"] == "stalkers_and_zealots"


def _sc2_available() -> bool:
    try:
        import smac.env  # noqa: F401
    except ImportError:
        return False
    return any((sc2_path() / "Versions").glob("Base*/SC2_x64"))


@pytest.mark.skipif(not _sc2_available(), reason="StarCraft II or oxwhirl SMAC not installed "
                    "(pip install -e '.[starcraft]' and a StarCraft II binary under $SC2PATH)")
def test_live_starcraft2_3m_matches_layout():
    env = Sc2Env(get_map("3m"), 1)
    try:
        r = env.reset(seed=0)
        assert r.obs.shape == (1, 3, 30) and r.state.shape == (1, 48)
        res = rollout(env, lambda x: (x.avail_actions * np.arange(9)).argmax(-1), seed=0)
        assert res.lengths[0] <= 60
    finally:
        env.close()


def test_smacv2_capability_config_matches_the_embedded_task():
    from marlbench.envs.sc2 import smacv2_capability_config

    spec = get_map("terran_10_vs_11")
    cfg = smacv2_capability_config(spec)
    assert cfg["team_gen"]["unit_types"] == ["marine", "marauder", "medivac"]
    assert cfg["team_gen"]["weights"] == [0.5, 0.5, 0.0]
    assert (cfg["n_units"], cfg["n_enemies"], cfg["start_positions"]["n_enemies"]) == (10, 11, 11)
    # SMACv2 protoss 5v5 without own position: 4 + 5·9 + 4·9 + 5 = 90 (the README's 92 minus 2)
    assert get_map("protoss_5_vs_5").layout.obs_dim == 90


@pytest.mark.parametrize("name", sorted(SMAC_REGISTRY))
def test_mads4_maps_get_stock_smac_registry_entries(name):
    assert smac_map_params(get_map(name)) == SMAC_REGISTRY[name]


@pytest.mark.parametrize("name", sorted(SMAC_REGISTRY))
def test_asymmetric_shield_maps_pass_through_at_smac_widths(name):
    spec = get_map(name)
    lay, sizes = spec.layout, smac_sizes(SMAC_REGISTRY[name])
    env = Sc2Env(spec, 2, factory="fake_sc2:SizedSmac")
    try:
        first = env.reset(seed=0)
        n, m = spec.n_agents, spec.n_enemies
        assert first.obs.shape == (2, n, sizes["obs"]) == (2, n, lay.obs_dim)
        assert first.state.shape == (2, sizes["state"]) == (2, lay.state_dim)
        assert first.avail_actions.shape == (2, n, sizes["n_actions"])
        # the layout cuts SMAC's blocks where SMAC puts them: a shield column only on the
        # Protoss side (6h_vs_8z: the zealot enemies; 2c_vs_64zg, corridor: the agents)
        cut = lay.slices()
        enemies = first.obs[..., cut["enemy"]].reshape(2, n, m, lay.enemy_feats)
        allies = first.obs[..., cut["ally"]].reshape(2, n, n - 1, lay.ally_feats)
        own = first.obs[..., cut["own"]]
        assert (lay.enemy_feats, lay.ally_feats, lay.own_feats) == (
            sizes["nf_en"], sizes["nf_al"], sizes["own"])
        np.testing.assert_array_equal(enemies[..., 4], 1.0)  # health
        np.testing.assert_array_equal(allies[..., 4], 1.0)
        if lay.shield_enemy:
            np.testing.assert_array_equal(enemies[..., 5], ENEMY_SHIELD)
        if lay.shield_ally:
            np.testing.assert_array_equal(allies[..., 5], ALLY_SHIELD)
            np.testing.assert_array_equal(own[..., 1], ALLY_SHIELD)
        assert lay.shield_ally + lay.shield_enemy == 1
        rows_a = first.state[:, :n * lay.ally_state_feats].reshape(2, n, -1)
        rows_e = first.state[:, n * lay.ally_state_feats:][:, :m * lay.enemy_state_feats]
        rows_e = rows_e.reshape(2, m, -1)
        assert rows_a.shape[-1] == 4 + lay.shield_ally and rows_e.shape[-1] == 3 + lay.shield_enemy
        if lay.shield_enemy:
            np.testing.assert_array_equal(rows_e[..., 3], ENEMY_SHIELD)
        else:
            np.testing.assert_array_equal(rows_a[..., 4], ALLY_SHIELD)
        res = rollout(env, lambda r: np.ones((2, n), dtype=np.int64), seed=0)
        assert res.won.all() and (res.lengths == 3).all() and not res.crashed.any()
    finally:
        env.close()
