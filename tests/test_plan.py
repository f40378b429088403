"""Job ids: stable for the same config, sensitive to every parameter that changes work."""

import copy

import torch

from marlbench.envs.maps import get_map
from marlbench.plan import make_plan, topological_order
from marlbench.suite import Suite

BASE = {
    "name": "t",
    "task_sets": ["marine_easy"],
    "qualities": ["scripted"],
    "seeds": [1, 2],
    "algorithms": [{"name": "bc_t"}],
    "training": {"updates": 20},
    "evaluation": {"interval": 10},
}


def _plan(**changes):
    cfg = copy.deepcopy(BASE)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    return make_plan(Suite.model_validate(cfg))


def _ids(plan, kind):
    return {j.id for j in plan.of_kind(kind)}


def test_counts_and_stability():
    a, b = _plan(), _plan()
    assert _ids(a, "eval") == _ids(b, "eval")
    assert len(a.of_kind("dataset")) == 3
    assert len(a.of_kind("train")) == 2
    assert len(a.of_kind("eval")) == 2 * 2 * 10  # seeds × checkpoints (10, 20) × test tasks


def test_changed_training_parameter_never_reuses_results():
    a, b = _plan(), _plan(training__updates=30)
    assert _ids(a, "dataset") == _ids(b, "dataset")
    assert not _ids(a, "train") & _ids(b, "train")
    assert not _ids(a, "eval") & _ids(b, "eval")


def test_changed_data_budget_changes_everything_downstream():
    a, b = _plan(), _plan(data={"episodes": 50})
    assert not _ids(a, "dataset") & _ids(b, "dataset")
    assert not _ids(a, "train") & _ids(b, "train")


def test_learner_parameter_and_lr_override_change_train_ids():
    a = _plan()
    b = _plan(algorithms=[{"name": "bc_t", "params": {"emb": 32}}])
    c = _plan(training__lr=1e-3)
    assert not _ids(a, "train") & _ids(b, "train")
    assert not _ids(a, "train") & _ids(c, "train")


def test_more_seeds_reuse_existing_jobs():
    a, b = _plan(), _plan(seeds=[1, 2, 3])
    assert _ids(a, "train") < _ids(b, "train")


def test_dependencies_come_first():
    plan = _plan()
    order = topological_order(plan)
    pos = {j: i for i, j in enumerate(order)}
    for job in plan.jobs.values():
        assert all(pos[d] < pos[job.id] for d in job.deps)


def test_each_algorithm_trains_for_its_own_budget():
    """An algorithm's own training overrides the suite's: updates, batch, checkpoints and the
    pre-training split (which the learner then reads exactly)."""
    from marlbench.learners import LEARNERS

    plan = _plan(algorithms=[
        {"name": "bc_t"},
        {"name": "odis", "training": {"updates": 50, "pretrain_updates": 15,
                                      "batch_episodes": 4, "eval_interval": 25}},
    ])
    trains = {j.config["algorithm"]: j.config for j in plan.of_kind("train")}
    assert (trains["bc_t"]["updates"], trains["bc_t"]["batch_episodes"]) == (20, 32)
    assert trains["bc_t"]["checkpoint_steps"] == [10, 20]
    odis = trains["odis"]
    assert (odis["updates"], odis["batch_episodes"], odis["checkpoint_steps"]) == (50, 4,
                                                                                   [25, 50])
    cls = LEARNERS["odis"]
    learner = cls({"3m": get_map("3m").layout}, cls.Config.model_validate(odis["params"]),
                  torch.device("cpu"))
    learner.set_budget(odis["updates"])
    assert learner.pretrain_updates == 15
    steps = {j.config["step"] for j in plan.of_kind("eval") if j.config["algorithm"] == "odis"}
    assert steps == {25, 50}
    # the suite-wide budget still gives the same jobs to an algorithm without its own
    assert _ids(_plan(), "train") & _ids(plan, "train") == {
        j.id for j in plan.of_kind("train") if j.config["algorithm"] == "bc_t"}


def test_the_paper_profiles_carry_the_references_budgets():
    from pathlib import Path

    from marlbench.suite import load_suite

    root = Path(__file__).resolve().parents[1] / "suites"
    paper = load_suite(root / "smac_multitask.yaml", "paper")
    budgets = {e.label: paper.budget(e) for e in paper.algorithms}
    assert {k: b.updates for k, b in budgets.items()} == {
        "BC-t": 35_000, "UPDeT-m": 35_000, "ODIS": 50_000, "HiSSD": 251_000,
        "STAIRS-Former": 30_000}
    assert budgets["ODIS"].pretrain_updates == 15_000
    assert all(b.batch_episodes == 32 for b in budgets.values())
    ablation = load_suite(root / "smac_multitask_ablation.yaml", "paper")
    assert {ablation.budget(e).updates for e in ablation.algorithms} == {30_000}
    text = (root / "smac_multitask.yaml").read_text()
    for source in ("odis.yaml pretrain_steps 15000", "HiSSD src/config/envs/sc2_offline.yaml",
                   "Stairs-Former src/config/envs/sc2_offline.yaml"):
        assert source in text  # each budget names the reference file it comes from


def test_the_unit_profile_names_every_job_and_changes_every_id():
    a, b = _plan(), _plan(units="sc2")
    for kind in ("dataset", "train", "eval"):
        assert not _ids(a, kind) & _ids(b, kind)
        assert {j.config["units"] for j in b.of_kind(kind)} == {"sc2"}
        assert {j.config["units"] for j in a.of_kind(kind)} == {"smax"}  # the default
    assert _ids(_plan(units="smax"), "eval") == _ids(a, "eval")


def test_a_unit_profile_is_for_the_embedded_backend_only():
    import pytest
    from pydantic import ValidationError

    cfg = {**copy.deepcopy(BASE), "task_sets": ["cn"], "qualities": ["scripted"],
           "backend": "grid", "units": "sc2"}
    with pytest.raises(ValidationError, match="unit profile"):
        Suite.model_validate(cfg)
    with pytest.raises(ValidationError, match="units"):
        Suite.model_validate({**copy.deepcopy(BASE), "units": "sc3"})
