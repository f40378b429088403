"""The warehouse backend against the real rware package: every observation, reward and state
equals what rware's own environment produces from the same seed and actions."""

import numpy as np
import pytest

from marlbench.envs import make_env, task_backends
from marlbench.envs.maps import get_map
from marlbench.envs.rware import RWARE_TASKS, RwareEnv

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("rware")
from rware.warehouse import Action, Direction  # noqa: E402


def _raw(spec, seed: int):
    """rware's own environment, as gymnasium builds it from the package's registration."""
    env = gymnasium.make(spec.env_id, disable_env_checker=True).unwrapped
    obs, _ = env.reset(seed=seed)
    return env, obs


def _raw_state(env) -> np.ndarray:
    agents = [[a.x, a.y, a.dir.value] for a in env.agents]
    shelves = [[s.x, s.y] for s in env.request_queue]
    return np.concatenate([np.ravel(agents), np.ravel(shelves)]).astype(np.float32)


@pytest.mark.parametrize("task,steps", [("rware-tiny-2ag", 500), ("rware-small-6ag", 120)])
def test_every_step_equals_rwares_own(task, steps):
    spec = get_map(task)
    b, seed = 3, 11
    env = RwareEnv(spec, b)
    res = env.reset(seed)
    seeds = np.random.SeedSequence(seed).generate_state(b)
    raws = [_raw(spec, int(s)) for s in seeds]
    for k, (_, obs) in enumerate(raws):
        np.testing.assert_array_equal(res.obs[k], np.stack(obs))
    rng = np.random.default_rng(0)
    # forward and load/unload often enough that robots carry shelves around
    probs = np.array([0.1, 0.4, 0.15, 0.15, 0.2])
    for t in range(steps):
        actions = rng.choice(5, size=(b, spec.n_agents), p=probs)
        res = env.step(actions)
        for k, (raw, _) in enumerate(raws):
            obs, rewards, done, truncated, _ = raw.step(actions[k].tolist())
            np.testing.assert_array_equal(res.obs[k], np.stack(obs), err_msg=f"step {t}")
            np.testing.assert_array_equal(res.state[k], _raw_state(raw))
            assert res.reward[k] == pytest.approx(sum(rewards))
            # rware ends the episode at 500 steps as a termination: a time-out here
            assert not res.terminated[k] and res.truncated[k] == done == (t == 499)
            assert not truncated
    assert res.avail_actions.shape == (b, spec.n_agents, 5) and (res.avail_actions == 1).all()
    assert res.obs.shape == (b, spec.n_agents, 71)
    assert res.state.shape == (b, spec.layout.state_dim) == (b, 3 * spec.n_agents
                                                             + 4 * spec.n_agents)
    if steps == 500:
        assert env.all_done
        after = env.step(np.zeros((b, spec.n_agents), np.int64))
        assert (after.reward == 0).all() and not after.truncated.any()  # finished stay put


def _place(env, b: int, agent: int, x: int, y: int, direction, shelf=None):
    """Put robot ``agent`` of episode b at (x, y) facing ``direction``, carrying ``shelf``."""
    w = env.envs[b]
    a = w.agents[agent]
    a.x, a.y, a.dir = x, y, direction
    a.carrying_shelf = shelf
    if shelf is not None:
        shelf.x, shelf.y = x, y
    w._recalc_grid()
    env._read(b)


def test_delivery_and_alberdices_shaped_reward():
    """Known answers: a requested shelf under agent 0 (+0.003, +0.001 in view), carried
    (+0.006, +0.001), delivered to a goal (+1 to the deliverer)."""
    spec = get_map("rware-tiny-2ag")
    for reward in ("rware", "alberdice"):
        env = RwareEnv(spec, 1, reward=reward)
        env.reset(5)
        w = env.envs[0]
        shelf = w.request_queue[0]
        other = w.agents[1]
        _place(env, 0, 1, 0, 0, other.dir)  # agent 1 out of the way, in a corner
        _place(env, 0, 0, shelf.x, shelf.y, Direction.DOWN)
        r = env.step(np.array([[Action.NOOP.value, Action.NOOP.value]]))
        assert r.reward[0] == pytest.approx(0.0 if reward == "rware" else 0.004)
        r = env.step(np.array([[Action.TOGGLE_LOAD.value, Action.NOOP.value]]))
        assert r.obs[0, 0, 2] == 1.0  # carrying
        assert r.reward[0] == pytest.approx(0.0 if reward == "rware" else 0.007)
        gx, gy = w.goals[0]
        _place(env, 0, 0, gx, gy - 1, Direction.DOWN, shelf)
        r = env.step(np.array([[Action.FORWARD.value, Action.NOOP.value]]))
        assert (w.agents[0].x, w.agents[0].y) == (gx, gy) and shelf not in w.request_queue
        cells = r.obs[0, 0, 8:].reshape(9, 7)
        in_view = bool(((cells[:, 5] == 1) & (cells[:, 6] == 1)).any())
        want = 1.0 if reward == "rware" else 1.0 + 0.001 * in_view
        assert r.reward[0] == pytest.approx(want)


