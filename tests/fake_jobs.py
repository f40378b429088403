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
