"""The cost model: fits, the scheduler replay, sums per kind and algorithm, the dry-run output,
and the calibration file read at the door."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from malformed import assert_refused, invoke

from marlbench.cost import (
    BENCHMARK_FIGURES,
    CostModel,
    PowerLaw,
    _replay,
    calibration_path,
    load_model,
    project,
)
from marlbench.plan import make_plan
from marlbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]


def _plan(profile: str | None = "tiny"):
    return make_plan(load_suite(ROOT / "suites" / "smoke.yaml", profile), Path("unused"))


def test_power_law_goes_through_its_points():
    law = PowerLaw.fit({2.0: 8.0, 4.0: 32.0})
    assert law.p == pytest.approx(2.0) and law(3.0) == pytest.approx(18.0)
    one = PowerLaw.fit({5.0: 10.0})
    assert one.p == 1.0 and one(10.0) == pytest.approx(20.0)


def test_replay_of_the_scheduler():
    plan = _plan()
    est = {jid: 1.0 for jid in plan.jobs}  # 3 datasets → 2 trains → 20 evals
    assert _replay(plan, est, 0.0, 1) == pytest.approx(len(plan.jobs))
    assert _replay(plan, est, 0.0, 100) == pytest.approx(3.0)  # the critical path
    # 2 slots: datasets 2 + 1 (t = 2), trains at t = 2..3, 20 evals on 2 slots: 10 more
    assert _replay(plan, est, 0.0, 2) == pytest.approx(13.0)
    maps = len({j.config["task"] for j in plan.of_kind("eval")})
    assert _replay(plan, est, 5.0, 1, start_s=7.0) == pytest.approx(len(plan.jobs) + 5 * maps
                                                                    + 7)
    done = {j.id for j in plan.of_kind("dataset")}  # done before the run: not costed
    assert _replay(plan, {j: s for j, s in est.items() if j not in done}, 0.0, 1) == \
        pytest.approx(len(plan.jobs) - 3)


def test_projection_sums_jobs_per_kind_and_algorithm():
    plan = _plan(None)
    model = CostModel(dict(BENCHMARK_FIGURES))
    p = project(plan, model, workers=2)
    for kind in ("dataset", "train", "eval"):
        want = sum(model.job_s(kind, j.config) for j in plan.of_kind(kind)) / 3600
        assert p.cpu_hours[kind] == pytest.approx(want)
    assert set(p.per_algorithm) == {"BC-t"} and p.gpu_hours is None
    assert p.per_algorithm["BC-t"]["train"] == pytest.approx(p.cpu_hours["train"])
    assert p.wall_s >= max(model.job_s(j.kind, j.config) for j in plan.jobs.values())
    # a bigger map costs more per update, and more updates cost proportionally more
    assert model.update_s("bc_t", "10m", 32) > model.update_s("bc_t", "3m", 32)
    assert model.update_s("stairs", "3m", 32) > model.update_s("bc_t", "3m", 32)
    train = plan.of_kind("train")[0].config
    assert model.job_s("train", {**train, "updates": 2 * train["updates"]}) == \
        pytest.approx(2 * model.job_s("train", train))


def test_dry_run_prints_the_projection_and_its_source(tmp_path):
    env = {"MARLBENCH_CACHE": str(tmp_path / "cache")}
    out = invoke("run", ROOT / "suites" / "smoke.yaml", "--dry-run", "--results",
                 tmp_path / "r", "--data-dir", tmp_path / "d", env=env)
    assert out.exit_code == 0, out.output
    assert "Projected cost" in out.output
    assert "projected wall time" in out.output and "CPU-hours" in out.output
    assert "run `marlbench calibrate`" in out.output  # no calibration here: benchmark figures
    assert not (tmp_path / "r").exists()


def test_a_malformed_calibration_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLBENCH_CACHE", str(tmp_path))
    path = calibration_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**BENCHMARK_FIGURES, "machine_id": "0" * 16, "maps": ["3m"],
                                "worker_start_s": 1.0, "wall_time_s": 1.0,
                                "eval_length_fraction": 1.5}))
    out = invoke("run", ROOT / "suites" / "smoke.yaml", "--dry-run", "--results",
                 tmp_path / "r", "--data-dir", tmp_path / "d", env={"MARLBENCH_CACHE":
                                                                    str(tmp_path)})
    assert "eval_length_fraction" in assert_refused(out, str(path))


def test_calibrate_measures_and_the_projection_uses_it(tmp_path, monkeypatch):
    """A real (reduced) calibration: BC-t only; the model then says it is calibrated."""
    monkeypatch.setenv("MARLBENCH_CACHE", str(tmp_path))
    out = invoke("calibrate", "--learner", "bc_t", "--json",
                 env={"MARLBENCH_CACHE": str(tmp_path)})
    assert out.exit_code == 0, out.output
    model = load_model()
    assert model.calibrated and set(model.doc["update_s"]["cpu"]) == {"bc_t"}
    assert all(v > 0 for v in model.doc["update_s"]["cpu"]["bc_t"].values())
    assert 0 < model.doc["eval_length_fraction"] <= 1
    p = project(_plan(), model, workers=1)
    assert p.wall_s > 0 and "calibrated on this machine" in p.source
    assert "--learner" in assert_refused(invoke("calibrate", "--learner", "nosuch"),
                                         "--learner")
