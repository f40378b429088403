"""Fused groups through the real pipeline: the executor groups train jobs that differ only in
data quality, their outputs equal unfused runs', a killed group resumes, and a job that fails
in a group fails alone."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ODIS
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.executors.local import InlinePool, execute
from marlbench.executors.scheduler import schedule
from marlbench.plan import Job, Plan, make_plan
from marlbench.results.store import Store
from marlbench.suite import Suite

runner = CliRunner()
SUITE = {
    "name": "fused", "backend": "grid", "task_sets": ["cn"], "qualities": ["expert", "medium"],
    "seeds": [1], "algorithms": [{"name": "bc_t"}, {"name": "bc_r"}],
    "data": {"imported": {"cn": "odis"}, "last_episodes": 64},
    "training": {"updates": 8, "batch_episodes": 4},
    "evaluation": {"episodes": 4, "interval": 4},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    if not ODIS.exists():
        pytest.skip("ODIS samples not present")
    d = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "import", "odis", str(ODIS), "--data-dir", str(d)])
    assert result.exit_code == 0, result.output
    return d


def _plan(data_dir: Path, **training) -> Plan:
    suite = json.loads(json.dumps(SUITE))
    suite["training"].update(training)
    return make_plan(Suite.model_validate(suite), data_dir)


def _train_outputs(store: Store, plan: Plan) -> dict:
    """Per train job: its metrics (no timings) and its checkpoints' tensors."""
    out = {}
    for job in plan.of_kind("train"):
        d = store.job_dir(job)
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        ckpts = {p.name: torch.load(p)["learner"] for p in sorted(d.glob("checkpoints/*.pt"))}
        out[job.id] = ([{k: v for k, v in r.items() if k != "time_s"} for r in rows], ckpts)
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for jid in a:
        rows_a, ck_a = a[jid]
        rows_b, ck_b = b[jid]
        assert len(rows_a) == len(rows_b) and ck_a.keys() == ck_b.keys()
        for x, y in zip(rows_a, rows_b, strict=True):
            assert x.keys() == y.keys()
            for k in x:
                assert x[k] == (y[k] if isinstance(x[k], str) else pytest.approx(y[k], rel=1e-4))
        for name in ck_a:
            for net, tensors in ck_a[name]["agent"].items():
                _assert_float_order_close(tensors, ck_b[name]["agent"][net])


def _assert_float_order_close(a, b) -> None:
    """Same weights up to float summation order. Fused linears multiply flattened inputs, so
    gradients differ in the last bits; Adam divides by sqrt(v), which lifts that noise to up to
    one learning rate on a weight whose gradient is near zero. So: every weight within 1e-4
    (about a step of lr 5e-4 at most), and at most 0.1% of them beyond 1e-5."""
    a = a if isinstance(a, dict) else {"": a}
    b = b if isinstance(b, dict) else {"": b}
    assert a.keys() == b.keys()
    for k in a:
        diff = (a[k] - b[k]).abs()
        assert diff.max() <= 1e-4, (k, diff.max())
        assert (diff > 1e-5).float().mean() <= 1e-3, (k, (diff > 1e-5).sum())


class RecordingPool(InlinePool):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.groups: list[list[str]] = []

    def submit(self, job):
        self.groups.append([job.id])
        super().submit(job)

    def submit_group(self, jobs):
        self.groups.append([j.id for j in jobs])
        super().submit_group(jobs)


def test_fused_runs_equal_unfused_ones_and_group_by_quality(data_dir, tmp_path):
    plan = _plan(data_dir)
    alone = Store(tmp_path / "alone", data_dir)
    assert execute(plan, alone, workers=0, fuse=1).ok
    fused = Store(tmp_path / "fused", data_dir)
    pool = RecordingPool(fused, {})
    assert schedule(plan, fused, pool, fuse=4).ok
    trains = {j.id: j for j in plan.of_kind("train")}
    groups = [g for g in pool.groups if g[0] in trains]
    assert sorted(len(g) for g in groups) == [2, 2]  # per algorithm: expert + medium
    for g in groups:
        assert {trains[j].config["quality"] for j in g} == {"expert", "medium"}
        assert len({trains[j].config["algorithm"] for j in g}) == 1
        log = (fused.job_dir(trains[g[0]]) / "log.txt").read_text()
        assert "fused: 2 jobs (" in log and "expert" in log and "medium" in log
    _assert_same(_train_outputs(alone, plan), _train_outputs(fused, plan))
    # the evaluations of both runs agree too
    recs = {}
    for store in (alone, fused):
        recs[store] = sorted((r["task"], r["quality"], r["algorithm"], r["step"], r["win_rate"],
                              r["mean_return"]) for r in _records(store, plan))
    assert recs[alone] == recs[fused] and len(recs[alone]) == 2 * 2 * 4 * 2


