"""``marlbench run`` and ``marlbench validate``."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from marlbench.cli.common import console, err_console, user_errors
from marlbench.suite import load_suite

DEFAULT_RESULTS = Path("results")
DEFAULT_DATA = Path(os.environ.get("MARLBENCH_DATA_DIR", "data"))
FUSE_GPU = 8  # default --fuse on a GPU (a group is at most a suite's data qualities)


@user_errors
def run(
    suite_file: Path = typer.Argument(..., help="Suite YAML file, e.g. suites/smoke.yaml"),
    profile: str = typer.Option(None, "--profile", "-p", help="Named profile of the suite "
                                "(e.g. quick, paper) whose fields override the base"),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Results directory"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Dataset cache shared by "
                                  "suites (env MARLBENCH_DATA_DIR)"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", "-w", min=0, max=1024,
                                help="Worker processes (0 = run in this process); local "
                                "executor"),
    threads: int = typer.Option(None, "--threads", min=1, max=1024,
                                help="torch threads per worker (default: cores ÷ workers). "
                                "Results are bit-identical for the same seed and thread count; "
                                "other counts change float reduction order"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: "
                               "the suite's training.device)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, run nothing"),
    units: str = typer.Option(None, "--units", help="Unit profile of the embedded smax "
                              "backend, overriding the suite's units: smax (SMAX's own) | sc2 "
                              "(StarCraft II's units and rules); results are kept apart"),
    executor: str = typer.Option("local", "--executor", help="local (worker processes of this "
                                 "machine) or ray (a Ray cluster; pip install 'marlbench[ray]')"),
    address: str = typer.Option(None, "--address", help="Ray cluster to join: auto (the one "
                                "this machine belongs to) or HOST:PORT (default: start a local "
                                "one for this run); --executor ray only"),
    retries: int = typer.Option(None, "--retries", min=0, max=100, help="Retries of a job whose "
                                "Ray worker or node died (default 2); --executor ray only"),
    gpus_per_job: float = typer.Option(1.0, "--gpus-per-job", min=0.0, max=1.0,
                                       help="Share of a GPU per training job, more than 0 and "
                                       "at most 1 (0.25 = four training jobs per GPU); local "
                                       "executor (on Ray: the suite's resources)"),
    eval_on_gpu: bool = typer.Option(False, "--eval-on-gpu", help="Evaluation jobs use the GPUs "
                                     "too (default: CPU); local executor"),
    fuse: int = typer.Option(None, "--fuse", min=1, max=64, help="Train up to N training jobs "
                             "fused in one worker: jobs of one algorithm, task set, seed and "
                             "budget that differ only in data quality share stacked networks "
                             "(each job's numbers equal its separate run's). 1 = off. Default: "
                             f"{FUSE_GPU} when training on a GPU, 1 on CPU (where fusing does "
                             "not pay: benchmarks/train_throughput.py); local executor"),
) -> None:
    """Run a suite: collect missing datasets, train every algorithm × task set × quality × seed,
    evaluate every checkpoint on every test task. Finished jobs are never run again.

    Example: marlbench run suites/smoke.yaml --workers 2
    """
    from marlbench.data.dataset import memory_budget_bytes
    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store

    check_executor_options(executor, address, retries, gpus_per_job, eval_on_gpu, fuse)
    store = Store(results, data_dir)  # both must be directories (or not exist yet)
    memory_budget_bytes()  # its environment variable is read by every training job
    suite = load_suite(suite_file, profile, units)
    chosen = check_device(device or suite.training.device,
                          "--device" if device else f"{suite_file}: training.device")
    plan = make_plan(suite, data_dir)
    counts = Counter(j.kind for j in plan.jobs.values())
    states = {j.id: store.done_state(j) for j in plan.jobs.values()}
    done = Counter(j.kind for j in plan.jobs.values() if states[j.id][0])
    repairs = {jid: problem for jid, (ok, problem) in states.items() if problem}
    table = Table(title=f"Plan of {suite.name}" + (f" (profile {profile})" if profile else ""))
    for col in ("jobs", "total", "done", "to run"):
        table.add_column(col, justify="right" if col != "jobs" else "left")
    for kind in ("behaviour", "dataset", "train", "eval"):
        if not counts[kind]:
            continue
        table.add_row(kind, str(counts[kind]), str(done[kind]), str(counts[kind] - done[kind]))
    console.print(table)
    print_budgets(suite)
    if repairs:
        console.print(f"[yellow]{len(repairs)} job(s) finished before but their outputs are "
                      "missing or invalid; they run again:[/yellow]")
        for jid, problem in list(repairs.items())[:10]:
            console.print(f"  {plan.jobs[jid].title}: {escape(problem)}", highlight=False)
        if len(repairs) > 10:
            console.print(f"  ... and {len(repairs) - 10} more")
    if dry_run:
        from marlbench.cost import load_model, project

        skip = {jid for jid, (ok, _) in states.items() if ok}
        slots = _slots(executor, workers, gpus_per_job)
        gpu = chosen != "cpu" and executor == "local" and _gpu_count() > 0
        print_projection(project(plan, load_model(), slots, skip, gpu_train=gpu,
                                 data_dir=data_dir), executor)
        return
    store.save_plan(plan, profile)
    start = time.time()
    opts = {"device": chosen, "suite": suite.name}
    if executor == "ray":
        from marlbench.executors.ray_executor import execute as execute_ray

        summary = execute_ray(plan, store, opts=opts, console=err_console, address=address,
                              retries=2 if retries is None else retries, threads=threads)
    else:
        if fuse is None:
            fuse = FUSE_GPU if chosen != "cpu" and _gpu_count() > 0 else 1
        summary = execute(plan, store, workers=workers, opts=opts, console=err_console,
                          threads=threads, gpus_per_job=gpus_per_job, eval_on_gpu=eval_on_gpu,
                          fuse=fuse)
    wall = time.time() - start
    console.print(
        f"ran {len(summary.done)} job(s) in {wall:.1f} s; {len(summary.already_done)} already "
        f"done; {len(summary.failed)} failed; {len(summary.skipped)} skipped"
    )
    for jid, status in summary.failed.items():
        error = escape(str(status.get("error")))
        console.print(f"  [red]failed[/red] {plan.jobs[jid].title}: {error}\n"
                      f"    log: {status.get('log')}")
    if summary.skipped:
        console.print(f"  {len(summary.skipped)} job(s) skipped because a dependency failed")
    if not summary.ok:
        raise typer.Exit(1)
    console.print(f"results in {results}/ — next: marlbench report {results} --table")


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _slots(executor: str, workers: int, gpus_per_job: float) -> int:
    """Jobs that run at once: the local executor's workers (0 = one, in this process); on
    Ray, the cluster is not known before it is joined, so the CPUs of this machine."""
    if executor == "ray":
        return os.cpu_count() or 1
    return max(1, workers)


def print_budgets(suite) -> None:
    """Each algorithm's training budget: task batches (the references' t_env), the optimiser
    steps they make, the episodes seen, pre-training, checkpoints."""
    from marlbench.envs.tasksets import get_task_set
    from marlbench.suite import resolved_params

    seen = sorted({len(get_task_set(s).seen) for s in suite.task_sets})
    t = Table(title="Training budget per run")
    for col in ("algorithm", "task batches", "opt. steps", "batch", "episodes", "pre-train",
                "ckpts"):
        t.add_column(col, justify="left" if col == "algorithm" else "right",
                     no_wrap=col == "algorithm")
    rounds = []
    for entry in suite.algorithms:
        b = suite.budget(entry)
        per_round = resolved_params(suite, entry).get("update_discipline") == "per_round"
        if per_round:
            rounds.append(entry.label)
        steps = "–".join(f"{-(-b.updates // n):,}" for n in seen) if per_round else \
            f"{b.updates:,}"
        t.add_row(entry.label, f"{b.updates:,}", steps, str(b.batch_episodes),
                  f"{b.updates * b.batch_episodes:,}",
                  f"{b.pretrain_updates:,}" if b.pretrain_updates else "–",
                  str(len(b.checkpoint_steps())))
    console.print(t)
    if rounds:
        console.print(f"{', '.join(rounds)}: one optimiser step per round of the seen tasks "
                      "(gradients summed over the round)", style="dim", highlight=False)


def print_projection(p, executor: str) -> None:
    """The projected cost of the jobs still to run, per job kind and algorithm."""
    t = Table(title="Projected cost of the jobs to run")
    for col in ("jobs", "count", "CPU-hours"):
        t.add_column(col, justify="left" if col == "jobs" else "right")
    for kind in ("behaviour", "dataset", "train", "eval"):
        if p.jobs.get(kind):
            cpu = p.cpu_hours.get(kind)
            t.add_row(kind, str(p.jobs[kind]), "on GPU" if cpu is None else _hours(cpu))
    console.print(t)
    if p.per_algorithm:
        a = Table(title="per algorithm")
        for col in ("algorithm", "train hours", "eval CPU-hours"):
            a.add_column(col, justify="left" if col == "algorithm" else "right")
        for label, row in p.per_algorithm.items():
            a.add_row(label, _hours(row["train"]), _hours(row["eval"]))
        console.print(a)
    gpu = f"GPU-hours (train): {_hours(p.gpu_hours)}" if p.gpu_hours is not None else \
        "GPU-hours: not projected (training uses the GPUs, but the calibration has no CUDA " \
        "figures: run `marlbench calibrate` on this machine; train hours above are CPU " \
        "figures)" if p.gpu_uncalibrated else "GPU-hours: none planned (training on CPU)"
    where = f"{p.workers} worker(s)" if executor == "local" else \
        f"{p.workers} slot(s) (this machine's cores; a cluster divides it by its size)"
    console.print(f"CPU-hours {_hours(sum(p.cpu_hours.values()))}; {gpu}; projected wall time "
                  f"{_duration(p.wall_s)} on {where}", highlight=False)
    if p.lengths:
        said = {"data": "read from the datasets on disk",
                "scripted": "the calibrated scripted episodes' lengths",
                "full length": "full-length episodes, an upper bound until the data is "
                               "collected (run --dry-run again then)"}
        parts = [f"{n} {said[b]}" for b, n in sorted(p.lengths.items())]
        console.print(f"training batches' episode lengths per (train job, task): "
                      f"{'; '.join(parts)}", style="dim", highlight=False)
    if p.unmeasured:
        console.print(f"rough: no figures yet for {'; '.join(p.unmeasured)}", style="yellow",
                      highlight=False)
    console.print(f"from {p.source}" + ("" if "calibrated" in p.source else
                                        " — run `marlbench calibrate` to measure this machine"),
                  style="dim", highlight=False)


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 100 else f"{h:.2f}" if h >= 1 else f"{h:.4f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    if hours < 100:
        return f"{hours:.1f} h"
    return f"{hours:,.0f} h ({hours / 24:,.0f} days)"


def check_executor_options(executor: str, address: str | None, retries: int | None,
                           gpus_per_job: float, eval_on_gpu: bool,
                           fuse: int | None = None) -> None:
    """The executor options make sense together, before anything is read or run."""
    import math
    import re

    from marlbench.errors import UserError

    if executor not in ("local", "ray"):
        raise UserError(f"--executor {executor!r}: choose local or ray")
    if not (math.isfinite(gpus_per_job) and 0 < gpus_per_job <= 1):
        raise UserError(f"--gpus-per-job {gpus_per_job}: give a share of one GPU, more than 0 "
                        "and at most 1 (0.25 = four training jobs per GPU)")
    if executor == "local" and (address is not None or retries is not None):
        raise UserError("--address and --retries apply to --executor ray only")
    if executor == "ray" and (gpus_per_job != 1.0 or eval_on_gpu):
        raise UserError("--gpus-per-job and --eval-on-gpu apply to the local executor; on Ray "
                        "set resources.train.gpus and resources.eval.gpus in the suite")
    if executor == "ray" and fuse not in (None, 1):
        raise UserError("--fuse applies to the local executor; on Ray every job runs alone")
    if address is not None:
        m = re.fullmatch(r"auto|(?:ray://)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}:(\d{1,5})", address)
        if not m or (m.group(1) and not 0 < int(m.group(1)) < 65536):
            raise UserError(f"--address {address!r}: use auto or HOST:PORT (e.g. "
                            "10.0.0.1:6379)")


def check_device(device: str, where: str) -> str:
    """A device name that exists on this machine: auto, cpu, cuda or cuda:N (CUDA only when
    present), checked before any job starts."""
    import re

    from marlbench.errors import UserError

    if not re.fullmatch(r"auto|cpu|cuda(:\d{1,2})?", device):
        raise UserError(f"{where}: unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"{where}: {device} was asked for, but this machine has no CUDA "
                            "device (use auto or cpu)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(f"{where}: {device} does not exist; this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
    return device


@user_errors
def validate(
    suite_file: Path = typer.Argument(..., help="Suite YAML file"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Where imported data is "
                                  "looked up (env MARLBENCH_DATA_DIR)"),
) -> None:
    """Check a suite file (and all its profiles) without running anything.

    Example: marlbench validate suites/smoke.yaml
    """
    from marlbench.fileio import require_dir
    from marlbench.plan import make_plan

    require_dir(data_dir, "data directory", must_exist=False)
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
