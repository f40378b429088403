"""The local executor: dependency order, failure isolation, resume, worker processes."""

import pytest

from marlbench.executors.local import execute
from marlbench.plan import make_plan
from marlbench.results.store import Store
from marlbench.suite import Suite

FAKE = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}


def _plan():
    return make_plan(Suite.model_validate({
        "name": "t", "task_sets": ["marine_easy"], "qualities": ["scripted"], "seeds": [1, 2],
        "algorithms": [{"name": "bc_t"}], "training": {"updates": 4},
        "evaluation": {"interval": None},
    }))


@pytest.mark.parametrize("workers", [0, 2])
def test_failing_job_does_not_stop_independent_ones(tmp_path, workers):
    plan = _plan()
    store = Store(tmp_path / "results", tmp_path / "data")
    summary = execute(plan, store, workers=workers, opts={"job_functions": FAKE})
    failed = [plan.jobs[j] for j in summary.failed]
    assert [j.config["seed"] for j in failed] == [2]
    assert "deliberate failure" in summary.failed[failed[0].id]["error"]
    assert (store.job_dir(failed[0]) / "log.txt").read_text().count("deliberate failure") >= 1
    # seed 2's evaluations are skipped; seed 1's all ran
    assert len(summary.skipped) == 10
    evals_done = [plan.jobs[j] for j in summary.done if plan.jobs[j].kind == "eval"]
    assert len(evals_done) == 10 and {j.config["seed"] for j in evals_done} == {1}
    assert not summary.ok


def test_second_run_executes_zero_jobs(tmp_path):
    plan = _plan()
    store = Store(tmp_path / "results", tmp_path / "data")
    first = execute(plan, store, workers=0, opts={"job_functions": FAKE})
    second = execute(plan, store, workers=0, opts={"job_functions": FAKE})
    assert len(second.done) == 0
    assert len(second.already_done) == len(first.done)
    # the failed job is retried on the next run, and fails again
    assert list(second.failed) == list(first.failed)


def test_threads_per_worker_are_set_and_recorded(tmp_path):
    import json

    plan = _plan()
    store = Store(tmp_path / "results", tmp_path / "data")
    execute(plan, store, workers=1, opts={"job_functions": FAKE}, threads=1)
    statuses = [json.loads((store.job_dir(j) / "status.json").read_text())
                for j in plan.jobs.values() if (store.job_dir(j) / "status.json").exists()]
    assert statuses and {s["torch_threads"] for s in statuses} == {1}


_ORPHAN_PARENT = """
import os, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from marlbench.executors.worker import init_worker

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=init_worker,
                               initargs=(1, None, None))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(0.5)
    os._exit(0)  # as if killed: no pool shutdown
"""


def test_workers_end_when_their_run_is_killed(tmp_path):
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(_ORPHAN_PARENT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True)
    worker = int(out.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, 9)
    pytest.fail("the worker outlived its killed run")


def test_a_job_running_elsewhere_is_refused_and_left_alone(tmp_path):
    """A second process given a job whose folder another process holds (an orphaned worker,
    a second run on the same results) fails it without touching the folder."""
    import fcntl
    import os

    from marlbench.jobs import LOCK, run_job

    plan = _plan()
    store = Store(tmp_path / "results", tmp_path / "data")
    job = next(j for j in plan.jobs.values() if j.kind == "dataset")
    out = store.job_dir(job)
    out.mkdir(parents=True)
    (out / "part_0.h5.tmp").write_text("the other process's file in progress")
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the other process, running it
    try:
        before = sorted(p.name for p in out.iterdir())
        status = run_job(job.to_dict(), str(store.results_dir), str(store.data_dir),
                         {"job_functions": FAKE})
        assert status["state"] == "failed" and "another process" in status["error"]
        assert sorted(p.name for p in out.iterdir()) == before  # nothing removed or written
    finally:
        os.close(fd)
    status = run_job(job.to_dict(), str(store.results_dir), str(store.data_dir),
                     {"job_functions": FAKE})
    assert status["state"] == "done"  # once it is free, the job runs

