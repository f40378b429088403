"""The offline single-task track's plumbing: single-task sets, the warehouse's suite fields,
MADT's good / medium / poor points, standardisation, and planner-made data."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from marlbench.data.collect import collect_scripted, read_manifest
from marlbench.data.dataset import Batch, Standardiser, TaskData, feature_stats
from marlbench.data.format import EpisodeArrays
from marlbench.data.protocol import _summarise
from marlbench.envs.tasksets import SINGLE_TASK_SETS, get_task_set
from marlbench.learners.mappo import MappoConfig
from marlbench.plan import make_plan
from marlbench.suite import Suite

RWARE = {
    "name": "rw",
    "backend": "rware",
    "task_sets": ["rware-tiny-2ag"],
    "qualities": ["expert"],
    "seeds": [1],
    "algorithms": [{"name": "bc_t"}],
    "data": {"episodes": 8, "last_episodes": 8, "behaviour": {"algorithm": "planner"}},
    "training": {"updates": 10, "standardise": True},
    "evaluation": {"interval": None, "actions": "sampled"},
}


def _suite(**changes) -> Suite:
    cfg = copy.deepcopy(RWARE)
    cfg.update(changes)
    return Suite.model_validate(cfg)


def test_single_task_sets_train_and_test_on_their_map():
    for name, ts in SINGLE_TASK_SETS.items():
        assert ts.kind == "single" and ts.seen == ts.test == (name,)
        assert ts.unseen == () and ts.split(name) == "seen"
    assert get_task_set("rware-small-6ag").backends == ("rware",)
    assert get_task_set("5m_vs_6m").family == "smac_single"
    assert get_task_set("marine_easy").kind == "multi"


def test_a_planner_suite_plans_no_behaviour_run_and_names_its_contract():
    plan = make_plan(_suite(reward="alberdice"))
    assert not plan.of_kind("behaviour")
    (data,) = plan.of_kind("dataset")
    assert data.config["policy"] == "planner" and data.config["reward"] == "alberdice"
    (train,) = plan.of_kind("train")
    assert train.config["standardise"] is True and train.config["reward"] == "alberdice"
    (ev,) = plan.of_kind("eval")
    assert ev.config["actions"] == "sampled" and ev.config["split"] == "seen"
    assert make_plan(_suite()).of_kind("eval")[0].config["reward"] == "rware"  # the default


def test_the_contract_fields_change_the_ids_they_should():
    a = make_plan(_suite())
    b = make_plan(_suite(evaluation={"interval": None}))  # greedy
    assert {j.id for j in a.of_kind("train")} == {j.id for j in b.of_kind("train")}
    assert not {j.id for j in a.of_kind("eval")} & {j.id for j in b.of_kind("eval")}
    c = make_plan(_suite(reward="alberdice"))
    assert not {j.id for j in a.of_kind("dataset")} & {j.id for j in c.of_kind("dataset")}


@pytest.mark.parametrize("changes, words", [
    ({"backend": "smax", "task_sets": ["5m_vs_6m"], "data": {"behaviour": {
        "algorithm": "planner"}}}, "warehouse robots"),
    ({"qualities": ["medium"]}, "needs a learned behaviour run"),
    ({"backend": "smax", "task_sets": ["5m_vs_6m"], "reward": "rware",
      "data": {"episodes": 8}}, "is for the rware backend"),
    ({"backend": "smax"}, "does not run on backend 'smax'"),
])
def test_misfits_are_refused_in_one_sentence(changes, words):
    with pytest.raises(ValidationError, match=words):
        _suite(**changes)


def _evals(returns: list[float]) -> list[dict]:
    return [{"env_steps": 1000 * i, "iteration": i, "checkpoint": f"steps_{1000 * i}.pt",
             "win_rate": 0.0, "mean_return": r, "episodes": 8} for i, r in enumerate(returns)]


def test_madt_points_are_the_first_checkpoints_reaching_fractions_of_the_final_return():
    settings = {"threshold_metric": "return", "medium_fraction": 0.6, "poor_fraction": 0.4,
                "batch_episodes": 8}
    st = {"evals": _evals([1.0, 3.0, 5.0, 9.0, 7.0, 10.0]), "windows": [], "env_steps": 5000,
          "iteration": 5}
    out = _summarise("5m_vs_6m", "smax", settings, 0, MappoConfig(), st)
    assert out["expert"]["checkpoint"] == "steps_5000.pt"
    assert out["medium"]["checkpoint"] == "steps_3000.pt"  # first >= 6.0
    assert out["poor"]["checkpoint"] == "steps_2000.pt"  # first >= 4.0
    assert out["poor"]["metric"] == "return" and out["poor"]["threshold"] == pytest.approx(4.0)
    assert out["warnings"] == []


def test_win_rate_points_stay_odis_medium():
    evals = _evals([0.0, 1.0, 2.0, 3.0])
    for e, w in zip(evals, (0.0, 0.2, 0.6, 0.8), strict=True):
        e["win_rate"] = w
    st = {"evals": evals, "windows": [], "env_steps": 3000, "iteration": 3}
    out = _summarise("3m", "smax", {"medium_fraction": 0.5, "batch_episodes": 8}, 0,
                     MappoConfig(), st)
    assert out["medium"]["checkpoint"] == "steps_2000.pt"  # first >= 0.4 win rate
    assert out["medium"]["metric"] == "win_rate"


def _episodes() -> EpisodeArrays:
    e, t, n = 3, 4, 2
    obs = np.zeros((e, t, n, 3), np.float32)
    obs[..., 0] = np.arange(e * t * n).reshape(e, t, n)
    obs[..., 1] = 5.0  # constant
    state = np.ones((e, t, 2), np.float32) * np.arange(t)[None, :, None]
    filled = np.zeros((e, t), np.int64)
    filled[:, :3] = 1
    obs[:, 3] = 1e6  # unfilled rows must not count
    return EpisodeArrays(obs, state, np.zeros((e, t, n), np.int64),
                         np.ones((e, t, n, 5), np.int64), np.zeros((e, t), np.float32),
                         np.zeros((e, t), np.int64), filled)


def test_standardisation_uses_filled_rows_only_and_centres_constant_features():
    eps = _episodes()
    st = feature_stats(TaskData(eps), chunk=2)
    rows = eps.obs[eps.filled.astype(bool)].reshape(-1, 3)
    np.testing.assert_allclose(st.obs_mean, rows.mean(0), rtol=1e-6)
    np.testing.assert_allclose(st.obs_std, rows.std(0), rtol=1e-5)
    np.testing.assert_allclose(st.state_mean, [1.0, 1.0])
    z = st.obs(rows)
    np.testing.assert_allclose(z[:, 0].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, 0].std(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(z[:, 1], 0.0)  # std 0: only centred
    again = Standardiser.from_dict(st.to_dict())
    np.testing.assert_allclose(again.obs(rows), z)
    data = TaskData(eps)
    data.standardiser = st
    batch = data.sample(3, np.random.default_rng(0))
    raw = Batch.from_episodes(eps, 3)
    assert torch.allclose(batch.obs.sort(0).values, torch.from_numpy(
        st.obs(raw.obs.numpy())).sort(0).values)


def test_planner_data_names_its_maker_and_claims_no_win_rate(tmp_path):
    manifest = collect_scripted("rware-tiny-2ag", "expert", 2, 0, tmp_path / "d", "rware",
                                reward="alberdice", planner=True)
    assert manifest["behaviour_policy"]["name"] == "shelf_delivery_planner"
    assert "standing in for MAPPO" in manifest["behaviour_policy"]["description"]
    assert manifest["win_rate"] is None and manifest["reward"] == "alberdice"
    assert manifest["mean_return"] > 0.5  # the planner delivers (random robots: about 0.1)
    assert read_manifest(tmp_path / "d")["episodes"] == 2


def test_mappo_is_the_registry_online_learner_and_not_an_offline_algorithm():
    from marlbench.learners import LEARNERS, ONLINE_LEARNERS

    assert "mappo" in ONLINE_LEARNERS and "mappo" not in LEARNERS
    with pytest.raises(ValidationError, match="mappo is an online learner"):
        _suite(algorithms=[{"name": "mappo"}])


def test_the_random_reference_draws_available_actions_reproducibly():
    from marlbench.envs.maps import get_map
    from marlbench.learners import get_learner

    lay = get_map("5m_vs_6m").layout
    cls = get_learner("random")
    learner = cls({"5m_vs_6m": lay}, cls.Config(), torch.device("cpu"))
    assert learner.update_round({})["loss"] == 0.0
    avail = np.zeros((64, lay.n_agents, lay.n_actions), np.int64)
    avail[..., 1] = avail[..., 7] = 1
    obs = np.zeros((64, lay.n_agents, lay.obs_dim), np.float32)
    a, _ = learner.policy().sampling(3).act(obs, avail, None, "5m_vs_6m")
    b, _ = learner.policy().sampling(3).act(obs, avail, None, "5m_vs_6m")
    assert set(np.unique(a)) == {1, 7} and (a == b).all()


def test_a_projection_says_what_it_has_no_figures_for():
    from marlbench.cost import BENCHMARK_FIGURES, CostModel, unmeasured

    model = CostModel(BENCHMARK_FIGURES)
    said = unmeasured(make_plan(_suite(algorithms=[{"name": "bc"}, {"name": "bc_t"}])), model)
    assert said == ["learner bc (taken as BC-t's)",
                    "backend rware (taken as the embedded simulator's by map size)"]


def test_collected_manifests_carry_the_data_standardisation(tmp_path):
    from marlbench.data.dataset import load_episodes

    manifest = collect_scripted("rware-tiny-2ag", "expert", 3, 1, tmp_path / "d", "rware",
                                planner=True)
    eps = load_episodes(tmp_path / "d", last=None)
    st = feature_stats(TaskData(eps))
    np.testing.assert_allclose(manifest["standardisation"]["obs_mean"], st.obs_mean,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(manifest["standardisation"]["state_std"], st.state_std,
                               rtol=1e-4, atol=1e-6)
