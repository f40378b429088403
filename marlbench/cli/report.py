"""``marlbench report``: the papers' tables from what ran."""

from __future__ import annotations

from pathlib import Path

import typer

from marlbench.cli.common import console, user_errors, writable_file
from marlbench.errors import UserError
from marlbench.fileio import require_dir


@user_errors
def report(
    results_dirs: list[Path] = typer.Argument(
        None, help="Results directories (default: results); several are merged, e.g. seeds "
        "run on different machines"),
    table: str = typer.Option(
        None, "--table", "-t", help="main | quality | task | ablation (multi-task) | returns | "
        "returns-quality (single-task maps); default main, or returns when every task set is "
        "a single-task map; bare --table = main"),
    metric: str = typer.Option(
        None, "--metric", "-m", help="win-rate | return: what the cells, --stats and --plots "
        "measure; default return for the returns tables and for warehouse-only (rware) "
        "results, which have no win; win rate otherwise"),
    family: str = typer.Option(
        None, "--family", help="Only this family's single-task maps: rware (the warehouse) | "
        "smac_single (single SMAC maps); default: the first one the results hold, with a "
        "note naming the others (their maps and data qualities differ, MADS4 tables them "
        "apart)"),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | md | latex | csv | json"),
    stat: str = typer.Option("mean", "--stat", help="mean | median | iqm across seeds"),
    suite: str = typer.Option(None, "--suite", help="Only this suite's latest run"),
    checkpoint: str = typer.Option(None, "--checkpoint", help="final | best | last-k "
                                   "(default: the suite's rule)"),
    last_k: int = typer.Option(None, "--last-k", min=1, max=1000,
                               help="k for --checkpoint last_k"),
    stats: bool = typer.Option(False, "--stats", help="Robust statistics instead of a table: "
                               "median, IQM, mean, optimality gap (win rate only) with bootstrap "
                               "CIs and the "
                               "probability of improvement between algorithms"),
    reps: int = typer.Option(2000, "--reps", min=1, max=100_000,
                             help="Bootstrap replicates for --stats"),
    boot_seed: int = typer.Option(0, "--boot-seed", min=0, max=2**32 - 1,
                                  help="Bootstrap seed for --stats"),
    plots: Path = typer.Option(None, "--plots", help="Write figures (PNG and SVG) to this "
                               "folder: learning curves, seen/unseen/total bars (per-map bars "
                               "for returns), performance "
                               "profiles, probability of improvement"),
    html_out: Path = typer.Option(None, "--html", help="Write one self-contained HTML report "
                                  "(every table, robust statistics, figures, suites, versions)"),
    screenshot: Path = typer.Option(None, "--screenshot", help="With --html: open the page "
                                    "in headless Chromium (system install, driven by "
                                    "playwright), check every table and figure rendered, and "
                                    "save a full-page PNG here"),
    compare: str = typer.Option(None, "--compare", help="Put published numbers next to ours, "
                                "cell by cell, with the difference and how our evaluation "
                                "differs from the paper's (e.g. stairs-former, "
                                "stairs-former:ablation, mads4, mads4:rware; files in "
                                "results/published/)"),
) -> None:
    """Aggregate evaluation records into the papers' tables.

    Multi-task tables (win rate %): main (the STAIRS-Former layout: Seen · <set>, Seen/Unseen
    · Mean, Total Mean × algorithm), quality (task set × data quality × algorithm), task
    (every test task, seen or unseen), ablation (one row per variant label).

    Single-task tables (average return; maps such as rware-tiny-2ag or 5m_vs_6m): returns
    (MADS4 Table 1: one row per method, one column per map; with several data qualities one
    block of rows per quality), returns-quality (MADS4 Table 2: one row per map · data
    quality, e.g. 5m_vs_6m · good / medium / poor, one column per method). Each cell is one
    (method, map, quality), never averaged over qualities; mean ± std across seeds, or
    --stat median / iqm.

    \b
    Example: marlbench report results --table main --format md
    Example: marlbench report results --table ablation --format latex --stat iqm
    Example: marlbench report results --compare stairs-former
    Example: marlbench report results --table returns --compare mads4
    Example: marlbench report results --table returns-quality --format md
    Example: marlbench report results --stats --reps 5000
    Example: marlbench report results --stats --metric return
    Example: marlbench report results --plots figures/ --html report.html
    Example: marlbench report results-machine-a results-machine-b --table quality
    """
    from marlbench.results import render
    from marlbench.results.store import load_results

    if fmt not in render.FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(render.FORMATS)}")
    if screenshot and not html_out:
        raise UserError("--screenshot needs --html FILE (the page to render)")
    for path, option in ((html_out, "--html"), (screenshot, "--screenshot")):
        if path is not None:
            writable_file(path, option)
    if plots is not None:
        require_dir(plots, "--plots folder", must_exist=False)
    res = load_results(results_dirs or [Path("results")], suite)
    res, others = by_family(res, table, family)
    result, records = table_of(res, checkpoint, last_k, table, stat, metric), res.records
    if others and fmt == "rich":
        console.print(f"these results also hold {', '.join(others)}: see them with --family",
                      style="yellow", highlight=False)
    merged = merge_note(res)
    if merged and fmt == "rich":
        console.print(merged, style="dim")
    if plots or html_out:
        _figures_and_html(res, checkpoint, last_k, stat, plots, html_out, reps, boot_seed,
                          metric)
        if screenshot:
            _screenshot(html_out, screenshot)
        return
    if stats:
        from marlbench.results.aggregate import select_checkpoint
        from marlbench.results.robust import robust_report

        rep = robust_report(select_checkpoint(records, result.rule, metric=result.metric),
                            result.labels, reps, boot_seed, result.metric)
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
        from marlbench.results.store import train_datasets

        datasets = (train_datasets(res.dirs, list(records["config_hash"].dropna().unique()))
                    if result.coords else {})
        comp = compare_with(result, compare, list(records["backend"].dropna().unique()),
                            records, datasets)
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
        return
    print(render.render(result, fmt), end="")
    if merged and fmt == "md":
        print(f"\n{merged}")
    elif merged and fmt == "latex":
        print(f"% {merged}")
    elif merged:
        typer.echo(merged, err=True)