def test_a_ready_train_job_waits_for_its_siblings_data():
    """Two train jobs of one key, each behind its own dataset job: they go out together."""
    suite = Suite.model_validate({
        "name": "t", "task_sets": ["marine_easy"], "qualities": ["scripted"], "seeds": [1],
        "algorithms": [{"name": "bc_t"}], "training": {"updates": 4},
        "evaluation": {"interval": None}})
    base = {"algorithm": "bc_t", "label": "BC-t", "seed": 1, "updates": 4,
            "checkpoint_steps": [4]}
    d1 = Job("dataset", {"task": "3m", "quality": "a", "backend": "smax", "seed": 0})
    d2 = Job("dataset", {"task": "3m", "quality": "b", "backend": "smax", "seed": 0,
                         "slow": True})
    t1 = Job("train", {**base, "quality": "a", "datasets": {"3m": [d1.id]}}, [d1.id])
    t2 = Job("train", {**base, "quality": "b", "datasets": {"3m": [d2.id]}}, [d2.id])
    plan = Plan(suite, {j.id: j for j in (d1, d2, t1, t2)})

    class Pool(RecordingPool):
        def wait(self):
            job = self.queue.popleft()
            return [(j.id, {"state": "done"}) for j in (job if isinstance(job, list) else [job])]

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "r", Path(tmp) / "d")
        pool = Pool(store, {})
        assert schedule(plan, store, pool, fuse=4).ok
        assert [t1.id, t2.id] in pool.groups or [t2.id, t1.id] in pool.groups
        pool = Pool(store, {})
        schedule(plan, Store(Path(tmp) / "r2", Path(tmp) / "d"), pool, fuse=1)
        assert all(len(g) == 1 for g in pool.groups)


def test_one_job_failing_in_a_group_leaves_the_others_finishing(data_dir, tmp_path):
    plan = _plan(data_dir)
    broken = tmp_path / "data"
    subprocess.run(["cp", "-r", str(data_dir), str(broken)], check=True)
    medium = next(broken.glob("odis/cn-2/medium/*/part_0.h5"))
    medium.write_bytes(medium.read_bytes()[:100])  # truncated: its sha256 no longer matches
    store = Store(tmp_path / "r", broken)
    summary = execute(plan, store, workers=0, fuse=4)
    failed = {plan.jobs[j].config["quality"] for j in summary.failed}
    assert failed == {"medium"} and len(summary.failed) == 2  # one per algorithm
    done = [plan.jobs[j] for j in summary.done if plan.jobs[j].kind == "train"]
    assert {j.config["quality"] for j in done} == {"expert"} and len(done) == 2


def test_a_fused_training_error_reruns_each_job_alone(data_dir, tmp_path, monkeypatch):
    from marlbench.learners import base

    def broken(*a, **kw):
        raise RuntimeError("deliberate fused failure")

    monkeypatch.setattr(base, "fuse", broken)  # only a group of several fuses
    plan = _plan(data_dir)
    store = Store(tmp_path / "r", data_dir)
    assert execute(plan, store, workers=0, fuse=4).ok
    job = plan.of_kind("train")[0]
    assert "deliberate fused failure" not in (store.job_dir(job) / "log.txt").read_text()
    assert "fused" not in (store.job_dir(job) / "log.txt").read_text()  # trained alone
    assert store.is_done(job)


_RUN = """
import sys
from pathlib import Path
from marlbench.executors.local import execute
from marlbench.plan import make_plan
from marlbench.results.store import Store
from marlbench.suite import Suite
import json
suite = json.loads(sys.argv[1])
plan = make_plan(Suite.model_validate(suite), Path(sys.argv[2]))
execute(plan, Store(Path(sys.argv[3]), Path(sys.argv[2])), workers=0, fuse=4, threads=1)
"""


def test_a_fused_group_killed_midway_resumes_to_the_uninterrupted_result(data_dir, tmp_path):
    suite = json.loads(json.dumps(SUITE))
    suite["algorithms"] = [{"name": "bc_t"}]
    suite["training"] = {"updates": 80, "batch_episodes": 4}
    suite["evaluation"] = {"episodes": 4, "interval": 40}
    plan = make_plan(Suite.model_validate(suite), data_dir)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _RUN, json.dumps(suite), str(data_dir),
                             str(killed)])
    metrics = [Store(killed, data_dir).job_dir(j) / "metrics.jsonl"
               for j in plan.of_kind("train")]
    deadline = time.time() + 120
    while time.time() < deadline and not all(
            m.exists() and m.read_text().count("\n") >= 2 for m in metrics):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(killed, data_dir)
    assert not any(store.is_done(j) for j in plan.of_kind("train"))
    subprocess.run([sys.executable, "-c", _RUN, json.dumps(suite), str(data_dir), str(killed)],
                   check=True)
    whole = tmp_path / "whole"
    subprocess.run([sys.executable, "-c", _RUN, json.dumps(suite), str(data_dir), str(whole)],
                   check=True)
    a, b = Store(killed, data_dir), Store(whole, data_dir)
    assert all(a.is_done(j) for j in plan.jobs.values())
    for job in plan.of_kind("train"):
        for ck in sorted(b.job_dir(job).glob("checkpoints/*.pt")):
            x = torch.load(ck)["learner"]["agent"]
            y = torch.load(a.job_dir(job) / "checkpoints" / ck.name)["learner"]["agent"]
            assert all(torch.equal(x[k], y[k]) for k in x)
    rec = sorted(json.dumps(r, sort_keys=True) for r in _stable(_records(a, plan)))
    assert rec == sorted(json.dumps(r, sort_keys=True) for r in _stable(_records(b, plan)))


def _records(store: Store, plan: Plan) -> list[dict]:
    return [r for j in plan.of_kind("eval")
            for r in json.loads((store.job_dir(j) / "records.json").read_text())]


def _stable(records):
    drop = ("wall_time_s", "finished_at")
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.mark.parametrize("argv,message", [
    (["--executor", "ray", "--fuse", "2"], "--fuse applies to the local executor"),
    (["--fuse", "0"], "--fuse"),
    (["--fuse", "65"], "--fuse"),
])
def test_fuse_option_is_checked_at_the_door(root, argv, message):
    result = runner.invoke(app, ["run", str(root / "suites" / "smoke.yaml"), "--dry-run",
                                 *argv])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
