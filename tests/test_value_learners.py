"""BC-r, UPDeT-m, UPDeT-l and the shared value blocks: mixers, double-Q TD, disciplines."""

import math

import numpy as np
import pytest
import torch
from test_bc_t import _fake_batch

from marlbench.data.dataset import TaskData, load_episodes
from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.learners.bc_r import ReturnPolicy, reference_returns, returns_to_go
from marlbench.nets.mixers import MtQattnMixer, decompose_state, state_entity_widths
from marlbench.train import seed_everything, train

SETS = {"marine": ["3m", "4m", "12m"], "sz": ["2s3z", "4s6z"]}
LEARNERS = ["bc_r", "updet_m", "updet_l", "stairs", "odis", "hissd"]


def _learner(name, tasks, seed=0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner(name)
    return cls({t: get_map(t).layout for t in tasks}, cls.Config(**cfg), torch.device("cpu"))


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("group", sorted(SETS))
def test_forward_update_and_act_on_every_entity_count(name, group):
    tasks = SETS[group]
    learner = _learner(name, tasks)
    for task in tasks:
        lay = get_map(task).layout
        metrics = learner.update(_fake_batch(task), task)
        assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"])
        # scalars stay on the device (no host sync per update): tensors or plain numbers
        assert all(isinstance(v, torch.Tensor | float) for v in metrics.values())
        policy = learner.policy()
        state = policy.initial_state(3, task)
        obs = np.random.rand(3, lay.n_agents, lay.obs_dim).astype(np.float32)
        avail = np.zeros((3, lay.n_agents, lay.n_actions), dtype=np.int32)
        avail[..., 1] = 1
        avail[:, 0, -1] = 1
        kwargs = {"reward": np.ones(3, np.float32)} if getattr(policy, "uses_reward", 0) else {}
        actions, state = policy.act(obs, avail, state, task, **kwargs)
        assert actions.shape == (3, lay.n_agents)
        assert (np.take_along_axis(avail, actions[..., None], -1) == 1).all()


def test_state_decomposition_matches_the_smac_layout():
    assert state_entity_widths(get_map("3m").layout) == (4, 3)
    assert state_entity_widths(get_map("2s3z").layout) == (7, 6)
    lay = get_map("3m").layout
    state = torch.arange(48.0)
    allies, enemies, last = decompose_state(state, lay)
    assert allies.shape == (3, 4) and enemies.shape == (3, 3) and last.shape == (3, 9)
    assert allies[0, 0] == 0 and enemies[0, 0] == 12 and last[0, 0] == 21


def test_mt_qattn_is_monotonic_and_serves_every_unit_count():
    lays = [get_map(t).layout for t in SETS["marine"]]
    mixer = MtQattnMixer(lays)
    for lay in lays:
        qs = torch.randn(4, 5, lay.n_agents, requires_grad=True)
        q_tot = mixer(qs, torch.rand(4, 5, lay.state_dim), lay)
        assert q_tot.shape == (4, 5)
        (grad,) = torch.autograd.grad(q_tot.sum(), qs)
        assert (grad >= 0).all()


def test_mt_qattn_normalises_over_the_query_axis(monkeypatch):
    """The reference's softmax runs over dim 1 of (batch, query, key): each key column sums
    to one, rows do not."""
    seen = {}
    real = torch.nn.functional.softmax

    def spy(x, dim=None, **kw):
        out = real(x, dim=dim, **kw)
        seen["attn"], seen["dim"] = out, dim
        return out

    monkeypatch.setattr("marlbench.nets.mixers.F.softmax", spy)
    lay = get_map("4m").layout
    MtQattnMixer([lay])(torch.randn(2, 3, 4), torch.rand(2, 3, lay.state_dim), lay)
    attn = seen["attn"]
    torch.testing.assert_close(attn.sum(-2), torch.ones(attn.shape[:-2] + attn.shape[-1:]))
    assert not torch.allclose(attn.sum(-1), torch.ones(attn.shape[:-1]))


def test_target_networks_are_hard_copies_every_interval():
    learner = _learner("updet_m", ["3m"], target_update_interval=3)
    before = [p.clone() for p in learner.target_agent.parameters()]
    for step in range(2):
        learner.update(_fake_batch("3m", seed=step), "3m")
    for p, q in zip(before, learner.target_agent.parameters(), strict=True):
        assert torch.equal(p, q)  # not yet
    learner.update(_fake_batch("3m", seed=9), "3m")
    for p, q in zip(learner.agent.parameters(), learner.target_agent.parameters(), strict=True):
        assert torch.equal(p, q)


def test_conservative_gap_is_not_negative():
    learner = _learner("updet_m", ["3m"])
    learner.loss(_fake_batch("3m"), "3m")
    assert learner._last["cons_gap"] >= -1e-5  # greedy joint action ≥ data action, per agent


def test_returns_to_go():
    reward = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    filled = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    torch.testing.assert_close(returns_to_go(reward, filled), torch.tensor([[6.0, 5.0, 3.0, 0.0]]))


def test_bc_r_policy_subtracts_observed_rewards():
    learner = _learner("bc_r", ["3m"])
    policy = learner.policy()
    assert isinstance(policy, ReturnPolicy)
    lay = get_map("3m").layout
    state = policy.initial_state(2, "3m")
    obs = np.zeros((2, 3, lay.obs_dim), np.float32)
    avail = np.ones((2, 3, lay.n_actions), np.int32)
    _, state = policy.act(obs, avail, state, "3m", reward=np.array([0.0, 0.0], np.float32))
    _, state = policy.act(obs, avail, state, "3m", reward=np.array([1.5, 4.0], np.float32))
    torch.testing.assert_close(state[2][:, 0, 0], torch.tensor([18.5, 16.0]))


def test_bc_r_reference_quirks_reproduce_the_references_return_to_go(monkeypatch):
    """reference_quirks: training reads flip(cumsum(r)) tiled episode-major, so agent i of
    episode b reads episode (b·n + i) mod B; at test time the return-to-go stays 20."""
    reward = torch.tensor([[1.0, 2.0, 3.0], [10.0, 0.0, 0.0], [0.0, 5.0, 1.0]])  # B 3, T 3
    got = reference_returns(reward, n_agents=2)  # [B, T, n]
    flipped = {0: [6.0, 3.0, 1.0], 1: [10.0, 10.0, 10.0], 2: [6.0, 5.0, 0.0]}
    for b in range(3):
        for i in range(2):
            assert got[b, :, i].tolist() == flipped[(b * 2 + i) % 3]
    # the learner feeds exactly that to its network (and the true return-to-go without)
    seen = {}
    for quirks in (True, False):
        learner = _learner("bc_r", ["3m"], reference_quirks=quirks)
        real = learner.agent.unroll
        monkeypatch.setattr(learner.agent, "unroll", lambda o, a, lay, extra, real=real,
                            q=quirks: (seen.__setitem__(q, extra), real(o, a, lay, extra))[1])
        batch = _fake_batch("3m", b=3, t=6)
        batch.reward = torch.arange(18, dtype=torch.float32).view(3, 6)
        learner.loss(batch, "3m")
    torch.testing.assert_close(seen[True][..., 0], reference_returns(batch.reward, 3))
    torch.testing.assert_close(seen[False][:, :, 0, 0], returns_to_go(batch.reward,
                                                                       batch.filled))
    # at test time the reference never lowers the return-to-go
    lay = get_map("3m").layout
    policy = _learner("bc_r", ["3m"], reference_quirks=True).policy()
    state = policy.initial_state(2, "3m")
    obs = np.zeros((2, 3, lay.obs_dim), np.float32)
    avail = np.ones((2, 3, lay.n_actions), np.int32)
    _, state = policy.act(obs, avail, state, "3m", reward=np.array([1.5, 4.0], np.float32))
    torch.testing.assert_close(state[2][:, 0, 0], torch.tensor([20.0, 20.0]))


def test_per_round_discipline_steps_once_per_round_of_task_batches():
    tasks = ["3m", "4m", "12m"]
    learner = _learner("updet_l", tasks, update_discipline="per_round")
    steps = {"opt": 0}
    real_step = learner.optimiser.step

    def counted(*a, **kw):
        steps["opt"] += 1
        return real_step(*a, **kw)

    learner.optimiser.step = counted
    data = {t: TaskData(_episodes(t)) for t in tasks}
    saved, logged = [], []
    train(learner, data, 7, 2, np.random.default_rng(0), [3, 7], saved.append, logged.append,
          log_every=1)
    assert steps["opt"] == 3  # rounds of 3, 3 and the last 1 task batches
    assert saved == [3, 7] and [row["step"] for row in logged] == [3, 6, 7]


def _episodes(task, n=4):
    from marlbench.data.format import EpisodeArrays

    b = _fake_batch(task, b=n)
    return EpisodeArrays(b.obs.numpy(), b.state.numpy(), b.actions.numpy(),
                         b.avail.numpy(), b.reward.numpy(),
                         b.terminated.numpy().astype(np.uint8),
                         b.filled.numpy().astype(np.int64))


@pytest.mark.parametrize("name", LEARNERS)
def test_loss_falls_on_real_odis_3m_medium(odis_3m, name):
    data = TaskData(load_episodes(odis_3m, last=400))
    learner = _learner(name, ["3m"], seed=1)
    rng = seed_everything(1)
    losses = [learner.update(data.sample(16, rng), "3m")["loss"] for _ in range(60)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]), losses


def test_value_and_return_conditioned_learners_run_through_a_suite(tmp_path):
    """`marlbench run` trains and evaluates BC-r and UPDeT-m end to end (toy set, scripted
    data, tiny budgets) and the report has a cell for each."""
    import json

    from typer.testing import CliRunner

    from marlbench.cli.main import app

    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: vl\nbackend: smax\ntask_sets: [toy]\nqualities: [scripted]\nseeds: [1]\n"
        "algorithms: [{name: bc_r}, {name: updet_m}, {name: stairs}]\n"
        "data: {episodes: 16, last_episodes: 16}\n"
        "training: {updates: 4, batch_episodes: 4}\nevaluation: {episodes: 8, interval: null}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(suite), "--data-dir", str(tmp_path / "data"),
                                 "--results", str(tmp_path / "r"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["report", str(tmp_path / "r"), "--format", "json"])
    assert report.exit_code == 0, report.output
    text = json.dumps(json.loads(report.output))
    assert "BC-r" in text and "UPDeT-m" in text and "STAIRS-Former" in text
