"""The Ray executor on a local two-CPU cluster (never `ray stop`: ray.init / ray.shutdown)."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from marlbench.cli.main import app  # noqa: E402
from marlbench.executors.local import execute as execute_local  # noqa: E402
from marlbench.executors.ray_executor import execute as execute_ray  # noqa: E402
from marlbench.plan import make_plan  # noqa: E402
from marlbench.results.store import Store  # noqa: E402
from marlbench.suite import Suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAKE = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}
SUITE = {"name": "t", "task_sets": ["marine_easy"], "qualities": ["scripted"], "seeds": [1, 2],
         "algorithms": [{"name": "bc_t"}], "training": {"updates": 4},
         "evaluation": {"interval": None}}


@pytest.fixture(scope="module")
def cluster():
    # the workers import this checkout's marlbench and the fake job functions of tests/
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=512 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def _records(store, plan):
    out = {}
    for job in plan.of_kind("eval"):
        path = store.job_dir(job) / "records.json"
        if path.exists():
            out[job.id] = json.loads(path.read_text())
    return out


def test_records_identical_to_local_executor(cluster, tmp_path):
    plan = make_plan(Suite.model_validate(SUITE))
    local = Store(tmp_path / "local", tmp_path / "data_local")
    remote = Store(tmp_path / "ray", tmp_path / "data_ray")
    a = execute_local(plan, local, workers=0, opts={"job_functions": FAKE})
    b = execute_ray(plan, remote, opts={"job_functions": FAKE})
    assert sorted(a.done) == sorted(b.done) and list(a.failed) == list(b.failed)
    assert a.skipped == b.skipped and len(b.skipped) == 10
    assert "deliberate failure" in b.failed[next(iter(b.failed))]["error"]
    records = _records(remote, plan)
    assert len(records) == 10 and records == _records(local, plan)
    # a second run under Ray executes nothing that is done
    again = execute_ray(plan, remote, opts={"job_functions": FAKE})
    assert not again.done and len(again.already_done) == len(b.done)


def test_killed_worker_is_retried_without_duplicates(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    suite = Suite.model_validate({**SUITE, "seeds": [1]})
    plan = make_plan(suite)
    store = Store(tmp_path / "results", tmp_path / "data")
    train = plan.of_kind("train")[0]
    first = marks / f"{train.id}.0.pid"

    def kill_first_attempt():
        deadline = time.time() + 90
        while not first.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        os.kill(int(first.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_first_attempt)
    killer.start()
    opts = {"job_functions": {**FAKE, "train": "fake_jobs:train_killable"}, "marks": str(marks)}
    summary = execute_ray(plan, store, opts=opts, retries=2)
    killer.join()
    assert summary.ok, summary.failed
    assert len(sorted(marks.glob(f"{train.id}.*.pid"))) == 2  # killed once, retried once
    out = store.job_dir(train)
    # nothing of the killed attempt survives: no temporary file, no stale checkpoint
    assert not list(out.rglob("*.tmp"))
    assert (out / "checkpoints" / "step_4.pt").read_bytes() != b"stale"
    records = _records(store, plan)
    assert len(records) == 10 and all(len(r) == 1 for r in records.values())


def test_retries_exhausted_is_recorded_failed(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    plan = make_plan(Suite.model_validate({**SUITE, "seeds": [1]}))
    store = Store(tmp_path / "results", tmp_path / "data")
    train = plan.of_kind("train")[0]
    stop = threading.Event()

    def kill_every_attempt():
        killed = set()
        while not stop.is_set():
            for pid_file in marks.glob("*.pid"):
                if pid_file not in killed:
                    time.sleep(0.2)
                    killed.add(pid_file)
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
            time.sleep(0.1)

    killer = threading.Thread(target=kill_every_attempt)
    killer.start()
    opts = {"job_functions": {**FAKE, "train": "fake_jobs:train_killable"}, "marks": str(marks),
            "hang_always": True}
    try:
        summary = execute_ray(plan, store, opts=opts, retries=1)
    finally:
        stop.set()
        killer.join()
    assert list(summary.failed) == [train.id]
    assert "after 1 retry" in summary.failed[train.id]["error"]
    status = json.loads((store.job_dir(train) / "status.json").read_text())
    assert status["state"] == "failed" and "retry" in status["error"]
    assert len(summary.skipped) == 10


def _suite_file(tmp_path, resources):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, "resources": resources}))
    return path


@pytest.mark.parametrize("resources, sentence", [
    ({"train": {"gpus": 1}}, "train jobs ask for 1 GPU each, but no node of the Ray cluster "
                             "has a GPU"),
    ({"eval": {"cpus": 4}}, "eval jobs ask for 4 CPU each, but the largest node of the Ray "
                            "cluster has 2 CPU"),
])
def test_unsatisfiable_resources_exit_2_before_anything_runs(cluster, tmp_path, resources,
                                                             sentence):
    out = CliRunner().invoke(app, ["run", str(_suite_file(tmp_path, resources)), "--executor",
                                   "ray", "--results", str(tmp_path / "r"), "--data-dir",
                                   str(tmp_path / "d")])
    assert out.exit_code == 2, out.output
    assert sentence in " ".join(out.output.split())
    assert not (tmp_path / "r" / "runs").exists()
    assert ray.is_initialized()  # the cluster this process joined is left as it was


def test_real_evaluations_match_the_local_executor(cluster, tmp_path):
    """A real run (collection, training, two evaluations) under the local executor; then the
    same evaluations of the same checkpoint as Ray tasks: the same numbers."""
    import shutil

    from marlbench.plan import Plan

    suite = Suite.model_validate({
        "name": "real", "task_sets": ["marine_easy"], "qualities": ["scripted"], "seeds": [1],
        "algorithms": [{"name": "bc_t"}], "data": {"episodes": 32, "last_episodes": 32},
        "training": {"updates": 10, "batch_episodes": 8},
        "evaluation": {"episodes": 8, "interval": None}})
    full = make_plan(suite)
    keep = {j.id: j for j in full.jobs.values()
            if j.kind != "eval" or j.config["task"] in ("3m", "4m")}
    plan = Plan(suite, keep)
    data = tmp_path / "data"
    local = Store(tmp_path / "local", data)
    assert execute_local(plan, local, workers=1, threads=1, opts={"device": "cpu"}).ok
    shutil.copytree(tmp_path / "local", tmp_path / "ray",
                    ignore=lambda d, names: ["eval"] if Path(d).name == "runs" else [])
    remote = Store(tmp_path / "ray", data)
    summary = execute_ray(plan, remote, opts={"device": "cpu"}, threads=1)
    assert summary.ok and len(summary.done) == 2 and len(summary.already_done) == 4

    def numbers(store):
        return {jid: [{k: v for k, v in r.items() if k not in ("wall_time_s", "finished_at")}
                      for r in records] for jid, records in _records(store, plan).items()}

    assert len(numbers(remote)) == 2 and numbers(remote) == numbers(local)
