"""BC-t: forward/update on any entity count, learning on real ODIS data, determinism."""

import math

import numpy as np
import pytest
import torch

from marlbench.data.dataset import TaskData, load_episodes
from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.train import seed_everything

TASKS = ["3m", "4m", "12m", "5m_vs_6m"]


def _learner(tasks=TASKS, seed=0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner("bc_t")
    return cls({t: get_map(t).layout for t in tasks}, cls.Config(**cfg), torch.device("cpu"))


def _fake_batch(task, b=4, t=6, seed=0):
    from marlbench.data.dataset import Batch

    lay = get_map(task).layout
    g = torch.Generator().manual_seed(seed)
    avail = torch.ones(b, t, lay.n_agents, lay.n_actions, dtype=torch.int32)
    return Batch(
        obs=torch.rand(b, t, lay.n_agents, lay.obs_dim, generator=g),
        state=torch.rand(b, t, lay.state_dim, generator=g),
        actions=torch.randint(0, lay.n_actions, (b, t, lay.n_agents), generator=g),
        avail=avail,
        reward=torch.zeros(b, t),
        terminated=torch.nn.functional.one_hot(torch.full((b,), t - 2), t).float(),
        filled=torch.ones(b, t),
    )


@pytest.mark.parametrize("task", TASKS)
def test_update_and_act_on_every_layout(task):
    learner = _learner()
    metrics = learner.update(_fake_batch(task), task)
    assert math.isfinite(metrics["loss"])
    lay = get_map(task).layout
    policy = learner.policy()
    state = policy.initial_state(5, task)
    obs = np.random.rand(5, lay.n_agents, lay.obs_dim).astype(np.float32)
    avail = np.zeros((5, lay.n_agents, lay.n_actions), dtype=np.int32)
    avail[..., 1] = 1
    avail[:, 0, -1] = 1
    actions, state = policy.act(obs, avail, state, task)
    assert actions.shape == (5, lay.n_agents)
    assert (np.take_along_axis(avail, actions[..., None], -1) == 1).all()


def test_same_seed_same_numbers():
    a, b = _learner(seed=3), _learner(seed=3)
    for learner in (a, b):
        for step in range(3):
            learner.update(_fake_batch("4m", seed=step), "4m")
    for pa, pb in zip(a.agent.parameters(), b.agent.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_learns_real_odis_3m_medium(odis_3m):
    eps = load_episodes(odis_3m)
    train, held = TaskData(eps.select(slice(0, 1800))), TaskData(eps.select(slice(1800, None)))
    learner = _learner(["3m"], lr=1e-3)
    rng = seed_everything(0)
    losses = [learner.update(train.sample(32, rng), "3m")["loss"] for _ in range(80)]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    batch = held.sample(64, np.random.default_rng(1))
    with torch.no_grad():
        logits = learner.agent.unroll(batch.obs, batch.actions, get_map("3m").layout)
    pred = logits.masked_fill(batch.avail == 0, -1e10).argmax(-1)
    mask = batch.mask[..., None].expand_as(pred) > 0
    accuracy = (pred == batch.actions)[mask].float().mean().item()
    assert accuracy > 0.6
