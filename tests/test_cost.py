"""The cost model: fits, the scheduler replay, sums per kind and algorithm, the dry-run output,
and the calibration file read at the door."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from malformed import assert_refused, invoke

from marlbench.cost import (
    BENCHMARK_FIGURES,
    CostModel,
    EpisodeLengths,
    PowerLaw,
    _replay,
    calibration_path,
    expected_longest,
    load_model,
    nearest_map,
    project,
)
from marlbench.data.collect import DatasetWriter
from marlbench.data.format import EpisodeArrays
from marlbench.envs.maps import get_map
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


def test_expected_longest_is_the_mean_of_the_batch_maxima():
    lengths = np.array([3, 9, 4, 4, 12, 7])
    for k in (1, 2, 3, 6):
        brute = np.mean([max(c) for c in itertools.combinations(lengths, k)])
        assert expected_longest(lengths, k) == pytest.approx(brute)
    assert expected_longest(lengths, 100) == 12  # a batch larger than the data takes it all


def test_lengths_are_carried_from_the_most_similar_reference_map():
    assert nearest_map("10m", ["3m", "3s5z"]) == "3m"  # marines, though 10m is nearer 3s5z
    assert nearest_map("2s3z", ["3m", "3s5z"]) == "3s5z"
    assert nearest_map("13m_vs_15m", ["3m", "3s5z"]) == "3m"
    # scripted lengths: scaled along the trend of the maps of the same unit types
    model = CostModel({**BENCHMARK_FIGURES, "scripted_rows": {"3m": [10] * 4, "10m": [20] * 4,
                                                              "3s5z": [100] * 4}})
    assert 10 < model.scripted_rows("5m").mean() < 20
    assert model.scripted_rows("10m").mean() == pytest.approx(20)
    assert model.scripted_rows("2s3z").mean() == pytest.approx(100)  # one protoss map: as is
    assert model.scripted_rows("3m").max() <= 61  # never past the limit


def _write_dataset(root: Path, rel: str, task: str, lengths: list[int]) -> None:
    lay = get_map(task).layout
    e, t1 = len(lengths), lay.episode_limit + 1
    filled = (np.arange(t1)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    terminated = np.zeros((e, t1), np.int64)
    terminated[np.arange(e), np.array(lengths) - 2] = 1
    eps = EpisodeArrays(
        obs=np.zeros((e, t1, lay.n_agents, lay.obs_dim), np.float32),
        state=np.zeros((e, t1, lay.state_dim), np.float32),
        actions=np.zeros((e, t1, lay.n_agents), np.int64),
        avail_actions=np.ones((e, t1, lay.n_agents, lay.n_actions), np.int32),
        reward=np.zeros((e, t1), np.float32), terminated=terminated, filled=filled)
    w = DatasetWriter(root / rel, e, lay)
    w.add(eps, np.zeros(e, bool))
    w.finish({"task": task, "backend": "smax", "quality": "scripted",
              "behaviour_policy": {"name": "synthetic"}, "collection_seed": 0})


def test_training_batches_are_costed_at_the_lengths_of_their_data(tmp_path):
    """Data on disk: its lengths; scripted data not collected yet: the calibrated scripted
    lengths; otherwise full length. Shorter batches cost proportionally less."""
    plan = _plan()
    train = plan.of_kind("train")[0]
    full = CostModel(dict(BENCHMARK_FIGURES))  # no scripted lengths in the benchmark figures
    lengths = EpisodeLengths(plan, full, tmp_path)
    assert all(x is None for x in lengths.of_job(train).values())
    assert lengths.basis == {"full length": len(train.config["seen"])}

    scripted = CostModel({**BENCHMARK_FIGURES, "scripted_rows": {"3m": [10] * 8,
                                                                 "3s5z": [100] * 8}})
    by_script = EpisodeLengths(plan, scripted, tmp_path).of_job(train)
    assert {t: x.max() for t, x in by_script.items()} == {t: 10 for t in train.config["seen"]}

    for task, dirs in train.config["datasets"].items():
        _write_dataset(tmp_path, dirs[0]["dir"], task, [5, 6, 7, 8] * 8)
    on_disk = EpisodeLengths(plan, scripted, tmp_path)
    seen = on_disk.of_job(train)
    assert on_disk.basis == {"data": len(train.config["seen"])}
    assert all(sorted(set(x)) == [5, 6, 7, 8] for x in seen.values())
    b = train.config["batch_episodes"]
    t = train.config["seen"][0]
    rows = expected_longest(seen[t], b)
    assert scripted.update_s("bc_t", t, b, batch_rows=rows) == pytest.approx(
        scripted.update_s("bc_t", t, b) * rows / (get_map(t).episode_limit + 1))
    assert scripted.job_s("train", train.config, lengths=seen) < \
        scripted.job_s("train", train.config)
    # the policy trained on short episodes is evaluated on short episodes too
    ev = plan.of_kind("eval")[0]
    assert on_disk.of_job(ev) == {} and on_disk.eval_steps(ev) == pytest.approx(
        expected_longest(seen[nearest_map(ev.config["task"], sorted(seen))],
                         ev.config["episodes"]) - 1)
    assert scripted.job_s("eval", ev.config, steps=on_disk.eval_steps(ev)) < \
        scripted.job_s("eval", ev.config)


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


def test_gpu_hours_come_only_from_cuda_figures():
    plan = _plan()
    cpu_only = CostModel(dict(BENCHMARK_FIGURES))
    p = project(plan, cpu_only, workers=2, gpu_train=True)
    assert p.gpu_hours is None and p.gpu_uncalibrated and "train" in p.cpu_hours
    cuda = {"bc_t": {m: s / 10 for m, s in BENCHMARK_FIGURES["update_s"]["cpu"]["bc_t"].items()}}
    with_cuda = CostModel({**BENCHMARK_FIGURES, "update_s": {**BENCHMARK_FIGURES["update_s"],
                                                             "cuda": cuda}})
    g = project(plan, with_cuda, workers=2, gpu_train=True)
    assert not g.gpu_uncalibrated and "train" not in g.cpu_hours
    assert g.gpu_hours == pytest.approx(p.cpu_hours["train"] / 10)


def test_dry_run_prints_the_projection_and_its_source(tmp_path):
    env = {"MARLBENCH_CACHE": str(tmp_path / "cache")}
    out = invoke("run", ROOT / "suites" / "smoke.yaml", "--dry-run", "--results",
                 tmp_path / "r", "--data-dir", tmp_path / "d", env=env)
    assert out.exit_code == 0, out.output
    assert "Projected cost" in out.output
    assert "Training budget per run" in out.output and "task batches" in out.output
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


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A real (reduced) calibration of this machine, BC-t only, in a cache of its own."""
    cache = tmp_path_factory.mktemp("cache")
    out = invoke("calibrate", "--learner", "bc_t", "--json", env={"MARLBENCH_CACHE": str(cache)})
    assert out.exit_code == 0, out.output
    return cache


