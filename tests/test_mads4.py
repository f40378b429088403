"""MADS4 (marlbench/learners/mads4.py): the SE-MDP's gradient path, recurrence = sequence,
the reference's alignment, the return-to-go, warm-up and checkpoints, on 2, 4 and 6 agents."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_flat_learners import _batch, _threshold, one_thread  # noqa: F401  (fixture)
from torch.nn import functional as F

from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.learners.bc_r import returns_to_go
from marlbench.learners.mads4 import MADS4Config

SMALL = {"embed": 8, "channels": 8, "state_size": 8, "layers": 2, "context": 16,
         "warmup_steps": 1, "lr": 3e-3}


def _mads4(task: str, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner("mads4")
    return cls({task: get_map(task).layout}, cls.Config(**{**SMALL, **cfg}),
               torch.device("cpu"))


def _with_rewards(batch, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch.reward = torch.rand(batch.reward.shape, generator=g) * batch.filled
    batch.state = torch.rand(batch.state.shape, generator=g) * batch.filled[..., None]
    return batch


class _Data:
    def __init__(self, returns):
        self.returns = np.asarray(returns, np.float32)


def test_defaults_are_the_reference_warehouse_runs():
    c = MADS4Config()
    assert (c.lr, c.weight_decay, c.warmup_steps, c.grad_norm_clip) == (1e-3, 1e-4, 10000, 0.25)
    assert (c.embed, c.channels, c.state_size, c.layers, c.context) == (128, 96, 96, 3, 500)
    assert c.target_scale == 1.2 and c.mode == "nplr"


def test_input_width_is_the_references():
    learner = _mads4("rware-tiny-4ag", embed=128)
    lay = get_map("rware-tiny-4ag").layout
    n, a = lay.n_agents, lay.n_actions
    assert learner.agent.input_projection.in_features == 128 * (3 + n - 1) + n + a
    assert learner.agent.output_projection.bias is None


@pytest.mark.parametrize("task", ["rware-tiny-2ag", "rware-tiny-4ag", "rware-tiny-6ag",
                                  "5m_vs_6m"])
@pytest.mark.parametrize("quirks", [False, True])
def test_updates_and_acts_on_every_agent_count(task, quirks):
    learner = _mads4(task, reference_quirks=quirks)
    learner.observe_data([{task: _Data([1.0, 5.0, 3.0])}])
    assert learner.targets == {task: pytest.approx(6.0)}
    before = [p.detach().clone() for p in learner.agent.parameters()]
    metrics = learner.update(_with_rewards(_batch(task)), task)
    assert np.isfinite(float(metrics["loss"]))
    assert any(not torch.equal(a, p) for a, p in zip(before, learner.agent.parameters(),
                                                     strict=True))
    lay = get_map(task).layout
    policy = learner.policy().sampling(3)
    state = policy.initial_state(5, task)
    rng = np.random.default_rng(0)
    for _ in range(4):
        avail = (rng.random((5, lay.n_agents, lay.n_actions)) < 0.5).astype(np.int32)
        avail[..., 0] = 1
        obs = rng.random((5, lay.n_agents, lay.obs_dim)).astype(np.float32)
        actions, state = policy.act(obs, avail, state, task, reward=np.ones(5, np.float32),
                                    global_state=np.zeros((5, lay.state_dim), np.float32))
        assert actions.shape == (5, lay.n_agents)
        assert avail[np.arange(5)[:, None], np.arange(lay.n_agents)[None], actions].all()
    assert torch.allclose(state[2], torch.full((5,), 6.0 - 3.0))  # reset reward not counted


def test_agent_i_loss_reaches_its_predecessors_logits():
    learner = _mads4("rware-tiny-4ag")
    b = _with_rewards(_batch("rware-tiny-4ag"))
    own = F.one_hot(b.actions.long(), learner.widths.actions).float()
    logits = learner.agent.unroll(b.obs, b.state, own, returns_to_go(b.reward, b.filled))
    for lg in logits:
        lg.retain_grad()
    logits[2].sum().backward()
    assert logits[0].grad.abs().sum() > 0 and logits[1].grad.abs().sum() > 0
    assert logits[3].grad is None or logits[3].grad.abs().sum() == 0  # no path to successors


def test_stepping_equals_the_sequence_forward():
    learner = _mads4("rware-tiny-2ag")
    net = learner.agent.eval()
    b = _with_rewards(_batch("rware-tiny-2ag", b=3, t=10))
    own = F.one_hot(b.actions.long(), learner.widths.actions).float()
    rtg = returns_to_go(b.reward, b.filled)
    seq = torch.stack(net.unroll(b.obs, b.state, own, rtg), 2)  # [B, T, n, A]
    x = [blk.s4.default_state(3 * 2).view(3, 2, blk.s4.channels, blk.s4.state)
         for blk in net.blocks]
    for t in range(10):
        logits, x = net.step(b.obs[:, t], b.state[:, t], own[:, t], rtg[:, t], x)
        assert torch.allclose(logits, seq[:, t], atol=1e-4)


def test_quirk_mode_acts_as_rereading_the_history_with_a_placeholder():
    """The reference re-reads steps 0..t each step: actions taken at their own steps, a zero
    slot at t, step t's return-to-go; the recurrent policy's two passes give the same."""
    task = "rware-tiny-2ag"
    learner = _mads4(task, reference_quirks=True, target_return=4.0)
    policy = learner.policy()
    lay = get_map(task).layout
    rng = np.random.default_rng(1)
    obs = rng.random((6, 2, 2, lay.obs_dim)).astype(np.float32)  # [T, B, n, o]
    gs = rng.random((6, 2, lay.state_dim)).astype(np.float32)
    rewards = rng.random((6, 2)).astype(np.float32)
    avail = np.ones((2, 2, lay.n_actions), np.int32)
    state, taken = policy.initial_state(2, task), []
    for t in range(6):
        a, state = policy.act(obs[t], avail, state, task, reward=rewards[t], global_state=gs[t])
        taken.append(a)
    acts = torch.as_tensor(np.stack(taken, 1))  # [B, T, n]
    rtg = 4.0 - torch.as_tensor(np.concatenate([np.zeros((1, 2)), rewards[1:]]).cumsum(0).T)
    for t in range(6):
        own = F.one_hot(acts[:, : t + 1], learner.widths.actions).float()
        own[:, t] = 0
        seq = learner.agent.unroll(torch.as_tensor(obs[: t + 1]).transpose(0, 1),
                                   torch.as_tensor(gs[: t + 1]).transpose(0, 1), own,
                                   rtg[:, : t + 1].float())
        greedy = torch.stack([lg[:, t] for lg in seq], 1).argmax(-1)
        assert torch.equal(greedy, acts[:, t])


def test_quirk_loss_reads_the_previous_step_and_skips_the_first_target():
    task = "rware-tiny-2ag"
    learner = _mads4(task, reference_quirks=True)
    b = _with_rewards(_batch(task))
    got = learner.loss(b, task)
    own = F.one_hot(b.actions.long(), learner.widths.actions).float()
    rtg = returns_to_go(b.reward, b.filled)
    logits = learner.agent.unroll(b.obs[:, 1:], b.state[:, 1:], own[:, :-1], rtg[:, :-1])
    mask = b.mask[:, 1:]
    want = sum((F.cross_entropy(lg.reshape(-1, lg.shape[-1]), b.actions[:, 1:, i].reshape(-1),
                                reduction="none") * mask.reshape(-1)).sum() / mask.sum()
               for i, lg in enumerate(logits))
    assert torch.allclose(got, want)


def test_the_loss_falls_and_the_policy_imitates():
    task = "rware-tiny-2ag"
    learner = _mads4(task, target_return=0.0, lr=5e-3, channels=64, embed=32, state_size=16,
                     layers=1)  # the batches' rewards are 0
    first = float(learner.update(_batch(task, behaviour=_threshold), task)["loss"])
    for k in range(200):
        last = float(learner.update(_batch(task, seed=k + 1, behaviour=_threshold), task)["loss"])
    assert last < 0.5 * first
    lay = get_map(task).layout
    policy, rng = learner.policy(), np.random.default_rng(5)
    state = policy.initial_state(64, task)
    obs = rng.random((64, 2, lay.obs_dim)).astype(np.float32)
    actions, _ = policy.act(obs, np.ones((64, 2, lay.n_actions), np.int32), state, task,
                            reward=np.zeros(64, np.float32),
                            global_state=np.zeros((64, lay.state_dim), np.float32))
    assert (actions == np.where(obs[..., 0] > 0.5, 4, 1)).mean() > 0.8


def test_warmup_and_checkpoint_round_trip():
    task = "rware-tiny-2ag"
    learner = _mads4(task, warmup_steps=10, lr=1e-3)
    learner.observe_data([{task: _Data([2.0])}])
    for k in range(3):
        learner.update(_with_rewards(_batch(task, seed=k)), task)
    assert learner.optimiser.param_groups[0]["lr"] == pytest.approx(1e-3 * 4 / 10)
    other = _mads4(task, seed=1, warmup_steps=10, lr=1e-3)
    other.load_state_dict(learner.state_dict())
    assert other.targets == learner.targets
    assert other.optimiser.param_groups[0]["lr"] == pytest.approx(1e-3 * 4 / 10)
    b = _with_rewards(_batch(task, seed=9))
    assert torch.equal(other.loss(b, task), learner.loss(b, task))


def test_refuses_fusion_and_a_policy_without_a_target():
    task = "rware-tiny-2ag"
    learner = _mads4(task)
    with pytest.raises(ValueError, match="fused"):
        learner.observe_data([{task: _Data([1.0])}, {task: _Data([2.0])}])
    with pytest.raises(ValueError, match="return-to-go"):
        learner.policy()


def test_evaluates_in_the_real_warehouse_with_the_global_state(monkeypatch):
    """Through the roll-out seam: the policy is handed the rewards and the (standardised)
    global state of the real rware environment every step."""
    from marlbench.data.dataset import Standardiser
    from marlbench.evaluate import StandardisedPolicy, evaluate
    from marlbench.learners.mads4 import MADS4Policy

    task = "rware-tiny-2ag"
    lay = get_map(task).layout
    learner = _mads4(task, target_return=3.0, reference_quirks=True)
    seen = []
    act = MADS4Policy.act

    def spy(self, obs, avail, state, task, reward=None, global_state=None):
        seen.append((np.asarray(reward).copy(), np.asarray(global_state).copy()))
        return act(self, obs, avail, state, task, reward=reward, global_state=global_state)

    monkeypatch.setattr(MADS4Policy, "act", spy)
    st = Standardiser(np.zeros(lay.obs_dim), np.ones(lay.obs_dim),
                      np.full(lay.state_dim, 1.0), np.full(lay.state_dim, 2.0))
    out = evaluate(StandardisedPolicy(learner.policy().sampling(0), st), task, episodes=2,
                   seed=0, reward="alberdice")
    assert len(seen) == 500 and np.isfinite(out["mean_return"])
    assert all(r.shape == (2,) and s.shape == (2, lay.state_dim) for r, s in seen)
    raw = 2 * seen[0][1] + 1  # undoing (state − 1) / 2 gives AlberDICE's grid coordinates
    assert (raw >= 0).all() and np.allclose(raw, raw.round()) and raw.max() > 1
