"""Job ids: stable for the same config, sensitive to every parameter that changes work."""

import copy

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
