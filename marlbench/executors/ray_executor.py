"""Ray executor: marlbench's scheduler (:mod:`marlbench.executors.scheduler`) over a Ray
cluster, which is only the resource-aware pool. Every ready job becomes one Ray task running
:func:`marlbench.jobs.run_job`, the same job function as under the local executor.

- Resources per task come from the suite's ``resources`` (:class:`marlbench.suite.JobResources`,
  never part of a job id): CPUs, GPUs (fractions share a GPU; Ray sets ``CUDA_VISIBLE_DEVICES``
  per task) and custom resources. Train jobs ask for 0.25 GPU by default only when the cluster
  has GPUs and the device is not ``cpu``; otherwise 0. On the ``sc2`` backend the jobs that play
  StarCraft II (behaviour, dataset, eval) also ask for ``sc2: 1``.
- A job that asks for what no live node has (a GPU on a CPU-only cluster, more CPUs than the
  largest node) is refused before anything runs (:class:`UserError`, exit 2): Ray would leave
  it pending forever.
- A task whose worker process or node dies is retried by Ray up to ``retries`` times (each
  attempt starts clean, see :func:`marlbench.jobs._start_clean`); after that the job is
  recorded as failed with the reason (``status.json``), and its dependents are skipped.
- Per-job progress comes back through a small actor that keeps the latest (done, total) of
  each running job; tasks send at most two updates a second and the driver polls twice a
  second, so the bars are as in the local executor, a little coarser.
- A task that uses a GPU runs in a fresh worker process (``max_calls=1``): torch reads
  ``CUDA_VISIBLE_DEVICES`` once per process, and the GPU's memory is released after the job.
  CPU-only tasks hide every GPU (``CUDA_VISIBLE_DEVICES=""``); no task lets JAX preallocate GPU
  memory.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from rich.console import Console

from marlbench.errors import UserError
from marlbench.executors.scheduler import OnProgress, Pool, RunSummary, schedule
from marlbench.executors.worker import NO_PREALLOCATE
from marlbench.plan import Job, Plan
from marlbench.results.store import Store, write_json
from marlbench.suite import DEFAULT_TRAIN_GPUS, Suite

SC2_KINDS = ("behaviour", "dataset", "eval")  # jobs that play StarCraft II
PROGRESS_EVERY_S = 0.5


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'marlbench[ray]' (or pip install "
                        "-c constraints.txt ray==2.60.0)") from None
    return ray


def job_resources(suite: Suite, kind: str, cluster_gpus: float, device: str) -> dict:
    """``{"CPU": c, "GPU": g, **custom}`` that one job of ``kind`` asks for."""
    spec = getattr(suite.resources, kind)
    gpus = spec.gpus
    if gpus is None:
        gpus = DEFAULT_TRAIN_GPUS if kind == "train" and cluster_gpus > 0 and device != "cpu" else 0
    out = {"CPU": spec.cpus, "GPU": gpus, **spec.custom}
    if suite.backend == "sc2" and kind in SC2_KINDS:
        out.setdefault("sc2", 1.0)
    return out


def _amount(x: float) -> str:
    return f"{x:g}"


def check_feasible(requests: dict[str, dict], nodes: list[dict]) -> None:
    """Refuse, with one sentence naming the job kind and the missing resource, any request
    that no live node of the cluster can ever satisfy."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    for kind, want in requests.items():
        asked = {k: v for k, v in want.items() if v > 0}
        if any(all(node.get(k, 0) >= v for k, v in asked.items()) for node in alive):
            continue
        for name, amount in asked.items():
            best = max((node.get(name, 0) for node in alive), default=0)
            if best >= amount:
                continue
            if best == 0:
                what = {"GPU": "a GPU", "CPU": "a CPU"}.get(name, f"the resource {name!r}")
                hint = (" (start its nodes with ray start --resources '{\"sc2\": N}')"
                        if name == "sc2" else "")
                raise UserError(f"{kind} jobs ask for {_amount(amount)} {name} each, but no node "
                                f"of the Ray cluster has {what}{hint}; set resources.{kind} in "
                                "the suite or add such nodes")
            raise UserError(f"{kind} jobs ask for {_amount(amount)} {name} each, but the largest "
                            f"node of the Ray cluster has {_amount(best)} {name}; lower "
                            f"resources.{kind} in the suite or add larger nodes")
        raise UserError(f"{kind} jobs ask for "
                        + ", ".join(f"{_amount(v)} {k}" for k, v in asked.items())
                        + " each, but no single node of the Ray cluster has all of them together")


