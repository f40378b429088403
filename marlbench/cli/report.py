"""``marlbench report``: the papers' tables from what ran."""

from __future__ import annotations

from pathlib import Path

import typer

from marlbench.cli.common import console, user_errors
from marlbench.errors import UserError


@user_errors
def report(
    results_dir: Path = typer.Argument(Path("results"), help="Results directory"),
    table: bool = typer.Option(True, "--table", help="Print the main win-rate table (the "
                               "default, and so far the only report)"),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | md | csv | json"),
    suite: str = typer.Option(None, "--suite", help="Only this suite's latest run"),
    checkpoint: str = typer.Option(None, "--checkpoint", help="final | best | last_k "
                                   "(default: the suite's rule)"),
    last_k: int = typer.Option(None, "--last-k", help="k for --checkpoint last_k"),
    compare: str = typer.Option(None, "--compare", help="Put published numbers next to ours, "
                                "cell by cell, with the difference (e.g. stairs-former; files "
                                "in results/published/)"),
) -> None:
    """Aggregate evaluation records into the STAIRS-Former main-table layout.

    Example: marlbench report results --table --format md
    Example: marlbench report results --compare stairs-former
    """
    from marlbench.results import render

    if fmt not in render.FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(render.FORMATS)}")
    result, records = main_table_of(results_dir, suite, checkpoint, last_k)
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
        else:
            print(render.comparison_to_frame(comp).to_json(orient="records", indent=2))
        return
    if fmt == "rich":
        console.print(render.to_rich(result))
        console.print(render.rule_text(result), style="dim")
    elif fmt == "md":
        print(render.to_markdown(result), end="")
    elif fmt == "csv":
        print(render.to_csv(result), end="")
    else:
        print(render.to_json(result))


def main_table_of(results_dir: Path, suite: str | None, checkpoint: str | None,
                  last_k: int | None):
    """The main table of a results directory (latest plans; the suite's checkpoint rule unless
    overridden) and the records it came from."""
    from marlbench.results.aggregate import CHECKPOINT_RULES, main_table
    from marlbench.results.store import Store, load_records

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
    return main_table(records, rule, k, labels, sets), records
