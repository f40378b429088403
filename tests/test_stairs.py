"""STAIRS-Former: size, recursion with the one-step gradient, token dropout, ablations."""

import math

import numpy as np
import pytest
import torch
from test_bc_t import _fake_batch

from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.learners.stairs import token_dropout_mask

ABLATIONS = {
    "full": {},
    "wo_temporal": {"temporal": False},
    "wo_spatial": {"spatial": False},
    "wo_dropout": {"token_dropout": 0.0},
    "wo_spatial_temporal": {"spatial": False, "temporal": False},
    "wo_all": {"spatial": False, "temporal": False, "token_dropout": 0.0},
}


def _stairs(tasks, **cfg):
    torch.manual_seed(0)
    cls = get_learner("stairs")
    return cls({t: get_map(t).layout for t in tasks}, cls.Config(**cfg), torch.device("cpu"))


def test_agent_network_has_about_0_2m_parameters():
    n = sum(p.numel() for p in _stairs(["3m"]).agent.parameters())
    assert 0.18e6 < n < 0.22e6, n


@pytest.mark.parametrize("name", sorted(ABLATIONS))
@pytest.mark.parametrize("tasks", [["3m", "4m", "12m"], ["2s3z", "4s6z"]])
def test_every_ablation_updates_and_acts_on_every_layout(name, tasks):
    learner = _stairs(tasks, **ABLATIONS[name])
    for task in tasks:
        lay = get_map(task).layout
        m = learner.update(_fake_batch(task, t=7), task)
        assert all(math.isfinite(m[k]) for k in ("loss", "td_loss", "bc_loss"))
        policy = learner.policy()
        state = policy.initial_state(2, task)
        for _ in range(6):  # past a high-level refresh (high_step 5)
            obs = np.random.rand(2, lay.n_agents, lay.obs_dim).astype(np.float32)
            avail = np.ones((2, lay.n_agents, lay.n_actions), np.int32)
            actions, state = policy.act(obs, avail, state, task)
        assert actions.shape == (2, lay.n_agents)


def test_token_dropout_never_drops_a_protected_token():
    lay = get_map("12m").layout
    n_tokens = 1 + lay.n_enemies + (lay.n_agents - 1) + 2
    actions = torch.tensor([1, 6, 17, 9] * 50)  # stop, attack enemy 0, 11, 3
    g = torch.Generator().manual_seed(0)
    mask = token_dropout_mask(n_tokens, actions, lay, 0.99, 2, g)
    keep = mask.diagonal(dim1=-2, dim2=-1)
    assert (keep[:, 0] == 1).all() and (keep[:, -2:] == 1).all()
    targets = (actions - 6).clamp(min=0)
    attacked = actions >= 6
    assert (keep[attacked, 1 + targets[attacked]] == 1).all()
    assert keep[:, 1:-2].mean() < 0.1  # the rest were dropped at p = 0.99
    # a dropped token neither attends nor is attended
    dropped = torch.nonzero(keep[0] == 0)[0, 0]
    assert mask[0, dropped].sum() == 0 and mask[0, :, dropped].sum() == 0


@pytest.mark.parametrize("h_cycles,l_cycles,low,high", [
    (2, 1, [False, True], [True]),
    (2, 2, [False, False, False, True], [False, True]),
])
def test_recursion_passes_gradient_only_through_the_last_cycle(h_cycles, l_cycles, low, high):
    learner = _stairs(["3m"], h_cycles=h_cycles, l_cycles=l_cycles)
    agent = learner.agent
    calls = {"low": [], "high": []}
    agent.f_low.register_forward_hook(lambda m, i, o: calls["low"].append(o.requires_grad))
    agent.f_high.register_forward_hook(lambda m, i, o: calls["high"].append(o.requires_grad))
    x = torch.randn(4, 9, 64, requires_grad=True)
    agent.reason(x, None).sum().backward()
    assert calls == {"low": low, "high": high}


def test_high_history_refreshes_every_high_step():
    agent = _stairs(["3m"]).agent
    seen = []
    agent.gru.register_forward_hook(lambda m, i, o: seen.append(1))
    lay = get_map("3m").layout
    obs = torch.rand(1, 11, 3, lay.obs_dim)
    agent.unroll(obs, torch.ones(1, 11, 3, dtype=torch.long), lay)
    assert len(seen) == 3  # t = 0, 5, 10