def _run_task(job_dict: dict, results_dir: str, data_dir: str, opts: dict, threads: int,
              uses_gpu: bool, box) -> dict:
    """The body of one Ray task: the job function, with its environment set first."""
    os.environ.update(NO_PREALLOCATE)
    if not uses_gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    torch.set_num_threads(threads)
    from marlbench.jobs import run_job

    jid = job_dict["id"]
    last = [0.0]

    def progress(done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            box.put.remote(jid, done, total, what)

    return run_job(job_dict, results_dir, data_dir, opts, progress)


class _ProgressBox:
    """Actor: the latest progress of each running job, taken by the driver."""

    def __init__(self):
        self.latest: dict[str, tuple] = {}

    def put(self, jid: str, done: int, total: int, what: str) -> None:
        self.latest[jid] = (done, total, what)

    def take(self) -> dict[str, tuple]:
        out, self.latest = self.latest, {}
        return out


class RayPool(Pool):
    def __init__(self, plan: Plan, store: Store, opts: dict, address: str | None = None,
                 retries: int = 2, threads: int | None = None):
        self.ray = import_ray()
        self.plan, self.store = plan, store
        self.opts = dict(opts)
        if str(self.opts.get("device", "auto")).startswith("cuda:"):
            self.opts["device"] = "cuda"  # Ray picks the GPU; the task sees it as cuda:0
        self.address, self.retries, self.threads = address, retries, threads
        self.started_here = False
        self.refs: dict = {}  # ObjectRef -> Job
        self.box = None

    def prepare(self, jobs: list[Job]) -> None:
        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None and self.plan.suite.backend == "sc2":
                kwargs["resources"] = {"sc2": float(os.cpu_count() or 1)}
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise UserError(f"--address {self.address}: no Ray cluster there ({exc})") from None
            self.started_here = True
        try:
            cluster_gpus = ray.cluster_resources().get("GPU", 0)
            device = str(self.opts.get("device", "auto"))
            kinds = sorted({j.kind for j in jobs})
            self.requests = {k: job_resources(self.plan.suite, k, cluster_gpus, device)
                             for k in kinds}
            check_feasible(self.requests, ray.nodes())
        except BaseException:
            self.close()
            raise

    def start(self, on_progress: OnProgress) -> None:
        ray = self.ray
        self.task = ray.remote(_run_task)
        self.gpu_task = ray.remote(max_calls=1)(_run_task)  # a fresh process per GPU job
        self.box = ray.remote(num_cpus=0)(_ProgressBox).remote()
        self.stop = threading.Event()

        def poll() -> None:
            while not self.stop.wait(PROGRESS_EVERY_S):
                try:
                    latest = ray.get(self.box.take.remote(), timeout=10)
                except Exception:  # progress is best effort; the run goes on
                    continue
                for jid, (done, total, what) in latest.items():
                    on_progress(jid, done, total, what)

        self.poller = threading.Thread(target=poll, daemon=True)
        self.poller.start()

    def submit(self, job: Job) -> None:
        want = self.requests[job.kind]
        gpus = want["GPU"]
        custom = {k: v for k, v in want.items() if k not in ("CPU", "GPU")}
        threads = self.threads or max(1, int(want["CPU"]))
        ref = (self.gpu_task if gpus else self.task).options(
            num_cpus=want["CPU"], num_gpus=gpus, resources=custom, max_retries=self.retries,
            retry_exceptions=False, name=job.title,
        ).remote(job.to_dict(), str(Path(self.store.results_dir).resolve()),
                 str(Path(self.store.data_dir).resolve()), self.opts, threads, bool(gpus),
                 self.box)
        self.refs[ref] = job

    def _failed(self, job: Job, exc: BaseException) -> dict:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        tries = f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}"
        out = self.store.job_dir(job)
        status = {"id": job.id, "kind": job.kind, "title": job.title, "state": "failed",
                  "error": f"{type(exc).__name__} after {tries}: {reason}"[:2000],
                  "wall_time_s": 0.0, "log": str(out / "log.txt"),
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "status.json", status)
        except OSError:
            pass
        return status

    def wait(self) -> list[tuple[str, dict]]:
        ray = self.ray
        refs = list(self.refs)
        ready, _ = ray.wait(refs, num_returns=1)
        more, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        for ref in {*ready, *more}:
            job = self.refs.pop(ref)
            try:
                status = ray.get(ref)
            except Exception as exc:  # the worker or its node died, on every attempt
                status = self._failed(job, exc)
            out.append((job.id, status))
        return out

    def close(self, cancel: bool = False) -> None:
        ray = self.ray
        if getattr(self, "stop", None) is not None:
            self.stop.set()
            self.poller.join(timeout=2)
        if cancel:
            for ref in self.refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
        self.refs.clear()
        if self.box is not None:
            ray.kill(self.box)
            self.box = None
        if self.started_here and ray.is_initialized():
            ray.shutdown()
            self.started_here = False


def execute(plan: Plan, store: Store, opts: dict | None = None, console: Console | None = None,
            address: str | None = None, retries: int = 2,
            threads: int | None = None) -> RunSummary:
    """Run every job of ``plan`` that is not done yet on a Ray cluster: the one at ``address``
    (``auto``: the cluster this machine belongs to; ``HOST:PORT``), the one this process is
    already connected to, or a local one started for this run."""
    pool = RayPool(plan, store, dict(opts or {}), address, retries, threads)
    return schedule(plan, store, pool, console)
