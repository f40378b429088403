"""``marlbench report``: the papers' tables from what ran."""

from __future__ import annotations

from pathlib import Path

import typer

from marlbench.cli.common import console, user_errors
from marlbench.errors import UserError


@user_errors
def report(
    results_dir: Path = typer.Argument(Path("results"), help="Results directory"),
    table: str = typer.Option("main", "--table", "-t",
                              help="main | quality | task | ablation (bare --table = main)"),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | md | latex | csv | json"),
    stat: str = typer.Option("mean", "--stat", help="mean | median | iqm across seeds"),
    suite: str = typer.Option(None, "--suite", help="Only this suite's latest run"),
    checkpoint: str = typer.Option(None, "--checkpoint", help="final | best | last-k "
                                   "(default: the suite's rule)"),
    last_k: int = typer.Option(None, "--last-k", help="k for --checkpoint last_k"),
    stats: bool = typer.Option(False, "--stats", help="Robust statistics instead of a table: "
                               "median, IQM, mean, optimality gap with bootstrap CIs and the "
                               "probability of improvement between algorithms"),
    reps: int = typer.Option(2000, "--reps", help="Bootstrap replicates for --stats"),
    boot_seed: int = typer.Option(0, "--boot-seed", help="Bootstrap seed for --stats"),
    plots: Path = typer.Option(None, "--plots", help="Write figures (PNG and SVG) to this "
                               "folder: learning curves, seen/unseen/total bars, performance "
                               "profiles, probability of improvement"),
    html_out: Path = typer.Option(None, "--html", help="Write one self-contained HTML report "
                                  "(every table, robust statistics, figures, suites, versions)"),
    compare: str = typer.Option(None, "--compare", help="Put published numbers next to ours, "
                                "cell by cell, with the difference (e.g. stairs-former, "
                                "stairs-former:ablation; files in results/published/)"),
) -> None:
    """Aggregate evaluation records into the papers' tables.

    Tables: main (the STAIRS-Former layout: Seen · <set>, Seen/Unseen · Mean, Total Mean ×
    algorithm), quality (task set × data quality × algorithm), task (every test task, seen or
    unseen), ablation (one row per variant label).

    Example: marlbench report results --table main --format md
    Example: marlbench report results --table ablation --format latex --stat iqm
    Example: marlbench report results --compare stairs-former
    Example: marlbench report results --stats --reps 5000
    Example: marlbench report results --plots figures/ --html report.html
    """
    from marlbench.results import render

    if fmt not in render.FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(render.FORMATS)}")
    result, records = main_table_of(results_dir, suite, checkpoint, last_k, table, stat)
    if plots or html_out:
        _figures_and_html(results_dir, suite, checkpoint, last_k, stat, plots, html_out,
                          reps, boot_seed)
        return
    if stats:
        from marlbench.results.aggregate import select_checkpoint
        from marlbench.results.robust import robust_report

        if reps < 1:
            raise UserError("--reps must be at least 1")
        labels = result.columns if result.name != "ablation" else result.rows
        rep = robust_report(select_checkpoint(records, result.rule), labels, reps, boot_seed)
        if fmt == "rich":
            for part in render.robust_to_rich(rep):
                console.print(part)
            console.print(render.robust_note(rep), style="dim")
        elif fmt == "json":
            print(render.robust_to_json(rep))
        elif fmt == "md":
            print(render.robust_to_markdown(rep), end="")
        else:
            raise UserError("--stats prints rich, md or json")
        return
    if compare:
        from marlbench.results.published import compare as compare_with

        comp = compare_with(result, compare, list(records["backend"].dropna().unique()))
        if fmt == "rich":
            console.print(render.comparison_to_rich(comp))
            console.print(render.comparison_note(comp), style="dim")
        elif fmt == "md":
            print(render.comparison_to_markdown(comp), end="")
        elif fmt == "csv":
            print(render.comparison_to_frame(comp).to_csv(index=False), end="")
        elif fmt == "json":
            print(render.comparison_to_frame(comp).to_json(orient="records", indent=2))
        else:
            raise UserError("--compare prints rich, md, csv or json")
        return
    if fmt == "rich":
        console.print(render.to_rich(result))
        console.print(render.footer(result), style="dim")
    else:
        print(render.render(result, fmt), end="")


