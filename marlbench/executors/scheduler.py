"""marlbench's own dependency scheduler, shared by every executor.

The scheduler owns the job graph: which jobs are done already, which are ready (every
dependency finished), what a failure means (its dependents are skipped, independent jobs go
on), the rich progress bars and the :class:`RunSummary`. An executor is only a :class:`Pool`:
something that runs :func:`marlbench.jobs.run_job` on a job dict somewhere (this process,
worker processes, Ray tasks) and hands back the job's status.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
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

from marlbench.plan import Job, Plan, topological_order
from marlbench.results.store import Store

OnProgress = Callable[[str, int, int, str], None]  # job id, done, total, what


@dataclass
class RunSummary:
    already_done: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, dict] = field(default_factory=dict)  # id -> status
    skipped: dict[str, str] = field(default_factory=dict)  # id -> failed dependency

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class Pool:
    """Where jobs run. The scheduler calls :meth:`prepare` and :meth:`start` once, then
    :meth:`submit` for ready jobs the pool has room for and :meth:`wait` for finished ones, and
    :meth:`close` at the end (also after an error or Ctrl-C)."""

    def prepare(self, jobs: list[Job]) -> None:
        """Check, before anything runs or any bar is drawn, that ``jobs`` (every job still to
        run) can run here; raise :class:`marlbench.errors.UserError` if not."""

    def start(self, on_progress: OnProgress) -> None:
        """Get ready; per-job progress is reported through ``on_progress`` (any thread)."""

    def has_room(self, job: Job) -> bool:
        """Whether ``job`` may be submitted now (a pool that queues jobs itself says yes)."""
        return True

    # whether :meth:`submit_group` trains a group fused (else it submits the jobs one by one)
    fuses = False

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def submit_group(self, jobs: list[Job]) -> None:
        """Train jobs of one fuse key, to run fused (:func:`marlbench.jobs.run_jobs`) when the
        pool :attr:`fuses`; each job's status still comes back from :meth:`wait`."""
        for job in jobs:
            self.submit(job)

    def wait(self) -> list[tuple[str, dict]]:
        """Block until at least one submitted job has finished; (job id, status) of each
        finished one. A status is what :func:`run_job` returns, or a failed status naming why
        the job could not run (its worker died)."""
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """Release workers; ``cancel``: drop submitted jobs that have not started."""


def schedule(plan: Plan, store: Store, pool: Pool, console: Console | None = None,
             fuse: int = 1) -> RunSummary:
    """Run every job of ``plan`` that is not done yet on ``pool``, in dependency order.

    ``fuse`` > 1 (and a pool that :attr:`Pool.fuses`): ready train jobs of one
    :func:`marlbench.jobs.fuse_key` go out together, up to ``fuse`` at a time; a ready one
    waits for its siblings still waiting on their data while other jobs run."""
    console = console or Console(stderr=True)
    summary = RunSummary()
    todo = []
    for jid in topological_order(plan):
        if store.is_done(plan.jobs[jid]):
            summary.already_done.append(jid)
        else:
            todo.append(jid)
    if not todo:
        return summary
    pool.prepare([plan.jobs[j] for j in todo])
    finished = set(summary.already_done)
    dependents = plan.dependents()
    pending = set(todo)
    waiting = {j: sum(d not in finished for d in plan.jobs[j].deps) for j in todo}
    ready = deque(j for j in todo if waiting[j] == 0)  # in topological order
    running: set[str] = set()
    keys: dict[str, str] = {}
    if fuse > 1 and pool.fuses:
        from marlbench.jobs import fuse_key

        keys = {j: k for j in todo if (k := fuse_key(plan.jobs[j])) is not None}

    def group_of(jid: str, hold: bool) -> list[str] | None:
        """The group ``jid`` goes out with (itself alone when not fusable); None: hold it
        back, its siblings are still waiting on their data."""
        key = keys.get(jid)
        if key is None:
            return [jid]
        siblings = [j for j in pending if keys.get(j) == key and j != jid and j not in running]
        now = [j for j in ready if j in siblings][: fuse - 1]
        later = [j for j in siblings if waiting[j] > 0]
        if hold and later and len(now) + 1 < fuse:
            return None
        return [jid, *now]

    def skip_dependents(jid: str, reason: str) -> None:
        for child in dependents[jid]:
            if child in pending:
                pending.discard(child)
                summary.skipped[child] = reason
                skip_dependents(child, reason)

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

        lock = threading.Lock()  # progress arrives on another thread

        def on_progress(jid: str, done: int, total: int, what: str) -> None:
            with lock:
                if jid not in running:
                    return
                if jid not in rows:
                    rows[jid] = bar.add_task(f"  {plan.jobs[jid].title}", total=total)
                bar.update(rows[jid], completed=done, total=total)

        def on_finish(jid: str, status: dict) -> None:
            pending.discard(jid)
            with lock:
                running.discard(jid)
                if jid in rows:
                    bar.remove_task(rows.pop(jid))
            if status["state"] == "done":
                finished.add(jid)
                summary.done.append(jid)
                for child in dependents[jid]:
                    if child in waiting:
                        waiting[child] -= 1
                        if waiting[child] == 0 and child in pending:
                            ready.append(child)
            else:
                summary.failed[jid] = status
                error = escape(str(status.get("error")))
                console.print(f"[red]failed[/red] {plan.jobs[jid].title}: {error}"
                              f" (log: {status.get('log')})")
                skip_dependents(jid, jid)
            bar.advance(overall)
            bar.update(overall, total=len(todo) - len(summary.skipped))

        pool.start(on_progress)
        clean = False
        try:
            while pending:
                for hold in (True, False):  # hold back for fusing only while others run
                    held = []
                    while ready:
                        jid = ready.popleft()
                        if jid not in pending or jid in running:
                            continue
                        job = plan.jobs[jid]
                        group = group_of(jid, hold)
                        if group is None or not pool.has_room(job):
                            held.append(jid)
                            continue
                        with lock:
                            running.update(group)
                        if len(group) == 1:
                            pool.submit(job)
                        else:
                            pool.submit_group([plan.jobs[j] for j in group])
                    ready.extend(held)
                    if running:
                        break
                if not running:
                    break
                for jid, status in pool.wait():
                    on_finish(jid, status)
            clean = True
        finally:
            pool.close(cancel=not clean)
    return summary
