"""``marlbench baseline save`` and ``marlbench check``: the main table (win rate) or the
returns-quality table (average return) as a CI regression gate."""

from __future__ import annotations

from pathlib import Path

import typer

from marlbench.cli.common import console, user_errors, writable_file
from marlbench.cli.report import table_of

baseline_app = typer.Typer(help="Save the per-cell statistics of a results directory as a "
                           "baseline for `marlbench check`.", no_args_is_help=True)


def _failed_jobs(res) -> list[str]:
    """Eval jobs failed or skipped in every merged directory."""
    states = res.states
    if states.empty:
        return []
    bad = states[states["state"].isin(["failed", "skipped"])]
    return [f"{row.title} ({row.state})" for row in bad.itertuples()]


def _baseline_table(res, metric: str | None) -> str:
    """The table a baseline of ``metric`` holds: returns-quality for returns (and, unasked,
    for results of single-task maps only), main otherwise."""
    from marlbench.errors import UserError
    from marlbench.results.aggregate import get_metric, single_task_sets
    from marlbench.results.baseline import TABLE_OF_METRIC

    if metric is None:
        only_single = len(single_task_sets(res.records)) == res.records["task_set"].nunique()
        return "returns-quality" if only_single and not res.records.empty else "main"
    try:
        name = get_metric(metric).name
    except ValueError as exc:
        raise UserError(f"--metric: {exc}") from None
    if name == "return" and not single_task_sets(res.records):
        raise UserError("--metric return: a return baseline holds the returns-quality table "
                        "of single-task maps, and these results hold none")
    return TABLE_OF_METRIC[name]


@baseline_app.command("save")
@user_errors
def save(
    results_dirs: list[Path] = typer.Argument(..., help="Results directory of a finished run "
                                              "(several are merged)"),
    to: Path = typer.Option(..., "--to", help="Baseline file, e.g. results/baselines/smoke.json"),
    suite: str = typer.Option(None, "--suite", help="Only this suite's latest run"),
    checkpoint: str = typer.Option(None, "--checkpoint", help="final | best | last_k"),
    last_k: int = typer.Option(None, "--last-k", min=1, max=1000,
                               help="k for --checkpoint last_k"),
    metric: str = typer.Option(None, "--metric", "-m", help="win-rate (the main table's "
                               "cells) | return (the returns-quality table's: map · data "
                               "quality × method); default return for warehouse-only "
                               "(rware) or single-task-only results, win rate otherwise"),
) -> None:
    """Store every complete cell of the main table (mean, std, seeds, standard error), or
    with --metric return of the returns-quality table; the file records which.

    \b
    Example: marlbench baseline save results --to results/baselines/smoke.json
    Example: marlbench baseline save results --metric return --to results/baselines/rware.json
    """
    from marlbench.results.baseline import baseline_doc, save_baseline
    from marlbench.results.store import load_results

    writable_file(to, "--to")
    res = load_results(results_dirs, suite)
    table = table_of(res, checkpoint, last_k, _baseline_table(res, metric), metric=metric)
    failed = _failed_jobs(res)
    doc = baseline_doc(table, suite, failed)
    save_baseline(to, doc)
    console.print(f"saved {len(doc['cells'])} cells to {to}"
                  + (f" ({len(failed)} failed jobs noted)" if failed else ""))


@user_errors
def check(
    results_dirs: list[Path] = typer.Argument(None, help="Results directory to check "
                                              "(default: results; several are merged)"),
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Baseline file"),
    tolerance: float = typer.Option(None, "--tolerance", help="Allowed drop per cell in the "
                                    "baseline's units: win-rate points (default 5) or return "
                                    "(default 0.5); finite, ≥ 0"),
    sigma: float = typer.Option(None, "--sigma", help="Also allow drops within K combined "
                                "standard errors (the larger allowance wins; finite, ≥ 0)"),
    suite: str = typer.Option(None, "--suite", help="Only this suite's latest run"),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here"),
    summary: Path = typer.Option(None, "--summary", help="Write a Markdown summary here (e.g. "
                                 "$GITHUB_STEP_SUMMARY)"),
) -> None:
    """Compare a results directory with a baseline; exit 1 when a cell dropped beyond the
    allowance, is missing or cannot be compared, or a job failed; 0 otherwise; 2 on bad input
    (an empty or malformed baseline, a NaN or negative --tolerance or --sigma).

    Example: marlbench check results --baseline results/baselines/smoke.json --tolerance 15
    """
    from rich.table import Table

    from marlbench.results.baseline import (
        DEFAULT_TOLERANCE,
        TABLE_OF_METRIC,
        check_allowance,
        junit_xml,
        load_baseline,
        summary_markdown,
    )
    from marlbench.results.baseline import check as run_check
    from marlbench.results.store import load_results

    check_allowance(5.0 if tolerance is None else tolerance, sigma)
    for path, option in ((junit, "--junit"), (summary, "--summary")):
        if path is not None:
            writable_file(path, option)
    ref = load_baseline(baseline)
    metric = ref.get("metric", "win_rate")
    tolerance = DEFAULT_TOLERANCE[metric] if tolerance is None else tolerance
    res = load_results(results_dirs or [Path("results")], suite or ref.get("suite"))
    table = table_of(res, ref.get("checkpoint"), None, TABLE_OF_METRIC[metric], metric=metric)
    result = run_check(table, ref, tolerance, sigma, _failed_jobs(res))
    out = Table(title=f"marlbench check against {baseline}")
    for col in ("Scenario", "Algorithm", "Baseline", "Now", "Δ", "Allowed", "Result"):
        out.add_column(col, justify="left" if col in ("Scenario", "Algorithm", "Result")
                       else "right")
    d = result.digits
    for c in result.cells:
        out.add_row(c.scenario, c.label, f"{c.baseline:.{d}f}",
                    "—" if c.current is None else f"{c.current:.{d}f}",
                    "—" if c.delta is None else f"{c.delta:+.{d}f}", f"{c.allowed_drop:.{d}f}",
                    "[green]ok[/]" if c.ok else f"[red]{c.reason}[/]")
    console.print(out)
    for job in result.failed_jobs:
        console.print(f"[red]failed job:[/] {job}")
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(result))
    if summary:
        summary.parent.mkdir(parents=True, exist_ok=True)
        with open(summary, "a") as fh:
            fh.write(summary_markdown(result, str(baseline)))
    bad = sum(not c.ok for c in result.cells)
    if result.ok:
        console.print(f"[green]check passed[/]: {len(result.cells)} cells within the allowance")
        return
    console.print(f"[red]check failed[/]: {bad} of {len(result.cells)} cells, "
                  f"{len(result.failed_jobs)} failed jobs")
    raise typer.Exit(1)
