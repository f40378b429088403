"""OMIGA (marlbench/learners/omiga.py): its three losses against a hand computation of the
reference's formulas, the soft target update, updates and acting on 2, 4 and 6 agents."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_flat_learners import _batch, one_thread  # noqa: F401  (fixture)

from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.learners.omiga import OMIGAConfig


def _omiga(task: str, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner("omiga")
    return cls({task: get_map(task).layout}, cls.Config(**{"hidden": 16, **cfg}),
               torch.device("cpu"))


def _rich(task: str, seed: int = 0):
    b = _batch(task, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    b.reward = torch.rand(b.reward.shape, generator=g) * b.filled
    b.state = torch.rand(b.state.shape, generator=g) * b.filled[..., None]
    return b


def test_defaults_are_the_reference_smac_runs():
    c = OMIGAConfig()
    assert (c.lr, c.alpha, c.gamma, c.tau, c.grad_norm_clip) == (5e-4, 10.0, 0.99, 0.005, 1.0)
    assert (c.hidden, c.hyper_hidden) == (256, 64)


@torch.no_grad()
def test_losses_equal_a_hand_computation_of_the_reference_formulas():
    task = "rware-tiny-2ag"
    learner = _omiga(task, seed=3)
    for p in learner.target.parameters():  # a target that differs from the online networks
        p.add_(0.05 * torch.randn_like(p))
    b = _rich(task)
    got = learner.losses(b, task)
    net, tgt, n, alpha, gamma = learner.agent, learner.target, 2, 10.0, 0.99
    eye = torch.eye(n)
    q_sq, a_terms, zs = [], [], []
    rows = [(e, t) for e in range(b.obs.shape[0]) for t in range(b.obs.shape[1] - 1)
            if b.mask[e, t] > 0]
    for e, t in rows:  # per transition, per agent, as the reference's formulas read
        x = torch.cat([b.obs[e, t], eye], -1)
        x2 = torch.cat([b.obs[e, t + 1], eye], -1)
        a = b.actions[e, t].long()
        hid = torch.relu(net.mixer.f_v(b.state[e, t]))
        w, bias = net.mixer.w_v(hid).abs(), net.mixer.b_v(hid)
        q_tot = sum(w[i] * net.q(x[i])[a[i]] for i in range(n)) + bias[0]
        hid2 = torch.relu(tgt.mixer.f_v(b.state[e, t + 1]))
        w2, b2 = tgt.mixer.w_v(hid2).abs(), tgt.mixer.b_v(hid2)
        v_next = sum(w2[i] * tgt.v(x2[i])[0] for i in range(n)) + b2[0]
        y = b.reward[e, t] + gamma * (1 - b.terminated[e, t]) * v_next
        q_sq.append((q_tot - y) ** 2)
        hid_t = torch.relu(tgt.mixer.f_v(b.state[e, t]))
        wt = tgt.mixer.w_v(hid_t).abs()
        for i in range(n):
            z = ((wt[i] * tgt.q(x[i])[a[i]] - wt[i] * net.v(x[i])[0]) / alpha).clamp(-10, 10)
            zs.append(z)
            logp = torch.log_softmax(net.actor(x[i]), -1)[a[i]]
            a_terms.append((torch.exp(z), logp, wt[i] * net.v(x[i])[0]))
    m = max(max(float(z) for z in zs), -1.0)
    v_loss = sum(math.exp(float(z) - m) + math.exp(-m) * float(wv) / alpha
                 for z, (_, _, wv) in zip(zs, a_terms, strict=True)) / len(zs)
    actor = -sum(float(ez) * float(lp) for ez, lp, _ in a_terms) / len(a_terms)
    assert float(got["q"]) == pytest.approx(float(sum(q_sq) / len(q_sq)), rel=1e-5)
    assert float(got["v"]) == pytest.approx(v_loss, rel=1e-5)
    assert float(got["actor"]) == pytest.approx(actor, rel=1e-5)


def test_soft_update_moves_the_target_by_tau():
    task = "rware-tiny-2ag"
    learner = _omiga(task, tau=0.25)
    before = [p.detach().clone() for p in learner.target.parameters()]
    learner.update(_rich(task), task)
    for t0, p, t in zip(before, learner.agent.parameters(), learner.target.parameters(),
                        strict=True):
        assert torch.allclose(t, 0.75 * t0 + 0.25 * p, atol=1e-6)


@pytest.mark.parametrize("task", ["rware-tiny-2ag", "rware-tiny-4ag", "rware-tiny-6ag",
                                  "5m_vs_6m"])
def test_updates_and_acts_on_every_agent_count(task):
    learner = _omiga(task)
    metrics = learner.update(_rich(task), task)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    lay = get_map(task).layout
    rng = np.random.default_rng(0)
    avail = (rng.random((5, lay.n_agents, lay.n_actions)) < 0.5).astype(np.int32)
    avail[..., 0] = 1
    obs = rng.random((5, lay.n_agents, lay.obs_dim)).astype(np.float32)
    for policy in (learner.policy(), learner.policy().sampling(1)):
        actions, _ = policy.act(obs, avail, policy.initial_state(5, task), task)
        assert avail[np.arange(5)[:, None], np.arange(lay.n_agents)[None], actions].all()


def test_checkpoint_round_trip_and_not_fusable():
    task = "rware-tiny-2ag"
    learner = _omiga(task)
    learner.update(_rich(task), task)
    other = _omiga(task, seed=5)
    other.load_state_dict(learner.state_dict())
    b = _rich(task, seed=7)
    assert all(torch.equal(other.losses(b, task)[k], learner.losses(b, task)[k])
               for k in ("actor", "q", "v"))
    assert not get_learner("omiga").fusable
