"""Grid cooperative navigation: exact semantics of the public ODIS data, and BC on it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ODIS

from marlbench.data.dataset import TaskData, load_episodes
from marlbench.envs import make_env
from marlbench.envs.maps import get_map
from marlbench.evaluate import evaluate
from marlbench.learners import get_learner
from marlbench.train import seed_everything

RUNS = {
    ("cn-2", "expert"): "qmix_2024-10-18_16-01-31",
    ("cn-2", "medium"): "qmix_2024-10-10_14-19-03",
    ("cn-4", "expert"): "qmix_2024-10-18_16-01-31",
    ("cn-4", "medium"): "qmix_2024-10-10_14-19-07",
}


def _run(task: str, quality: str) -> Path:
    path = ODIS / task / quality / RUNS[(task, quality)]
    if not path.exists():
        pytest.skip(f"ODIS sample {path} not present")
    return path


@pytest.mark.parametrize("task,quality", sorted(RUNS))
def test_replaying_dataset_actions_reproduces_the_data(task, quality):
    """Start from each recorded first state, replay the recorded actions: every observation,
    state, mask, reward and termination must come out exactly as in the public file."""
    eps = load_episodes(_run(task, quality), last=100)
    n = eps.obs.shape[2]
    env = make_env(task, 1)
    for ep in range(eps.n_episodes):
        env.reset(0)
        start = eps.state[ep, 0].reshape(2 * n, 2).astype(int) - 1
        env._agents, env._landmarks = start[None, :n], start[None, n:]
        obs, state, avail = env._observe()
        np.testing.assert_array_equal(obs[0], eps.obs[ep, 0])
        np.testing.assert_array_equal(avail[0], eps.avail_actions[ep, 0])
        for t in range(int(eps.lengths[ep]) - 1):
            r = env.step(eps.actions[ep, t][None])
            np.testing.assert_array_equal(r.obs[0], eps.obs[ep, t + 1])
            np.testing.assert_array_equal(r.state[0], eps.state[ep, t + 1])
            np.testing.assert_array_equal(r.avail_actions[0], eps.avail_actions[ep, t + 1])
            assert r.reward[0] == eps.reward[ep, t]
            assert bool(r.done[0]) == bool(eps.terminated[ep, t])


def test_collisions_block_all_movers():
    env = make_env("cn-3", 1)
    env.reset(0)
    env._agents = np.array([[[2, 2], [2, 4], [5, 5]]])
    env._landmarks = np.array([[[7, 7], [0, 7], [7, 0]]])
    r = env.step(np.array([[4, 3, 0]]))  # agents 0 and 1 both target (2, 3)
    np.testing.assert_array_equal(env._agents[0], [[2, 2], [2, 4], [5, 5]])
    env.step(np.array([[4, 0, 0]]))  # now only agent 0 moves
    np.testing.assert_array_equal(env._agents[0, 0], [2, 3])
    assert r.obs.shape == (1, 3, 12) and r.state.shape == (1, 12)


def test_layout_and_task_set():
    lay = get_map("cn-4").layout
    assert (lay.obs_dim, lay.state_dim, lay.n_actions, lay.n_attack) == (16, 16, 5, 0)
    assert lay.slices()["own"] == slice(0, 2) and lay.slices()["enemy"] == slice(8, 16)


def _bc(task: str, quality: str, updates: int) -> float:
    data = TaskData(load_episodes(_run(task, quality)))
    cls = get_learner("bc_t")
    layouts = {t: get_map(t).layout for t in ("cn-2", "cn-3", "cn-4", "cn-5")}
    rng = seed_everything(0)
    learner = cls(layouts, cls.Config(lr=1e-3), torch.device("cpu"))
    for _ in range(updates):
        learner.update(data.sample(32, rng), task)
    return evaluate(learner.policy(), task, 256, 0)["mean_return"]


def test_bc_on_cn2_expert_reaches_090():
    assert _bc("cn-2", "expert", 300) >= 0.9


@pytest.mark.slow
def test_bc_on_cn4_expert_reaches_80_percent_of_the_data():
    data_return = load_episodes(_run("cn-4", "expert")).returns.mean()
    assert _bc("cn-4", "expert", 3000) >= 0.8 * data_return  # measured: 0.363 vs 0.358