def test_tasks_are_registered_with_a_flat_layout():
    assert sorted(RWARE_TASKS) == sorted(f"rware-{s}-{n}ag" for s in ("tiny", "small")
                                         for n in (2, 4, 6))
    spec = get_map("rware-small-4ag")
    assert task_backends(spec.name) == ("rware",)
    lay = spec.layout
    assert (lay.kind, lay.obs_dim, lay.n_actions, lay.state_dim) == ("flat", 71, 5, 4 * 3 + 16)
    assert spec.env_id == "rware-small-4ag-easy-v2"
    assert gymnasium.spec(spec.env_id).kwargs["request_queue_size"] == spec.queue == 8
    with pytest.raises(ValueError, match="for the smax backend"):
        make_env(spec.name, 2, units="sc2")
    with pytest.raises(ValueError, match="for the rware backend"):
        make_env("3m", 2, reward="alberdice")
    with pytest.raises(ValueError, match="unknown rware reward"):
        RwareEnv(spec, 2, reward="dense")
    env = make_env(spec.name, 2, reward="alberdice")
    env.reset(0)
    with pytest.raises(ValueError, match="actions must be"):
        env.step(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="0-4"):
        env.step(np.full((2, 4), 5))


def test_same_seed_same_episodes():
    spec = get_map("rware-tiny-4ag")
    a, b = RwareEnv(spec, 4), RwareEnv(spec, 4)
    ra, rb = a.reset(3), b.reset(3)
    rng = np.random.default_rng(1)
    for _ in range(50):
        act = rng.integers(0, 5, (4, 4))
        ra, rb = a.step(act), b.step(act)
    np.testing.assert_array_equal(ra.obs, rb.obs)
    np.testing.assert_array_equal(ra.state, rb.state)
    assert not np.array_equal(a.reset(4).state, b.reset(3).state)


def test_env_info_and_bench_know_the_warehouse():
    import json

    from typer.testing import CliRunner

    from marlbench.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["env", "info", "rware-tiny-2ag", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["backend"], info["obs_dim"], info["state_dim"], info["n_actions"]) == (
        "rware", 71, 14, 5)
    assert info["layout"].startswith("flat") and "units" not in info
    res = runner.invoke(app, ["env", "bench", "rware-tiny-2ag", "-n", "4", "--reward",
                              "alberdice"])
    assert res.exit_code == 0, res.output
    assert "mean length 500.0" in res.output and "env-steps/s" in res.output


def test_distance_field_counts_rwares_moves():
    from marlbench.data.rware_planner import FORWARD, LEFT, RIGHT, _next_action, distance_field

    # a 3 x 3 floor, target the top-right cell (x 2, y 0); directions: 0 up, 1 down, 2 left,
    # 3 right
    dist = distance_field(3, 3, [(2, 0)], None)
    assert dist[0, 0, 3] == 2  # facing right: two forward moves
    assert dist[0, 0, 0] == 3  # facing up: a right turn, then two
    assert dist[0, 0, 2] == 4  # facing left: two turns, then two
    assert dist[0, 2].tolist() == [0, 0, 0, 0]
    assert _next_action(dist, 0, 0, 3, None) == FORWARD
    assert _next_action(dist, 0, 0, 0, None) == RIGHT
    blocked = np.zeros((3, 3), bool)
    blocked[0, 1] = True  # the direct way is shut: down, right twice, up
    dist = distance_field(3, 3, [(2, 0)], blocked)
    assert dist[0, 0, 3] == 1 + 1 + 1 + 2 + 1 + 1  # turn, down, turn, 2 right, turn, up
    assert _next_action(dist, 0, 0, 3, blocked) in (LEFT, RIGHT)
    assert _next_action(dist, 0, 0, 3, blocked) == RIGHT  # toward down


def test_the_planner_delivers_shelves():
    from marlbench.data.rware_planner import ShelfDeliveryPlanner
    from marlbench.rollout import rollout

    env = RwareEnv(get_map("rware-tiny-2ag"), 4)
    planned = rollout(env, ShelfDeliveryPlanner(env, seed=0).act, 1)
    rng = np.random.default_rng(0)
    rand = rollout(env, lambda r: rng.integers(0, 5, r.avail_actions.shape[:2]), 1)
    assert planned.returns.min() >= 2 and planned.returns.mean() >= 8
    assert planned.returns.mean() > 10 * max(rand.returns.mean(), 0.25)
    again = rollout(env, ShelfDeliveryPlanner(env, seed=0).act, 1)
    np.testing.assert_array_equal(planned.returns, again.returns)  # seeded
