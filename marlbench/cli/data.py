"""``marlbench data``: collect, list, inspect and import offline datasets."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from marlbench.cli.common import console, err_console, user_errors
from marlbench.cli.run import DEFAULT_DATA
from marlbench.errors import UserError
from marlbench.fileio import require_dir

data_app = typer.Typer(
    help="Offline datasets: collect them the ODIS way, list and inspect them, import the "
    "public ODIS and OG-MARL files.\n\nStart with: marlbench data collect --task-set "
    "marine_easy --quality expert --profile quick",
    no_args_is_help=True,
)
import_app = typer.Typer(help="Import public offline data into the data directory.",
                         no_args_is_help=True)
data_app.add_typer(import_app, name="import")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


@data_app.command("collect")
@user_errors
def collect(
    suite_file: Path = typer.Argument(None, help="Suite whose datasets to collect"),
    task_set: list[str] = typer.Option(None, "--task-set", "-t", help="Task set (instead of a "
                                       "suite; repeatable)"),
    quality: list[str] = typer.Option(None, "--quality", "-q", help="Data quality (repeatable; "
                                      "with a suite: only these)"),
    profile: str = typer.Option(None, "--profile", "-p", help="Suite profile, or with "
                                "--task-set a built-in budget: quick | paper (default paper)"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Dataset cache shared by "
                                  "suites (env MARLBENCH_DATA_DIR)"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", "-w", min=0,
                                help="Worker processes (0 = run in this process)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be collected"),
) -> None:
    """Collect the datasets of a suite (or of task sets × qualities): per seen task, train the
    behaviour policy online, then write expert, medium and medium-replay data. Resumable:
    rerun after an interruption and it continues; valid datasets are never collected again.

    Example: marlbench data collect suites/smac_multitask.yaml --profile quick
    """
    from marlbench.data.qualities import QUALITIES
    from marlbench.executors.local import execute
    from marlbench.plan import Plan, make_plan, topological_order
    from marlbench.results.store import Store
    from marlbench.suite import Suite, load_suite

    require_dir(data_dir, "--data-dir", must_exist=False)
    for q in quality or []:
        if q not in QUALITIES:
            raise UserError(f"--quality {q!r} is not a data quality; choose one of: "
                            f"{', '.join(QUALITIES)}")
    if suite_file is not None:
        suite = load_suite(suite_file, profile)
        if quality:
            suite = _checked_suite(Suite, {**suite.model_dump(), "qualities": list(quality)},
                                   f"{suite_file} with --quality")
    else:
        if not task_set or not quality:
            raise UserError("give a suite file, or --task-set and --quality")
        from marlbench.data.profiles import DATA_PROFILES
        from marlbench.envs.tasksets import TASK_SETS

        name = profile or "paper"
        if name not in DATA_PROFILES:
            raise UserError(f"--profile: unknown data profile {name!r}; choose one of: "
                            f"{', '.join(DATA_PROFILES)}")
        unknown = [s for s in task_set if s not in TASK_SETS]
        if unknown:
            raise UserError(f"--task-set: unknown task set {unknown[0]!r}; choose one of: "
                            f"{', '.join(TASK_SETS)}")
        suite = _checked_suite(Suite, {
            "name": "data", "backend": TASK_SETS[task_set[0]].backends[0],
            "task_sets": list(task_set), "qualities": list(quality), "seeds": [0],
            "algorithms": [{"name": "bc_t"}], "data": DATA_PROFILES[name]},
            "--task-set/--quality")
    store = Store(Path("results"), data_dir)
    full = make_plan(suite, data_dir)
    jobs = {i: j for i, j in full.jobs.items() if j.kind in ("behaviour", "dataset")}
    plan = Plan(suite, jobs)
    todo = [plan.jobs[i] for i in topological_order(plan) if not store.is_done(plan.jobs[i])]
    console.print(f"{len(jobs)} data job(s) for {', '.join(suite.task_sets)} × "
                  f"{', '.join(suite.qualities)}; {len(todo)} to run (data in {data_dir}/)")
    if dry_run:
        for job in todo:
            console.print(f"  {job.title}  [dim]{store.job_dir(job)}[/dim]")
        return
    start = time.time()
    summary = execute(plan, store, workers=workers, opts={"suite": suite.name},
                      console=err_console)
    console.print(f"collected {len(summary.done)} in {time.time() - start:.1f} s; "
                  f"{len(summary.already_done)} already there; {len(summary.failed)} failed")
    for jid, status in summary.failed.items():
        error = escape(str(status.get("error")))
        console.print(f"  [red]failed[/red] {plan.jobs[jid].title}: {error}\n"
                      f"    log: {status.get('log')}")
    _print_list(data_dir, {store.job_dir(j) for j in jobs.values() if j.kind == "dataset"})
    if not summary.ok:
        raise typer.Exit(1)


def _checked_suite(schema, data: dict, what: str):
    """The suite ``data`` made from command-line options, or one sentence naming the field."""
    from pydantic import ValidationError

    from marlbench.fileio import error_field, error_message

    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{what}: {error_field(err)}: {error_message(err)}") from None


def _scan(data_dir: Path) -> list[tuple[Path, dict | None | str]]:
    """(run folder, its manifest, None when it has none, or why it is invalid)."""
    from marlbench.data.collect import MANIFEST, read_manifest

    require_dir(data_dir, "--data-dir", must_exist=False)
    out: list[tuple[Path, dict | None | str]] = []
    for path in sorted(Path(data_dir).glob("*/*/*/*")):
        if path.parent.name == "behaviour" or not path.is_dir():
            continue
        if not (path / MANIFEST).exists():
            out.append((path, None))
            continue
        try:
            out.append((path, read_manifest(path)))
        except UserError as exc:
            out.append((path, str(exc)))
    return out


def _print_list(data_dir: Path, only: set[Path] | None = None) -> list[str]:
    """Print the datasets' table; return why each invalid manifest is invalid."""
    rows = [(p, m) for p, m in _scan(data_dir) if only is None or p in only]
    if not rows:
        console.print(f"no datasets under {data_dir}/ — collect with: marlbench data collect")
        return []
    t = Table(title=f"Datasets in {data_dir}/")
    for col in ("source", "task", "quality", "episodes", "win", "return", "len", "made by",
                "run"):
        t.add_column(col, justify="right" if col in ("episodes", "win", "return", "len")
                     else "left", no_wrap=col in ("task", "quality"))
    for path, m in rows:
        source, task, quality = path.parts[-4:-1]
        if m is None:
            t.add_row(source, task, quality, "", "", "", "", "[yellow]incomplete", path.name)
            continue
        if isinstance(m, str):
            t.add_row(source, task, quality, "", "", "", "", "[red]invalid manifest",
                      path.name)
            continue
        bp = m.get("behaviour_policy") or {}
        where = bp.get("checkpoint") or ("training log" if bp.get("until_checkpoint") else "")
        t.add_row(source, task, quality, str(m["episodes"]), _fmt(m.get("win_rate"), 2),
                  _fmt(m["mean_return"], 2), _fmt(m["episode_length"]["mean"], 1),
                  escape(f"{bp.get('name', '')} {where}".strip()), path.name)
    console.print(t)
    problems = [m for _, m in rows if isinstance(m, str)]
    for problem in problems:
        err_console.print(f"[bold red]error:[/bold red] {escape(problem)}", highlight=False,
                          soft_wrap=True)
    return problems