def test_calibrate_measures_and_the_projection_uses_it(calibrated, monkeypatch):
    monkeypatch.setenv("MARLBENCH_CACHE", str(calibrated))
    model = load_model()
    assert model.calibrated and set(model.doc["update_s"]["cpu"]) == {"bc_t"}
    assert all(v > 0 for v in model.doc["update_s"]["cpu"]["bc_t"].values())
    assert 0 < model.doc["eval_length_fraction"] <= 1
    assert set(model.doc["mappo_eval_chunk_s"]) == {"3m", "3s5z"}
    assert set(model.doc["scripted_rows"]) == {"3m", "10m", "3s5z"}
    assert all(1 <= n <= 61 for n in model.doc["scripted_rows"]["3m"])  # 3m's limit is 60
    p = project(_plan(), model, workers=1)
    assert p.wall_s > 0 and "calibrated on this machine" in p.source
    assert "--learner" in assert_refused(invoke("calibrate", "--learner", "nosuch"),
                                         "--learner")


ACCURACY_SUITE = """
name: accuracy
backend: smax
task_sets: [toy]          # trained on 3m, evaluated on 3m, 4m and 5m
qualities: [scripted]
seeds: [1, 2]
algorithms: [{name: bc_t, label: BC-t}]
data: {episodes: 128, last_episodes: 128}
training: {updates: 300, batch_episodes: 16}
evaluation: {episodes: 32, interval: 150}
profiles:
  warm: {training: {updates: 10}, evaluation: {interval: null}}
"""


def test_the_projection_of_a_small_suite_is_within_30_percent_of_its_wall_time(
        calibrated, tmp_path, monkeypatch):
    """Projected before the run (no data yet: scripted lengths from the calibration), then
    measured on 2 workers. A first run of a cut-down profile compiles the suite's programs
    into the JAX cache, as a machine's first run does once (the model costs a warm cache)."""
    import time

    monkeypatch.setenv("MARLBENCH_CACHE", str(calibrated))
    suite_file = tmp_path / "accuracy.yaml"
    suite_file.write_text(ACCURACY_SUITE)
    env = {"MARLBENCH_CACHE": str(calibrated)}
    warm = invoke("run", suite_file, "-p", "warm", "--workers", "2", "--results",
                  tmp_path / "r0", "--data-dir", tmp_path / "d0", env=env)
    assert warm.exit_code == 0, warm.output
    plan = make_plan(load_suite(suite_file, None), tmp_path / "d1")
    projected = project(plan, load_model(), workers=2, data_dir=tmp_path / "d1")
    assert projected.lengths == {"scripted": 2}
    t0 = time.perf_counter()
    out = invoke("run", suite_file, "--workers", "2", "--results", tmp_path / "r1",
                 "--data-dir", tmp_path / "d1", env=env)
    measured = time.perf_counter() - t0
    assert out.exit_code == 0, out.output
    print(f"projected {projected.wall_s:.1f} s, measured {measured:.1f} s")
    assert abs(projected.wall_s - measured) <= 0.3 * measured, (projected.wall_s, measured)