def by_family(res, table: str | None, family: str | None):
    """The results restricted to one family of single-task maps for the returns table (MADS4
    Table 1: methods × maps; the named family, else the first present) and the other
    families present; unchanged otherwise (returns-quality rows are per map already)."""
    import dataclasses

    from marlbench.envs.tasksets import FAMILY_TITLES
    from marlbench.results.aggregate import families_of, single_task_sets

    single = single_task_sets(res.records)
    families = families_of(single) if single else {}
    if family is not None and family not in families:
        raise UserError(f"--family {family!r}: these results hold no single-task maps of it; "
                        f"families here: {', '.join(families) or 'none'}")
    multi = set(res.records["task_set"]) - set(single)
    returns = table == "returns" or (table is None and not multi)
    if not returns or (len(families) < 2 and family is None):
        return res, []
    chosen = family or next(iter(families))
    keep = res.records["task_set"].isin(families[chosen])
    others = [f"{FAMILY_TITLES.get(f, f)} ({f})" for f in families if f != chosen]
    return dataclasses.replace(res, records=res.records[keep]), others


def table_of(res, checkpoint: str | None, last_k: int | None, table: str | None = "main",
             stat: str = "mean", metric: str | None = None):
    """A report table of loaded results (latest plans; the suite's checkpoint rule unless
    overridden; planned qualities and seeds from the plans). ``table`` None: main, or returns
    when every task set is a single-task map; ``metric`` None: the table's default."""
    from marlbench.envs.tasksets import get_task_set
    from marlbench.results.aggregate import (
        BUILDERS,
        CHECKPOINT_RULES,
        RETURN_TABLES,
        STATS,
        WINLESS_FAMILIES,
        Plan,
        default_metric,
        get_metric,
        single_task_sets,
    )

    if table is not None and table not in BUILDERS:
        raise UserError(f"unknown table {table!r}; choose one of: {', '.join(BUILDERS)}")
    if stat not in STATS:
        raise UserError(f"unknown statistic {stat!r}; choose one of: {', '.join(STATS)}")
    if metric is not None:
        try:
            metric = get_metric(metric).name
        except ValueError as exc:
            raise UserError(f"--metric: {exc}") from None
    if checkpoint is not None:
        checkpoint = checkpoint.replace("-", "_")  # last-k and last_k
    if checkpoint is not None and checkpoint not in CHECKPOINT_RULES:
        raise UserError(f"unknown checkpoint rule {checkpoint!r}; choose one of: "
                        f"{', '.join(CHECKPOINT_RULES)}")
    if res.records.empty:
        where = ", ".join(map(str, res.dirs))
        raise UserError(f"no evaluation records in {where}; run a suite first "
                        "(marlbench run suites/smoke.yaml)")
    present = list(dict.fromkeys(res.records["task_set"]))
    single = single_task_sets(res.records)
    if table is None:
        table = "returns" if len(single) == len(present) else "main"
    if table in RETURN_TABLES and not single:
        raise UserError(f"--table {table} shows single-task maps (rware-*, 5m_vs_6m, ...); "
                        f"these results hold only multi-task sets ({', '.join(present)}): use "
                        "--table main")
    shown = single if table in RETURN_TABLES else [t for t in present if t not in single] \
        or present
    if metric == "win_rate" and all(get_task_set(t).family in WINLESS_FAMILIES for t in shown):
        raise UserError(f"--metric win-rate: the warehouse maps ({', '.join(shown)}) have no "
                        "win; use --metric return")
    metric = metric or default_metric(shown, table)
    plans = res.plans
    rule = checkpoint or (plans[0]["checkpoint"] if plans else "final")
    k = last_k or (plans[0]["last_k"] if plans else 3)
    labels = list(dict.fromkeys(label for p in plans for label in p["labels"])) or None
    sets = list(dict.fromkeys(s for p in plans for s in p["task_sets"])) or None
    qualities = list(dict.fromkeys(q for p in plans for q in p.get("qualities", []))) or None
    seeds = list(dict.fromkeys(x for p in plans for x in p.get("seeds", []))) or None
    plan = Plan(qualities, seeds, res.states if plans else None)
    return BUILDERS[table](res.records, rule, k, labels, sets, stat, plan, metric)


