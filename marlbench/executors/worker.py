"""What runs inside a local worker process. This module imports nothing heavy at the top, so
that :func:`init_worker` sets the process's environment (its GPU, no JAX preallocation) before
torch or JAX are imported or initialise a device."""

from __future__ import annotations

import os

_QUEUE = None  # progress queue inside a worker process

NO_PREALLOCATE = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # JAX takes 75 % of a GPU otherwise


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker when the process that started it is gone: a run killed with SIGKILL
    (or SIGTERM, which the pool never hears of) would otherwise leave its workers training
    and writing beside the run that resumes it. Outputs are written atomically, so nothing
    half-written stays behind."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(threads: int, progress_queue, cuda_visible_devices: str | None = None) -> None:
    """Initializer of a worker process: called once, before its first job. torch reads
    ``CUDA_VISIBLE_DEVICES`` once, when CUDA initialises (not at import), so setting it here pins
    the process to one GPU (``""``: no GPU) for its whole life."""
    global _QUEUE
    _QUEUE = progress_queue
    _exit_with_parent(os.getppid())
    os.environ.update(NO_PREALLOCATE)
    if cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    if threads == 1:
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import torch

    assert not torch.cuda.is_initialized(), "CUDA initialised before the worker chose its GPU"
    torch.set_num_threads(threads)


def run_in_worker(job_dict: dict, results_dir: str, data_dir: str, opts: dict) -> dict:
    from marlbench.jobs import run_job

    jid = job_dict["id"]

    def progress(done: int, total: int, what: str) -> None:
        if _QUEUE is not None:
            _QUEUE.put((jid, done, total, what))

    return run_job(job_dict, results_dir, data_dir, opts, progress)


def run_group_in_worker(job_dicts: list[dict], results_dir: str, data_dir: str,
                        opts: dict) -> list[dict]:
    """A fused group of train jobs (:func:`marlbench.jobs.run_jobs`) in this worker."""
    from marlbench.jobs import run_jobs

    def progress_for(jid: str):
        def progress(done: int, total: int, what: str) -> None:
            if _QUEUE is not None:
                _QUEUE.put((jid, done, total, what))

        return progress

    return run_jobs(job_dicts, results_dir, data_dir, opts, progress_for)
