"""The fidelity yardstick: hand-made recordings with known one-step answers, then the real
StarCraft II recording (ODIS 3m medium) against both unit profiles."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from marlbench import fidelity as F
from marlbench.cli.main import app
from marlbench.data.format import EpisodeArrays, read_part
from marlbench.envs.maps import get_map
from marlbench.envs.units import SC2_PROFILE, SMAX_PROFILE

SPEC = get_map("3m")
SIZE = 28.0  # SMAC's playable width of 3m, as the recording shows it
MOVE = 3.15 * 8 / 22.4  # a marine's step in StarCraft II: 1.125


def _recording(allies: np.ndarray, enemies: np.ndarray, actions: np.ndarray) -> EpisodeArrays:
    """One 3m episode in the ODIS layout from unit positions relative to the map centre:
    allies / enemies [T+1, 3, 2]; every unit at full health, weapons cool."""
    t1 = allies.shape[0]
    state = np.zeros((1, t1, 48), np.float32)
    obs = np.zeros((1, t1, 3, 30), np.float32)
    for t in range(t1):
        for i in range(3):
            state[0, t, 4 * i:4 * i + 4] = [1, 0, *(allies[t, i] / SIZE)]
            state[0, t, 12 + 3 * i:15 + 3 * i] = [1, *(enemies[t, i] / SIZE)]
            for k, j in enumerate([j for j in range(3) if j != i]):  # allies seen by agent i
                d = allies[t, j] - allies[t, i]
                obs[0, t, i, 19 + 5 * k:24 + 5 * k] = [1, np.linalg.norm(d) / 9, *(d / 9), 1]
    act = np.zeros((1, t1, 3), np.int64)
    act[0, :-1] = actions
    filled = np.ones((1, t1), np.int64)
    return EpisodeArrays(obs=obs, state=state, actions=act,
                         avail_actions=np.ones((1, t1, 3, 9), np.int32),
                         reward=np.zeros((1, t1), np.float32),
                         terminated=np.eye(1, t1, t1 - 2, dtype=np.uint8), filled=filled)


@pytest.fixture(scope="module")
def marching():
    """Allies walk east and the enemy west toward the agents' spawn, far apart: StarCraft II
    moves a marine 1.125 per step."""
    allies = np.array([[-7.0, -2.0], [-7.0, 0.0], [-7.0, 2.0]])
    enemies = np.array([[5.0, 0.0], [6.0, 0.0], [7.0, 0.0]])
    steps = np.arange(3)[:, None, None]
    a = allies[None] + steps * np.array([MOVE, 0.0])
    e = enemies[None] - steps * np.array([MOVE, 0.0])
    eps = _recording(a, e, np.full((2, 3), 4))  # move east
    return eps, F.decode(eps, SPEC, F.playable_size(eps, SPEC))


def test_decoding_recovers_the_playable_size_and_positions(marching):
    eps, dec = marching
    assert F.playable_size(eps, SPEC) == pytest.approx(SIZE, rel=1e-5)
    np.testing.assert_allclose(dec.positions[0, 1, 0], [-7 + MOVE, -2], atol=1e-5)
    assert dec.alive.all() and (dec.health == 1).all()
    assert F.transitions(eps)[0].size == 2


def test_known_one_step_answers(marching):
    eps, dec = marching
    still = F.stand_still(SPEC, eps, dec)
    assert still["ally_position"] == pytest.approx(MOVE, abs=1e-5)
    sc2 = F.one_step(SPEC, eps, dec, SC2_PROFILE)
    assert sc2["ally_position"] == pytest.approx(0.0, abs=1e-4)
    assert sc2["enemy_position"] == pytest.approx(0.0, abs=1e-4)
    smax = F.one_step(SPEC, eps, dec, SMAX_PROFILE)  # SMAX: 3.15 x 0.5 s = 1.575 a step
    assert smax["ally_position"] == pytest.approx(1.575 - MOVE, abs=1e-4)
    for r in (sc2, smax):
        assert r["ally_health"] == r["enemy_health"] == r["deaths"] == r["reward"] == 0.0
    assert F.recorded_episodes(SPEC, eps, dec)["win_rate"] == 0.0


@pytest.fixture(scope="module")
def odis(request):
    from conftest import ODIS_3M

    if not ODIS_3M.exists():
        pytest.skip(f"ODIS sample data not found at {ODIS_3M}")
    eps = read_part(ODIS_3M / "part_0.h5")
    return eps, F.decode(eps, SPEC, F.playable_size(eps, SPEC))


def test_on_real_starcraft_the_calibrated_profile_halves_the_errors(odis):
    eps, dec = odis
    sub = eps.select(slice(0, 300))
    dsub = F.decode(sub, SPEC, SIZE)
    smax = F.one_step(SPEC, sub, dsub, SMAX_PROFILE)
    sc2 = F.one_step(SPEC, sub, dsub, SC2_PROFILE)
    for f in ("ally_position", "enemy_position", "enemy_health", "reward"):
        assert sc2[f] <= smax[f] / 2, (f, sc2[f], smax[f])
    assert sc2["ally_health"] < smax["ally_health"] and sc2["deaths"] < smax["deaths"]
    rec = F.recorded_episodes(SPEC, eps, dec)
    assert rec["win_rate"] == pytest.approx(0.5415) and rec["episodes"] == 2000
    assert rec["mean_return"] == pytest.approx(14.004, abs=1e-3)


def test_cli_writes_the_report_and_refuses_bad_input(odis, tmp_path):
    from conftest import ODIS_3M

    runner = CliRunner()
    out = tmp_path / "fid"
    res = runner.invoke(app, ["env", "fidelity", "3m", "--data", str(ODIS_3M), "--updates",
                              "0", "--units", "sc2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "3m.json").read_text())
    assert set(report["one_step"]) == {"stand still", "sc2"}
    assert set(report["seed_spread"]) == set(report["score"]) == {"sc2"}
    assert report["transitions"] == int((eps_len := read_part(ODIS_3M / "part_0.h5")
                                         .lengths - 1).sum()) and eps_len.min() >= 1
    assert (out / "3m.png").stat().st_size > 10_000
    for args, msg in [(["--data", str(tmp_path / "nope")], "does not exist"),
                      (["--data", str(ODIS_3M), "--units", "sc3"], "unknown unit profile"),
                      (["--data", str(tmp_path)], "holds no part_*.h5")]:
        res = runner.invoke(app, ["env", "fidelity", "3m", *args, "--out", str(out)])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["env", "fidelity", "5m", "--data", str(ODIS_3M), "--out",
                              str(out)])
    assert res.exit_code == 2 and "does not fit task 5m" in res.output


def test_calibrated_views_equal_smacs_on_every_recorded_state(odis):
    """Put each recorded StarCraft II state into the sc2-profile simulator: its observations
    and action masks are the ones SMAC recorded (arena walls, shoot range 6, sight 9)."""
    import jax
    import jax.numpy as jnp

    from marlbench.envs.smax import SmaxEnv

    eps, dec = odis
    env = SmaxEnv(SPEC, 1, units="sc2")
    env.reset(0)
    view = jax.jit(env._smac_view)
    tmpl = jax.tree.map(lambda x: x[0], env._state.state)
    worst_obs, masks_off, checked = 0.0, 0, 0
    for e in range(60):
        for t in range(int(eps.lengths[e]) - 1):
            pool = dec.health[e, t] * 45.0
            cd = np.r_[dec.cooldown_loops[e, t, :3] / 22.4, np.zeros(3)]
            inner = tmpl.replace(
                unit_positions=jnp.asarray(dec.positions[e, t] + 16, jnp.float32),
                unit_health=jnp.asarray(pool, jnp.float32), unit_alive=jnp.asarray(pool > 0),
                unit_weapon_cooldowns=jnp.asarray(cd, jnp.float32))
            last = eps.actions[e, t - 1] if t else np.zeros(3, np.int64)
            obs, _, avail = view(inner, jnp.asarray(last, jnp.int32))
            worst_obs = max(worst_obs, float(np.abs(np.asarray(obs) - eps.obs[e, t]).max()))
            masks_off += int((np.asarray(avail) != eps.avail_actions[e, t]).sum())
            checked += 1
    assert checked > 1000
    assert worst_obs < 1e-4 and masks_off == 0


def test_seed_spread_is_what_chance_alone_gives(marching, odis):
    eps, dec = marching  # nothing random happens: two seeds agree exactly
    for prof in (SC2_PROFILE, SMAX_PROFILE):
        assert all(v == 0.0 for v in F.seed_spread(SPEC, eps, dec, prof).values())
    eps, dec = odis
    sub = eps.select(slice(0, 300))
    dsub = F.decode(sub, SPEC, SIZE)
    same = F.seed_spread(SPEC, sub, dsub, SC2_PROFILE, seeds=(3, 3))
    assert all(v == 0.0 for v in same.values())  # the same seed draws the same
    spread = F.seed_spread(SPEC, sub, dsub, SC2_PROFILE)
    error = F.one_step(SPEC, sub, dsub, SC2_PROFILE)
    # the enemy's random targets move the agents' health; chance stays below the error
    assert 0.0 < spread["ally_health"] < error["ally_health"]
    assert spread["ally_position"] < error["ally_position"]
    score = F.proper_score(error, spread)  # the energy score: error - spread / 2
    assert score["ally_health"] == pytest.approx(error["ally_health"] - spread["ally_health"] / 2)
    assert F.proper_score({"a": 1.0, "b": 0.5}, {"a": 0.4}) == {"a": 0.8}
