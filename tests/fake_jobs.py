"""Stand-in job functions for executor tests (imported by name in worker processes). Each
writes outputs that pass the store's checks (a job is done only when they are present and
valid), without collecting, training or evaluating anything."""

import hashlib

import torch

from marlbench.results.store import write_json


def dataset(job, out, store, opts, progress):
    progress(1, 1, "fake data")
    (out / "part_0.h5").write_bytes(b"x")
    c = job.config
    write_json(out / "manifest.json", {  # the commit mark of a dataset
        "format": "odis-hdf5", "task": c["task"], "backend": c["backend"],
        "quality": c["quality"], "behaviour_policy": {"name": "fake"}, "episodes": 1,
        "mean_return": 0.0, "win_rate": None, "collection_seed": c["seed"],
        "episode_length": {"mean": 1.0, "min": 1, "max": 1, "unit": "filled rows"},
        "parts": [{"file": "part_0.h5", "sha256": hashlib.sha256(b"x").hexdigest()}],
        "marlbench_version": "0", "wall_time_s": 0.0, "created_at": "2026-12-01T00:00:00"})


def train(job, out, store, opts, progress):
    if job.config["seed"] == 2:
        raise RuntimeError("deliberate failure for seed 2")
    (out / "checkpoints").mkdir(exist_ok=True)
    for step in job.config["checkpoint_steps"]:
        torch.save({"step": step}, out / "checkpoints" / f"step_{step}.pt")
    (out / "metrics.jsonl").write_text("")


def eval(job, out, store, opts, progress):  # noqa: A001 - mirrors the job kind
    c = job.config
    write_json(out / "records.json", [{
        "suite": opts.get("suite"), "algorithm": c["algorithm"], "label": c["label"],
        "task_set": c["task_set"], "quality": c["quality"], "seed": c["seed"],
        "task": c["task"], "split": c["split"], "step": c["step"], "win_rate": 0.5,
        "mean_return": 1.0, "episodes": c["episodes"], "wall_time_s": 0.0,
        "backend": c["backend"], "versions": {}, "config_hash": c["train"], "job_id": job.id,
        "finished_at": "2026-12-01T00:00:00"}])


def _environment(out):
    import os

    write_json(out / "env.json", {
        "pid": os.getpid(),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")})


def train_env(job, out, store, opts, progress):
    """A train job that never fails and records the environment its worker gave it."""
    import time

    _environment(out)
    time.sleep(float(opts.get("sleep", 0.0)))  # lets jobs overlap, so slots are shared
    (out / "checkpoints").mkdir(exist_ok=True)
    for step in job.config["checkpoint_steps"]:
        torch.save({"step": step}, out / "checkpoints" / f"step_{step}.pt")
    (out / "metrics.jsonl").write_text("")


def eval_env(job, out, store, opts, progress):
    _environment(out)
    eval(job, out, store, opts, progress)


def train_killable(job, out, store, opts, progress):
    """First attempt of each train job: leave a half-written checkpoint and a pid file, then
    wait to be killed; later attempts train normally (or wait too, with opts["hang_always"])."""
    import os
    import time
    from pathlib import Path

    marks = Path(opts["marks"])
    attempts = sorted(marks.glob(f"{job.id}.*.pid"))
    (marks / f"{job.id}.{len(attempts)}.pid").write_text(str(os.getpid()))
    if not attempts or opts.get("hang_always"):
        (out / "checkpoints").mkdir(exist_ok=True)
        (out / "checkpoints" / ".step_4.pt.123.tmp").write_bytes(b"half")
        (out / "checkpoints" / "step_4.pt").write_bytes(b"stale")
        time.sleep(120)
    train_env(job, out, store, opts, progress)
