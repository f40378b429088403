"""``marlbench run`` and ``marlbench validate``."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from marlbench.cli.common import console, err_console, user_errors
from marlbench.suite import load_suite

DEFAULT_RESULTS = Path("results")
DEFAULT_DATA = Path(os.environ.get("MARLBENCH_DATA_DIR", "data"))


@user_errors
def run(
    suite_file: Path = typer.Argument(..., help="Suite YAML file, e.g. suites/smoke.yaml"),
    profile: str = typer.Option(None, "--profile", "-p", help="Named profile of the suite "
                                "(e.g. quick, paper) whose fields override the base"),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Results directory"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Dataset cache shared by "
                                  "suites (env MARLBENCH_DATA_DIR)"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", "-w",
                                help="Worker processes (0 = run in this process)"),
    threads: int = typer.Option(None, "--threads", help="torch threads per worker (default: "
                                "cores ÷ workers). Results are bit-identical for the same seed "
                                "and thread count; other counts change float reduction order"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (default: suite's)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, run nothing"),
) -> None:
    """Run a suite: collect missing datasets, train every algorithm × task set × quality × seed,
    evaluate every checkpoint on every test task. Finished jobs are never run again.

    Example: marlbench run suites/smoke.yaml --workers 2
    """
    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store

    suite = load_suite(suite_file, profile)
    plan = make_plan(suite, data_dir)
    store = Store(results, data_dir)
    counts = Counter(j.kind for j in plan.jobs.values())
    done = Counter(j.kind for j in plan.jobs.values() if store.is_done(j))
    table = Table(title=f"Plan of {suite.name}" + (f" (profile {profile})" if profile else ""))
    for col in ("jobs", "total", "done", "to run"):
        table.add_column(col, justify="right" if col != "jobs" else "left")
    for kind in ("behaviour", "dataset", "train", "eval"):
        if not counts[kind]:
            continue
        table.add_row(kind, str(counts[kind]), str(done[kind]), str(counts[kind] - done[kind]))
    console.print(table)
    if dry_run:
        return
    store.save_plan(plan, profile)
    start = time.time()
    opts = {"device": device or suite.training.device, "suite": suite.name}
    summary = execute(plan, store, workers=workers, opts=opts, console=err_console,
                      threads=threads)
    wall = time.time() - start
    console.print(
        f"ran {len(summary.done)} job(s) in {wall:.1f} s; {len(summary.already_done)} already "
        f"done; {len(summary.failed)} failed; {len(summary.skipped)} skipped"
    )
    for jid, status in summary.failed.items():
        console.print(f"  [red]failed[/red] {plan.jobs[jid].title}: {status.get('error')}\n"
                      f"    log: {status.get('log')}")
    if summary.skipped:
        console.print(f"  {len(summary.skipped)} job(s) skipped because a dependency failed")
    if not summary.ok:
        raise typer.Exit(1)
    console.print(f"results in {results}/ — next: marlbench report {results} --table")


@user_errors
def validate(
    suite_file: Path = typer.Argument(..., help="Suite YAML file"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Where imported data is "
                                  "looked up (env MARLBENCH_DATA_DIR)"),
) -> None:
    """Check a suite file (and all its profiles) without running anything.

    Example: marlbench validate suites/smoke.yaml
    """
    from marlbench.plan import make_plan

    suite = load_suite(suite_file)
    plan = make_plan(suite, data_dir)
    kinds = Counter(j.kind for j in plan.jobs.values())
    console.print(
        f"[green]ok[/green] {suite_file}: suite {suite.name!r}, "
        f"{len(suite.task_sets)} task set(s), {len(suite.qualities)} quality(ies), "
        f"{len(suite.seeds)} seed(s), {len(suite.algorithms)} algorithm(s); "
        f"{kinds['behaviour']} behaviour, {kinds['dataset']} dataset, {kinds['train']} train, "
        f"{kinds['eval']} eval jobs; "
        f"profiles: {', '.join(suite.profiles) or 'none'}"
    )
