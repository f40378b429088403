"""The ``marlbench`` application: run suites, report tables, validate and list."""

from __future__ import annotations

import typer

from marlbench import __version__
from marlbench.cli.analyze import analyze_app
from marlbench.cli.calibrate import calibrate
from marlbench.cli.check import baseline_app, check
from marlbench.cli.data import data_app
from marlbench.cli.doctor import doctor
from marlbench.cli.env import env_app
from marlbench.cli.listing import list_
from marlbench.cli.report import report
from marlbench.cli.run import run, validate

app = typer.Typer(
    name="marlbench",
    help="Benchmark offline multi-agent RL the way the papers do: every method × task set × "
    "data quality × seed, evaluated on seen and unseen tasks, aggregated into their tables.\n\n"
    "Start with: marlbench run suites/smoke.yaml && marlbench report --table",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help is plain text: brackets such as pip install 'marlbench[ogmarl]' stay literal
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"marlbench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit"),
) -> None:
    pass


app.command("run")(run)
app.command("validate")(validate)
app.command("report")(report)
app.command("list")(list_)
app.command("check")(check)
app.add_typer(baseline_app, name="baseline")
app.add_typer(data_app, name="data")
app.add_typer(analyze_app, name="analyze")
app.add_typer(env_app, name="env")
app.command("doctor")(doctor)
app.command("calibrate")(calibrate)

TABLES = ("main", "quality", "task", "ablation", "returns", "returns-quality")


def bare_table_flag(argv: list[str]) -> list[str]:
    """``report --table`` without a name means the main table (the typer parser has no
    optional option values)."""
    if not argv or argv[0] != "report":
        return argv
    import os

    out = list(argv)
    for i, arg in enumerate(out):
        if arg not in ("--table", "-t"):
            continue
        nxt = out[i + 1] if i + 1 < len(out) else None
        if nxt is None or nxt.startswith("-") or (nxt not in TABLES and os.path.isdir(nxt)):
            out.insert(i + 1, "main")
        break
    return out


def main() -> None:
    """Console entry point."""
    import sys

    app(args=bare_table_flag(sys.argv[1:]), prog_name="marlbench")
