"""Stand-in job functions for executor tests (imported by name in worker processes)."""

from marlbench.results.store import write_json


def dataset(job, out, store, opts, progress):
    progress(1, 1, "fake data")
    (out / "part_0.h5").write_bytes(b"x")
    write_json(out / "manifest.json", {"parts": []})  # the commit mark of a dataset


def train(job, out, store, opts, progress):
    if job.config["seed"] == 2:
        raise RuntimeError("deliberate failure for seed 2")
    (out / "checkpoints").mkdir(exist_ok=True)


def eval(job, out, store, opts, progress):  # noqa: A001 - mirrors the job kind
    write_json(out / "records.json", [{"task": job.config["task"]}])
