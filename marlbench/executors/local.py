"""Local executor: the shared scheduler (:mod:`marlbench.executors.scheduler`) over worker
processes of this machine, or over this process itself (``workers=0``, for debugging).

GPUs on one machine. torch reads ``CUDA_VISIBLE_DEVICES`` once per process, when CUDA
initialises, and a pool's worker process is reused for many jobs, so a job cannot be moved to
another GPU by changing the environment per job. Instead every GPU gets its own pool of
``floor(1 / gpus_per_job)`` worker processes, each pinned to that GPU by its initializer (which
sets ``CUDA_VISIBLE_DEVICES`` before torch touches CUDA); the pinned process sees its GPU as
``cuda:0``. The scheduler routes a GPU job (train, behaviour; eval with ``eval_on_gpu``) to the
least-loaded GPU that has a free slot and holds it back while every slot is busy, so at most
``floor(1 / gpus_per_job)`` jobs share a GPU. The other jobs (datasets; evaluations unless
``eval_on_gpu``) run in the CPU pool of ``workers`` processes, which see no GPU
(``CUDA_VISIBLE_DEVICES=""``). Spreading applies when the device is ``auto`` or ``cuda``; an
explicit ``cuda:N`` keeps every job on that device as before; ``cpu`` uses no GPU. No worker
process lets JAX preallocate GPU memory (``XLA_PYTHON_CLIENT_PREALLOCATE=false``).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from rich.console import Console

from marlbench.executors.gpus import gpu_count, visible_device_ids
from marlbench.executors.scheduler import OnProgress, Pool, RunSummary, schedule
from marlbench.executors.worker import init_worker, run_group_in_worker, run_in_worker
from marlbench.plan import Job, Plan
from marlbench.results.store import Store

__all__ = ["RunSummary", "execute", "InlinePool", "ProcessPool"]

GPU_KINDS = ("train", "behaviour")  # job kinds that train a network
# Workers live for the whole run. Not ``max_tasks_per_child``: tried on Python 3.11.7, a pool
# that replaced its workers stopped dispatching (a quick main run sat idle, jobs pending).


class InlinePool(Pool):
    """Jobs run one after the other in this process (``--workers 0``)."""

    fuses = True

    def __init__(self, store: Store, opts: dict, threads: int | None = None):
        self.store, self.opts, self.threads = store, opts, threads
        self.queue: deque[Job | list[Job]] = deque()

    def start(self, on_progress: OnProgress) -> None:
        self.on_progress = on_progress
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def submit_group(self, jobs: list[Job]) -> None:
        self.queue.append(jobs)

    def wait(self) -> list[tuple[str, dict]]:
        from marlbench.jobs import run_jobs

        item = self.queue.popleft()
        jobs = item if isinstance(item, list) else [item]
        statuses = run_jobs(
            [j.to_dict() for j in jobs], str(self.store.results_dir), str(self.store.data_dir),
            self.opts, lambda jid: lambda d, t, w: self.on_progress(jid, d, t, w))
        return [(j.id, s) for j, s in zip(jobs, statuses, strict=True)]

    def close(self, cancel: bool = False) -> None:
        self.queue.clear()


class ProcessPool(Pool):
    """``workers`` CPU worker processes, plus ``floor(1 / gpus_per_job)`` processes per GPU
    when ``gpus`` > 0 (see the module docstring)."""

    def __init__(self, store: Store, opts: dict, workers: int, threads: int | None = None,
                 gpus: int = 0, gpus_per_job: float = 1.0, eval_on_gpu: bool = False):
        self.store, self.opts = store, opts
        self.workers = workers
        self.gpus = gpus
        self.slots = max(1, math.floor(1 / gpus_per_job + 1e-9)) if gpus else 0
        self.gpu_kinds = GPU_KINDS + (("eval",) if eval_on_gpu else ())
        cores = os.cpu_count() or 1
        self.cpu_threads = threads or max(1, cores // workers)
        self.gpu_threads = threads or max(1, cores // (workers + gpus * self.slots))
        self.load = [0] * gpus  # running jobs (groups) per GPU
        self.running: dict[Future, tuple[list[Job], int | None]] = {}

    def start(self, on_progress: OnProgress) -> None:
        ctx = mp.get_context("spawn")
        self.progress_queue = ctx.Queue()
        self.stop = threading.Event()

        def drain() -> None:
            while not self.stop.is_set():
                try:
                    msg = self.progress_queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                on_progress(*msg)

        self.drainer = threading.Thread(target=drain, daemon=True)
        self.drainer.start()
        no_gpu = "" if self.gpus else None  # with GPUs in use, CPU workers see none
        self.cpu_pool = ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=init_worker,
            initargs=(self.cpu_threads, self.progress_queue, no_gpu))
        self.gpu_pools = [
            ProcessPoolExecutor(self.slots, mp_context=ctx, initializer=init_worker,
                                initargs=(self.gpu_threads, self.progress_queue, device))
            for device in visible_device_ids(self.gpus)
        ]

    def _on_gpu(self, job: Job) -> bool:
        return bool(self.gpus) and job.kind in self.gpu_kinds

    def has_room(self, job: Job) -> bool:
        return not self._on_gpu(job) or min(self.load) < self.slots

    fuses = True

    def submit(self, job: Job) -> None:
        self._submit([job])

    def submit_group(self, jobs: list[Job]) -> None:
        self._submit(jobs)

    def _submit(self, jobs: list[Job]) -> None:
        """One job, or a fused group in one worker (one GPU slot)."""
        dirs = (str(self.store.results_dir), str(self.store.data_dir), self.opts)
        if len(jobs) == 1:
            fn, args = run_in_worker, (jobs[0].to_dict(), *dirs)
        else:
            fn, args = run_group_in_worker, ([j.to_dict() for j in jobs], *dirs)
        gpu = None
        if self._on_gpu(jobs[0]):
            gpu = self.load.index(min(self.load))
            self.load[gpu] += 1
            fut = self.gpu_pools[gpu].submit(fn, *args)
        else:
            fut = self.cpu_pool.submit(fn, *args)
        self.running[fut] = (jobs, gpu)

    def wait(self) -> list[tuple[str, dict]]:
        done, _ = wait(self.running, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            jobs, gpu = self.running.pop(fut)
            if gpu is not None:
                self.load[gpu] -= 1
            try:
                result = fut.result()
                statuses = result if isinstance(result, list) else [result]
            except Exception as exc:  # the worker process itself died
                statuses = [{"state": "failed", "error": f"worker crashed: {exc}",
                             "log": str(self.store.job_dir(job) / "log.txt")} for job in jobs]
            out.extend((j.id, s) for j, s in zip(jobs, statuses, strict=True))
        return out

    def close(self, cancel: bool = False) -> None:
        try:
            for pool in [self.cpu_pool, *self.gpu_pools]:
                pool.shutdown(wait=True, cancel_futures=cancel)
        finally:
            self.stop.set()
            self.drainer.join(timeout=2)


def execute(
    plan: Plan,
    store: Store,
    workers: int = 1,
    opts: dict | None = None,
    console: Console | None = None,
    threads: int | None = None,
    gpus_per_job: float = 1.0,
    eval_on_gpu: bool = False,
    gpus: int | None = None,
    fuse: int = 1,
) -> RunSummary:
    """Run every job of ``plan`` that is not done yet. A failed job's dependents are skipped;
    independent jobs continue. ``workers=0`` runs jobs in this process (for debugging, on one
    device). ``gpus``: the GPU count (default: :func:`gpu_count`); training spreads over them
    when the device is ``auto`` or ``cuda``. ``fuse``: the most train jobs trained fused in
    one worker (1: none)."""
    opts = dict(opts or {})
    if workers <= 0:
        return schedule(plan, store, InlinePool(store, opts, threads), console, fuse)
    if gpus is None:
        gpus = gpu_count() if opts.get("device", "auto") in ("auto", "cuda") else 0
    pool = ProcessPool(store, opts, workers, threads, gpus, gpus_per_job, eval_on_gpu)
    return schedule(plan, store, pool, console, fuse)
