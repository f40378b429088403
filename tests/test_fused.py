"""Fused training: K jobs of one seed on different data in one stacked learner give each job
the numbers a separate run of it gives (metrics, checkpoints, optimiser state)."""

import numpy as np
import pytest
import torch

from marlbench.data.dataset import Batch, TaskData, stack_batches
from marlbench.data.format import EpisodeArrays
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS, get_learner
from marlbench.learners.base import fuse
from marlbench.train import order_stream, seed_everything, train, train_group

TASKS = ["3m", "4m"]


def _episodes(task: str, quality: int, n: int = 6, rows: int = 9,
              dtype=np.float32) -> EpisodeArrays:
    """``n`` random episodes of ``task`` with lengths 3..rows (so that batches of different
    data differ in length and a fused group pads them); ``quality`` seeds the data; float
    arrays in ``dtype``."""
    lay = get_map(task).layout
    g = np.random.default_rng([quality, lay.n_agents])
    na = lay.n_agents
    length = g.integers(3, rows + 1, size=n)
    filled = (np.arange(rows)[None] < length[:, None]).astype(np.int64)
    terminated = np.zeros((n, rows), np.uint8)
    terminated[np.arange(n), length - 2] = 1  # the last filled row is the post-terminal one
    avail = np.ones((n, rows, na, lay.n_actions), np.int32)
    return EpisodeArrays(
        obs=(g.random((n, rows, na, lay.obs_dim)) * filled[..., None, None]).astype(dtype),
        state=(g.random((n, rows, lay.state_dim)) * filled[..., None]).astype(dtype),
        actions=(g.integers(0, lay.n_actions, (n, rows, na)) * filled[..., None]),
        avail_actions=avail,
        reward=(g.random((n, rows)) * filled).astype(dtype),
        terminated=terminated,
        filled=filled,
    )


def _data(quality: int, tasks=TASKS) -> dict[str, TaskData]:
    dtype = np.float64 if torch.get_default_dtype() == torch.float64 else np.float32
    return {t: TaskData(_episodes(t, quality, dtype=dtype)) for t in tasks}


@pytest.fixture
def float64():
    """Double precision: a fused job's numbers then equal its separate run's to ~1e-12, so
    the comparison can be tight (in float32 they agree to rounding, ~1e-5 after Adam)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _config(name: str) -> dict:
    """Small budgets that exercise each learner's schedule: target copies, ODIS's phase
    switch, STAIRS-Former's dropout, HiSSD's rounds and InfoNCE negatives."""
    cfg: dict = {}
    if "target_update_interval" in get_learner(name).Config.model_fields:
        cfg["target_update_interval"] = 2
    if name == "odis":
        cfg["pretrain_fraction"] = 0.4
    if name == "bc_r":
        cfg["reference_quirks"] = True  # the length-dependent return-to-go
    return cfg


def _build(name: str, seed: int, cfg: dict, updates: int):
    cls = get_learner(name)
    learner = cls({t: get_map(t).layout for t in TASKS}, cls.Config(**cfg), torch.device("cpu"))
    learner.set_budget(updates)
    return learner


def _separate(name, seed, quality, cfg, updates, steps):
    rng = seed_everything(seed)
    learner = _build(name, seed, cfg, updates)
    saved, logged = {}, []
    train(learner, _data(quality), updates, 4, rng, steps,
          lambda s: saved.__setitem__(s, _clone(learner.state_dict())), logged.append,
          log_every=1, order_rng=order_stream(seed))
    return saved, logged


def _fused(name, seed, qualities, cfg, updates, steps):
    torch.manual_seed(seed)
    learner = fuse(_build(name, seed, cfg, updates), len(qualities))
    saved = [{} for _ in qualities]
    logged = [[] for _ in qualities]
    train_group(learner, [_data(q) for q in qualities], updates, 4,
                [np.random.default_rng(seed) for _ in qualities], order_stream(seed), steps,
                lambda j, s: saved[j].__setitem__(s, learner.job_state(j)),
                lambda j, row: logged[j].append(row), log_every=1)
    return saved, logged


def _clone(state):
    if isinstance(state, dict):
        return {k: _clone(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_clone(v) for v in state]
    return state.clone() if torch.is_tensor(state) else state


def _assert_state_close(a, b, where=""):
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_state_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_state_close(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        if a.dtype in (torch.uint8, torch.int64, torch.int32, torch.bool):
            assert torch.equal(a, b), where
        else:
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8, msg=where)
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(n for n, c in LEARNERS.items() if c.fusable))
def test_a_fused_group_gives_each_job_the_numbers_of_its_separate_run(name, float64):
    cfg, updates, steps = _config(name), 7, [3, 7]
    qualities = [0, 1, 2]
    fused_saved, fused_logged = _fused(name, 5, qualities, cfg, updates, steps)
    for j, q in enumerate(qualities):
        saved, logged = _separate(name, 5, q, cfg, updates, steps)
        assert [r["step"] for r in logged] == [r["step"] for r in fused_logged[j]]
        for alone, together in zip(logged, fused_logged[j], strict=True):
            assert alone["task"] == together["task"]
            for key in alone:
                if key not in ("task", "time_s"):
                    assert together[key] == pytest.approx(alone[key], rel=1e-7, abs=1e-9), \
                        (name, q, alone["step"], key)
        assert set(saved) == set(fused_saved[j]) == set(steps)
        for s in steps:
            _assert_state_close(saved[s], fused_saved[j][s], f"{name} job {j} step {s}")


def test_jobs_of_a_group_differ_when_their_data_does():
    """The equivalence above is not vacuous: different data give different parameters."""
    saved, _ = _fused("bc_t", 5, [0, 1], {}, 4, [4])
    a, b = saved[0][4]["agent"], saved[1][4]["agent"]
    assert any(not torch.allclose(a[k], b[k]) for k in a)


def test_padding_a_batch_changes_no_loss():
    """Each learner's loss on a batch equals its loss on the same batch zero-padded in time
    (what a fused group's shorter batches get) when ``length`` says where the batch ends."""
    short = _data(3)["3m"].sample(4, np.random.default_rng(0))
    longer = TaskData(_episodes("3m", 4, rows=short.obs.shape[1] + 3))
    long_ = Batch.from_episodes(longer.take(np.arange(4), short.obs.shape[1] + 3),
                                short.obs.shape[1] + 3)
    stacked = stack_batches([short, long_])
    padded = Batch(*(f[0] for f in stacked.fields()))
    t = short.obs.shape[1]
    assert padded.obs.shape[1] == t + 3 and int(padded.length) == t
    for name in ("bc_t", "bc_r", "updet_m", "stairs"):
        torch.manual_seed(0)
        learner = _build(name, 0, {"reference_quirks": True} if name == "bc_r" else {}, 10)
        if name == "stairs":
            learner.config.token_dropout = 0.0
        a = learner.compute(learner.loss, short, task="3m")
        b = learner.compute(learner.loss, padded, task="3m")
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_group_refuses_data_for_another_group_size():
    learner = fuse(_build("bc_t", 0, {}, 4), 2)
    with pytest.raises(ValueError, match="3 jobs"):
        train_group(learner, [_data(0)] * 3, 4, 4, [np.random.default_rng(0)] * 3,
                    order_stream(0), [], lambda *a: None, lambda *a: None)
