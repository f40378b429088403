"""ODIS and HiSSD: phases, frozen modules, update sequences and their quirks."""

import numpy as np
import torch
from test_bc_t import _fake_batch

from marlbench.data.dataset import TaskData, load_episodes
from marlbench.envs.maps import get_map
from marlbench.learners import get_learner
from marlbench.nets.mixers import state_entities_with_actions
from marlbench.train import seed_everything

MARINES = ["3m", "4m", "12m"]


def _learner(name, tasks, seed=0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner(name)
    return cls({t: get_map(t).layout for t in tasks}, cls.Config(**cfg), torch.device("cpu"))


def test_state_view_carries_current_and_last_actions():
    lay = get_map("3m").layout
    state = torch.zeros(lay.state_dim)
    actions = torch.tensor([1, 6, 8])  # stop, attack enemy 0, attack enemy 2
    allies, enemies = state_entities_with_actions(state, actions, lay)
    assert allies.shape == (3, 4 + 2 * 7) and enemies.shape == (3, 3 + 1)
    assert allies[0, 4 + 1] == 1 and allies[1, 4 + 6] == 1  # compact: basic one-hot | attack
    assert enemies[:, -1].tolist() == [1.0, 0.0, 1.0]


def test_odis_pretrains_then_freezes_the_skill_modules():
    odis = _learner("odis", MARINES)
    odis.set_budget(10)  # pretrain_fraction 0.3 → 3 task batches of skill pre-training
    assert odis.pretrain_updates == 3
    batches = {t: _fake_batch(t) for t in MARINES}
    first = odis.update_round(batches)
    assert first["phase"] == 1 and "dec_loss" in first and "kl" in first
    assert not odis.pretraining
    frozen = {k: v.clone() for k, v in odis.agent.state_dict().items()
              if k.split(".")[0] in ("encoder", "state_encoder", "decoder")}
    qnet = odis.agent.qnet.weight.clone()
    second = odis.update_round(batches)
    assert second["phase"] == 2 and "td_loss" in second and "dist_loss" in second
    after = odis.agent.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert not torch.equal(odis.agent.qnet.weight, qnet)
    # a reloaded learner resumes in phase 2 with the modules frozen
    again = _learner("odis", MARINES, seed=1)
    again.load_state_dict(odis.state_dict())
    assert not again.pretraining and not again.agent.decoder.q_skill.weight.requires_grad


def test_odis_targets_copy_every_80_phase_two_batches():
    odis = _learner("odis", ["3m"])
    batch = _fake_batch("3m")
    for _ in range(80):
        odis.update(batch, "3m")
    assert not torch.equal(odis.target_agent.qnet.weight, odis.agent.qnet.weight)
    odis.update(batch, "3m")  # t_env = 80 when this batch arrives
    assert torch.equal(odis.target_agent.qnet.weight, odis.agent.qnet.weight)


def test_odis_both_phases_learn_real_odis_3m_medium(odis_3m):
    data = TaskData(load_episodes(odis_3m, last=400))
    odis = _learner("odis", ["3m"], seed=1)
    odis.set_budget(200)  # 60 pre-training batches, then phase 2
    rng = seed_everything(1)
    rows = [odis.update(data.sample(16, rng), "3m") for _ in range(120)]
    dec = [r["dec_loss"] for r in rows if r["phase"] == 1]
    td = [r["loss"] for r in rows if r["phase"] == 2]
    assert len(dec) == 60 and np.mean(dec[-10:]) < np.mean(dec[:10])
    assert np.mean(td[-10:]) < np.mean(td[:10])


def test_hissd_steps_three_times_per_task_and_applies_the_round_step(monkeypatch):
    hissd = _learner("hissd", MARINES)
    steps = []
    real = hissd.optimiser.step
    monkeypatch.setattr(hissd.optimiser, "step", lambda: (steps.append(1), real())[1])
    hissd.update_round({t: _fake_batch(t) for t in MARINES})
    assert len(steps) == 2 * len(MARINES) + 1
    assert hissd.batches == 3 and set(hissd.last_batch) == set(MARINES)


def test_hissd_infonce_needs_another_tasks_batch():
    hissd = _learner("hissd", MARINES)
    batch = _fake_batch("3m")
    _, ssl = hissd.decoder_loss(batch, task="3m")
    assert float(ssl) == 0.0
    z = torch.randn(4, 5, 3, 64, requires_grad=True)
    loss = hissd.infonce(z, batch, _fake_batch("4m"), "4m")
    assert loss > 0
    loss.backward()
    assert z.grad is not None and hissd.agent.discr.W.grad is not None


def test_hissd_expectile_weights_are_averaged_before_multiplying():
    hissd = _learner("hissd", ["3m"])
    batch = _fake_batch("3m")
    lay = get_map("3m").layout
    loss = hissd.value_loss(batch, "3m")
    with torch.no_grad():
        mixed = hissd.mixer(hissd.agent.values(batch, lay), batch.state, lay)
        target = hissd.target_mixer(hissd.target_agent.values(batch, lay), batch.state, lay)
        mask = batch.mask[:, :-1]
        u = (mixed[:, :-1] - batch.reward[:, :-1]
             - 0.99 * (1 - batch.terminated[:, :-1]) * target[:, 1:]) * mask
        w = (0.9 - (u < 0).float()).abs().mean()
        expected = w * (u**2).sum() / mask.sum()
    assert torch.allclose(loss, expected)


def test_hissd_reference_quirks_train_the_value_net_on_the_first_task_batch_only():
    """The reference's requires_grad order: its value network learns from the first task batch
    and never again (the mixer keeps learning V(s)); without the quirk it learns every batch."""
    batches = {"3m": _fake_batch("3m")}
    for quirks in (True, False):
        hissd = _learner("hissd", ["3m"], reference_quirks=quirks)
        before = {k: v.clone() for k, v in hissd.agent.value.state_dict().items()}
        hissd.update_round(batches)  # the first task batch: the value net learns either way
        first = {k: v.clone() for k, v in hissd.agent.value.state_dict().items()}
        assert any(not torch.equal(before[k], first[k]) for k in before)
        mixer = [p.clone() for p in hissd.mixer.parameters()]
        hissd.update_round(batches)
        after = hissd.agent.value.state_dict()
        frozen = all(torch.equal(first[k], after[k]) for k in first)
        assert frozen == quirks
        assert any(not torch.equal(a, b) for a, b in zip(mixer, hissd.mixer.parameters(),
                                                          strict=True))
