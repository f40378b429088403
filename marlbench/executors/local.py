"""Local executor: ready jobs in dependency order on N worker processes, with live progress."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from marlbench.jobs import run_job
from marlbench.plan import Plan, topological_order
from marlbench.results.store import Store

_QUEUE = None  # progress queue inside a worker process


def _init_worker(threads: int, progress_queue) -> None:
    global _QUEUE
    _QUEUE = progress_queue
    if threads == 1:
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import torch

    torch.set_num_threads(threads)


def _worker(job_dict: dict, results_dir: str, data_dir: str, opts: dict) -> dict:
    jid = job_dict["id"]

    def progress(done: int, total: int, what: str) -> None:
        if _QUEUE is not None:
            _QUEUE.put((jid, done, total, what))

    return run_job(job_dict, results_dir, data_dir, opts, progress)


@dataclass
class RunSummary:
    already_done: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, dict] = field(default_factory=dict)  # id -> status
    skipped: dict[str, str] = field(default_factory=dict)  # id -> failed dependency

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def execute(
    plan: Plan,
    store: Store,
    workers: int = 1,
    opts: dict | None = None,
    console: Console | None = None,
    threads: int | None = None,
) -> RunSummary:
    """Run every job of ``plan`` that is not done yet. A failed job's dependents are skipped;
    independent jobs continue. ``workers=0`` runs jobs in this process (for debugging)."""
    opts = dict(opts or {})
    console = console or Console(stderr=True)
    summary = RunSummary()
    order = topological_order(plan)
    todo = []
    for jid in order:
        if store.is_done(plan.jobs[jid]):
            summary.already_done.append(jid)
        else:
            todo.append(jid)
    if not todo:
        return summary
    finished = set(summary.already_done)
    dependents = plan.dependents()
    pending = set(todo)

    def skip_dependents(jid: str, reason: str) -> None:
        for child in dependents[jid]:
            if child in pending:
                pending.discard(child)
                summary.skipped[child] = reason
                skip_dependents(child, reason)

    def ready() -> list[str]:
        return [j for j in todo if j in pending and all(d in finished for d in plan.jobs[j].deps)]

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        overall = bar.add_task("jobs", total=len(todo))
        rows: dict[str, int] = {}

        def on_progress(jid: str, done: int, total: int, what: str) -> None:
            if jid not in rows:
                rows[jid] = bar.add_task(f"  {plan.jobs[jid].title}", total=total)
            bar.update(rows[jid], completed=done, total=total)

        def on_finish(jid: str, status: dict) -> None:
            pending.discard(jid)
            if jid in rows:
                bar.remove_task(rows.pop(jid))
            if status["state"] == "done":
                finished.add(jid)
                summary.done.append(jid)
            else:
                summary.failed[jid] = status
                error = escape(str(status.get("error")))
                console.print(f"[red]failed[/red] {plan.jobs[jid].title}: {error}"
                              f" (log: {status.get('log')})")
                skip_dependents(jid, jid)
            bar.advance(overall)
            bar.update(overall, total=len(todo) - len(summary.skipped))

        if workers <= 0:
            if threads:
                import torch

                torch.set_num_threads(threads)
            for jid in todo:
                if jid not in pending:
                    continue
                status = run_job(plan.jobs[jid].to_dict(), str(store.results_dir),
                                 str(store.data_dir), opts,
                                 lambda d, t, w, _j=jid: on_progress(_j, d, t, w))
                on_finish(jid, status)
            return summary

        ctx = mp.get_context("spawn")
        progress_queue = ctx.Queue()
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                try:
                    msg = progress_queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if msg[0] in pending:
                    on_progress(*msg)

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        running: dict[Future, str] = {}
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads, progress_queue)) as pool:
            try:
                while pending:
                    submitted = set(running.values())
                    for jid in ready():
                        if jid not in submitted:
                            fut = pool.submit(_worker, plan.jobs[jid].to_dict(),
                                              str(store.results_dir), str(store.data_dir), opts)
                            running[fut] = jid
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        jid = running.pop(fut)
                        try:
                            status = fut.result()
                        except Exception as exc:  # the worker process itself died
                            status = {"state": "failed", "error": f"worker crashed: {exc}",
                                      "log": str(store.job_dir(plan.jobs[jid]) / "log.txt")}
                        on_finish(jid, status)
            except KeyboardInterrupt:
                for fut in running:
                    fut.cancel()
                raise
            finally:
                stop.set()
                drainer.join(timeout=2)
    return summary