def main_table_of(results_dir: Path, suite: str | None, checkpoint: str | None,
                  last_k: int | None, table: str = "main", stat: str = "mean"):
    """A report table of a results directory (latest plans; the suite's checkpoint rule unless
    overridden; planned qualities and seeds from the plans) and the records it came from."""
    from marlbench.results.aggregate import BUILDERS, CHECKPOINT_RULES, STATS, Plan
    from marlbench.results.store import Store, job_states, load_records

    if table not in BUILDERS:
        raise UserError(f"unknown table {table!r}; choose one of: {', '.join(BUILDERS)}")
    if stat not in STATS:
        raise UserError(f"unknown statistic {stat!r}; choose one of: {', '.join(STATS)}")
    if checkpoint is not None:
        checkpoint = checkpoint.replace("-", "_")  # last-k and last_k
    if checkpoint is not None and checkpoint not in CHECKPOINT_RULES:
        raise UserError(f"unknown checkpoint rule {checkpoint!r}; choose one of: "
                        f"{', '.join(CHECKPOINT_RULES)}")
    if not results_dir.is_dir():
        raise UserError(f"results directory {results_dir} does not exist")
    records = load_records(results_dir, suite)
    if records.empty:
        raise UserError(f"no evaluation records in {results_dir}; run a suite first "
                        "(marlbench run suites/smoke.yaml)")
    plans = [p for p in Store(results_dir, results_dir).plans() if suite in (None, p["suite"])]
    rule = checkpoint or (plans[0]["checkpoint"] if plans else "final")
    k = last_k or (plans[0]["last_k"] if plans else 3)
    labels = list(dict.fromkeys(label for p in plans for label in p["labels"])) or None
    sets = list(dict.fromkeys(s for p in plans for s in p["task_sets"])) or None
    qualities = list(dict.fromkeys(q for p in plans for q in p.get("qualities", []))) or None
    seeds = list(dict.fromkeys(x for p in plans for x in p.get("seeds", []))) or None
    plan = Plan(qualities, seeds, job_states(results_dir, suite) if plans else None)
    built = BUILDERS[table](records, rule, k, labels, sets, stat, plan)
    return built, records


def _figures_and_html(results_dir: Path, suite: str | None, checkpoint: str | None,
                      last_k: int | None, stat: str, plots: Path | None, html_out: Path | None,
                      reps: int, boot_seed: int) -> None:
    import tempfile

    from marlbench.results import plots as figs
    from marlbench.results import render
    from marlbench.results.aggregate import BUILDERS, select_checkpoint
    from marlbench.results.html import write_html
    from marlbench.results.robust import robust_report
    from marlbench.results.store import Store

    tables = [main_table_of(results_dir, suite, checkpoint, last_k, name, stat)[0]
              for name in BUILDERS]
    main, records = main_table_of(results_dir, suite, checkpoint, last_k, "main", stat)
    labels = main.columns
    rates = select_checkpoint(records, main.rule)
    rep = robust_report(rates, labels, reps, boot_seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = plots or Path(tmp)
        paths = (figs.learning_curves(records, labels, out) + figs.split_bars(main, out)
                 + figs.performance_profiles(rates, labels, out, reps, boot_seed)
                 + figs.improvement_matrix(rep, out))
        if plots:
            console.print(f"wrote {len(paths)} figures to {plots}")
        if html_out:
            plans = [p for p in Store(results_dir, results_dir).plans()
                     if suite in (None, p["suite"])]
            versions = sorted({str(v) for v in records["versions"].dropna()})
            write_html(html_out, tables, paths, render.robust_to_markdown(rep), plans,
                       versions, results_dir)
            console.print(f"wrote {html_out}")