def tables_for(res) -> list[str]:
    """The tables that apply to the results: the multi-task ones when they hold a multi-task
    set, the returns ones when they hold a single-task map."""
    from marlbench.results.aggregate import MULTI_TABLES, RETURN_TABLES, single_task_sets

    single = single_task_sets(res.records)
    multi = set(res.records["task_set"]) - set(single)
    return [*(MULTI_TABLES if multi else ()), *(RETURN_TABLES if single else ())]


def merge_note(res) -> str | None:
    """Say where merged numbers came from (None for one directory)."""
    if len(res.dirs) < 2:
        return None
    note = f"Merged from {len(res.dirs)} results directories: {', '.join(map(str, res.dirs))}."
    if res.duplicates:
        note += (f" {res.duplicates} records present in more than one of them "
                 "were counted once.")
    return note


def _screenshot(html: Path, png: Path) -> None:
    from marlbench.results.browser import render_report

    seen = render_report(html, png)
    broken = [i["alt"] for i in seen["images"] if not (i["complete"] and i["w"] > 0)]
    console.print(f"rendered in Chromium: {len(seen['tables'])} tables, "
                  f"{len(seen['images'])} figures; screenshot {png}")
    if broken or seen["failed_requests"]:
        console.print(f"[red]not rendered:[/] figures {broken or 'none'}, failed requests "
                      f"{seen['failed_requests'] or 'none'}")
        raise typer.Exit(1)


def _figures_and_html(res, checkpoint: str | None, last_k: int | None, stat: str,
                      plots: Path | None, html_out: Path | None, reps: int,
                      boot_seed: int, metric: str | None = None) -> None:
    import tempfile

    from marlbench.results import plots as figs
    from marlbench.results import render
    from marlbench.results.aggregate import select_checkpoint
    from marlbench.results.html import write_html
    from marlbench.results.robust import robust_report

    names = tables_for(res)
    tables = [table_of(res, checkpoint, last_k, name, stat, metric) for name in names]
    lead, records = tables[0], res.records  # main, or returns for single-task results
    labels = lead.labels
    rates = select_checkpoint(records, lead.rule, metric=lead.metric)
    rep = robust_report(rates, labels, reps, boot_seed, lead.metric)
    with tempfile.TemporaryDirectory() as tmp:
        out = plots or Path(tmp)
        bars = [figs.split_bars(t, out) if t.name == "main" else figs.map_bars(t, out)
                for t in tables if t.name in ("main", "returns")]
        paths = (figs.learning_curves(records, labels, out, metric)
                 + [p for b in bars for p in b]
                 + figs.performance_profiles(rates, labels, out, reps, boot_seed, lead.metric)
                 + figs.improvement_matrix(rep, out))
        if plots:
            console.print(f"wrote {len(paths)} figures to {plots}")
        if html_out:
            versions = sorted({str(v) for v in records["versions"].dropna()})
            write_html(html_out, tables, paths, render.robust_to_markdown(rep), res.plans,
                       versions, res.dirs, merge_note(res))
            console.print(f"wrote {html_out}")
