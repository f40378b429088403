"""GPUs on one machine (local executor), with a faked device count: which job saw which
CUDA_VISIBLE_DEVICES, how many shared a GPU, and that JAX never preallocates."""

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.executors.gpus import gpu_count, gpu_list, visible_device_ids
from marlbench.executors.local import execute
from marlbench.plan import make_plan
from marlbench.results.store import Store
from marlbench.suite import Suite

ENV = {"dataset": "fake_jobs:dataset", "train": "fake_jobs:train_env", "eval": "fake_jobs:eval_env"}


def _plan(seeds=(1, 2, 3, 4)):
    return make_plan(Suite.model_validate({
        "name": "t", "task_sets": ["marine_easy"], "qualities": ["scripted"],
        "seeds": list(seeds), "algorithms": [{"name": "bc_t"}], "training": {"updates": 4},
        "evaluation": {"interval": None},
    }))


def _seen(store, plan, kind):
    return {j.id: json.loads((store.job_dir(j) / "env.json").read_text())
            for j in plan.of_kind(kind)}


def test_training_spreads_over_gpus_and_shares_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    plan = _plan()
    store = Store(tmp_path / "results", tmp_path / "data")
    summary = execute(plan, store, workers=1, gpus_per_job=0.5,
                      opts={"job_functions": ENV, "sleep": 1.0})
    assert summary.ok
    trains = _seen(store, plan, "train")
    assert Counter(e["CUDA_VISIBLE_DEVICES"] for e in trains.values()) == {"0": 2, "1": 2}
    # 0.5 GPU per job: at most two worker processes per GPU, each pinned to one GPU
    pids = {}
    for e in trains.values():
        pids.setdefault(e["pid"], set()).add(e["CUDA_VISIBLE_DEVICES"])
    assert all(len(devices) == 1 for devices in pids.values())
    assert Counter(next(iter(d)) for d in pids.values())["0"] <= 2
    evals = _seen(store, plan, "eval")
    assert {e["CUDA_VISIBLE_DEVICES"] for e in evals.values()} == {""}  # CPU unless asked
    assert {e["XLA_PYTHON_CLIENT_PREALLOCATE"] for e in [*trains.values(), *evals.values()]} \
        == {"false"}


def test_eval_on_gpu_and_narrowed_parent_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the parent sees two of a machine's GPUs
    plan = _plan(seeds=(1, 2))
    store = Store(tmp_path / "results", tmp_path / "data")
    assert execute(plan, store, workers=1, eval_on_gpu=True, opts={"job_functions": ENV}).ok
    assert {e["CUDA_VISIBLE_DEVICES"] for e in _seen(store, plan, "train").values()} <= {"4", "6"}
    assert {e["CUDA_VISIBLE_DEVICES"] for e in _seen(store, plan, "eval").values()} <= {"4", "6"}


def test_no_gpus_or_cpu_device_leaves_environment_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    plan = _plan(seeds=(1,))
    store = Store(tmp_path / "results", tmp_path / "data")
    assert execute(plan, store, workers=1, opts={"job_functions": ENV, "device": "cpu"}).ok
    assert {e["CUDA_VISIBLE_DEVICES"] for e in _seen(store, plan, "train").values()} == {None}


def test_device_count_is_faked_and_checked(monkeypatch):
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "3")
    assert gpu_count() == 3 and len(gpu_list()) == 3
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_device_ids(3) == ["0", "1", "2"]
    from marlbench.errors import UserError

    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "lots")
    with pytest.raises(UserError, match="MARLBENCH_FAKE_GPUS"):
        gpu_count()


def test_doctor_lists_gpus(monkeypatch):
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "2")
    out = CliRunner().invoke(app, ["doctor"])
    assert "GPU 0" in out.output and "GPU 1" in out.output
    monkeypatch.setenv("MARLBENCH_FAKE_GPUS", "0")
    assert "none found" in CliRunner().invoke(app, ["doctor"]).output


@pytest.mark.parametrize("args, words", [
    (["--gpus-per-job", "0"], "--gpus-per-job 0.0: give a share of one GPU"),
    (["--gpus-per-job", "1.5"], "--gpus-per-job"),
    (["--gpus-per-job", "nan"], "--gpus-per-job"),
    (["--address", "auto"], "apply to --executor ray only"),
    (["--retries", "3"], "apply to --executor ray only"),
    (["--executor", "slurm"], "choose local or ray"),
    (["--executor", "ray", "--eval-on-gpu"], "apply to the local executor"),
    (["--executor", "ray", "--address", "not an address"], "use auto or HOST:PORT"),
    (["--executor", "ray", "--address", "h:99999"], "use auto or HOST:PORT"),
    (["--executor", "ray", "--retries", "-1"], "--retries"),
])
def test_executor_options_checked_at_the_door(tmp_path, args, words):
    out = CliRunner().invoke(app, ["run", "suites/smoke.yaml", "--results",
                                   str(tmp_path / "r"), *args])
    assert out.exit_code == 2, out.output
    assert words in out.output
    assert not (tmp_path / "r").exists()