@data_app.command("list")
@user_errors
def list_data(
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
) -> None:
    """List the complete (and incomplete) datasets in the data directory with their quality
    statistics from the manifests: episodes, win rate, mean return, mean length (filled rows)
    and what made them. Checksums are checked by `data inspect` and before training.

    A manifest that is unreadable or off its schema is listed as invalid, its reason printed
    below the table, and the command exits with code 2.

    Example: marlbench data list --data-dir data
    """
    if _print_list(data_dir):
        raise typer.Exit(2)


@data_app.command("inspect")
@user_errors
def inspect(
    path: Path = typer.Argument(..., help="A part file (part_0.h5) or a run folder"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Shapes, episodes, mean return, win rate, episode lengths and checksum status of a
    dataset — marlbench's or the public ODIS files, unchanged. Exits with code 2 when the
    dataset is unreadable, off the ODIS format or does not match its manifest's checksums.

    Example: marlbench data inspect data/odis/3m/medium/qmix_2022-04-03_12-49-45 --json
    """
    import h5py

    from marlbench.data.collect import MANIFEST, read_manifest, verify_dataset
    from marlbench.data.dataset import LazyEpisodes
    from marlbench.data.format import DatasetError, read_part
    from marlbench.data.stats import episode_stats, guess_task, infer_won

    if not path.exists():
        raise UserError(f"dataset {path} does not exist")
    if not path.is_dir() and not path.is_file():
        raise UserError(f"dataset {path} is not a regular file or directory")
    run_dir = path if path.is_dir() else path.parent
    manifest_path = run_dir / MANIFEST
    manifest = read_manifest(run_dir) if manifest_path.exists() else None
    if manifest is None:
        checksum = "no manifest (public ODIS folders have none)"
    else:
        try:
            verify_dataset(run_dir)
            checksum = "ok"
        except DatasetError as exc:
            checksum = f"MISMATCH: {exc}"
    try:
        if path.is_dir():
            src = LazyEpisodes(run_dir, last=None)
            eps, files = src.load(), [str(p) for p in src.paths]
        else:
            eps, files = read_part(path), [str(path)]
        with h5py.File(files[0], "r") as f:
            keys = {k: {"shape": list(f[k].shape), "dtype": str(f[k].dtype),
                        "compression": f[k].compression} for k in f}
    except DatasetError as exc:  # unreadable or invalid: say so, with the checksum verdict
        if as_json:
            typer.echo(json.dumps({"path": str(path), "error": str(exc), "checksum": checksum},
                                  indent=2))
        else:
            err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}\n"
                              f"checksum: {escape(checksum)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    task = (manifest or {}).get("task") or guess_task(run_dir)
    won = infer_won(eps, task)
    stats = episode_stats(eps, won)
    win_source = "inferred from the final transition's reward" if won is not None else None
    if manifest is not None and path.is_dir() and manifest.get("win_rate") is not None:
        stats["win_rate"], win_source = manifest["win_rate"], "manifest"
    report = {"path": str(path), "files": files, "task": task, **stats,
              "win_rate_source": win_source, "keys": keys, "checksum": checksum,
              "manifest": manifest}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        if checksum.startswith("MISMATCH"):
            raise typer.Exit(2)
        return
    t = Table(title=str(path), show_header=False)
    t.add_column("field")
    t.add_column("value")
    el = stats["episode_length"]
    for field, value in [
        ("task", task or "unknown"),
        ("episodes", str(stats["episodes"])),
        ("mean return", f"{stats['mean_return']:.3f} (min {stats['return_min']:.2f}, max "
                        f"{stats['return_max']:.2f})"),
        ("win rate", f"{_fmt(stats['win_rate'])} ({win_source or 'unknown'})"),
        ("episode length", f"{el['mean']:.1f} filled rows (min {el['min']}, max {el['max']})"),
        ("time-outs", str(stats["time_outs"])),
        ("checksum", checksum),
    ]:
        t.add_row(field, value)
    console.print(t)
    k = Table(title="keys")
    for col in ("key", "shape", "dtype", "compression"):
        k.add_column(col)
    for name, info in keys.items():
        k.add_row(name, str(tuple(info["shape"])), info["dtype"], str(info["compression"]))
    console.print(k)
    if checksum.startswith("MISMATCH"):
        err_console.print(f"[bold red]error:[/bold red] {escape(checksum)}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(2)


@import_app.command("odis")
@user_errors
def import_odis_cmd(
    path: Path = typer.Argument(..., help="ODIS dataset root, map, quality or run folder"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
) -> None:
    """Copy ODIS runs (<map>/<quality>/<run>/part_*.h5) unchanged into <data>/odis/ and write
    a manifest for each. A suite reads them with `data: {imported: {<task set>: odis}}`.

    Example: marlbench data import odis ~/Downloads/dataset
    """
    from marlbench.data.importers import import_odis

    require_dir(data_dir, "--data-dir", must_exist=False)
    rows = import_odis(path, data_dir)
    t = Table(title=f"Imported into {data_dir}/odis/")
    for col in ("task", "quality", "episodes", "win rate", "mean return", "status"):
        t.add_column(col)
    for m in rows:
        t.add_row(m["task"], m["quality"], str(m["episodes"]), _fmt(m.get("win_rate")),
                  _fmt(m["mean_return"], 2), m["status"])
    console.print(t)


@import_app.command("alberdice")
@user_errors
def import_alberdice_cmd(
    path: Path = typer.Argument(..., help="An AlberDICE dataset folder (obs.npy, state.npy, "
                                "..., meta.json), e.g. rware-tiny-2ag-easy-v4-expert"),
    task: str = typer.Option(..., "--task", help="The task it was recorded on, e.g. "
                             "rware-tiny-2ag"),
    quality: str = typer.Option("expert", "--quality", help="Quality to file it under"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
) -> None:
    """Convert AlberDICE's pymarl EpisodeBatch arrays into ODIS-format HDF5 under
    <data>/alberdice/, every array's shape checked against the task; the manifest keeps the
    data's observation and state means and standard deviations (AlberDICE's evaluation
    standardises inputs with them).

    Example: marlbench data import alberdice rware-tiny-2ag-easy-v4-expert --task rware-tiny-2ag
    """
    from marlbench.data.importers import import_alberdice

    require_dir(data_dir, "--data-dir", must_exist=False)
    m = import_alberdice(path, task, quality, data_dir)
    console.print(f"{m['status']}: {m['task']}/{m['quality']}, {m['episodes']} episodes, "
                  f"mean return {m['mean_return']:.2f}, mean length "
                  f"{m['episode_length']['mean']:.1f}")


@import_app.command("og-marl")
@user_errors
def import_og_marl_cmd(
    path: Path = typer.Argument(..., help="An OG-MARL vault folder (e.g. terran_5_vs_5.vlt)"),
    task: str = typer.Option(..., "--task", help="The map the vault was recorded on"),
    quality: str = typer.Option(None, "--quality", help="Quality to file it under (default: "
                                "the uid lowercased, e.g. good)"),
    vault_uid: str = typer.Option(None, "--uid", help="Vault uid, e.g. Good, Medium, Poor, "
                                  "Replay (default: the only one)"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
) -> None:
    """Convert an OG-MARL (flashbax) vault into ODIS-format HDF5 under <data>/og-marl/.
    Needs flashbax, for this command only: pip install 'marlbench[ogmarl]'.

    Example: marlbench data import og-marl vaults/smac_v1/3m.vlt --task 3m --uid Good
    """
    from marlbench.data.importers import import_og_marl

    require_dir(data_dir, "--data-dir", must_exist=False)
    m = import_og_marl(path, task, quality, data_dir, vault_uid)
    console.print(f"{m['status']}: {m['task']}/{m['quality']}, {m['episodes']} episodes, "
                  f"mean return {m['mean_return']:.2f}, win rate {_fmt(m.get('win_rate'))}")
