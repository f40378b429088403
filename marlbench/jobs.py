"""Job functions: what a dataset, train or eval job does. Executors call :func:`run_job`;
nothing here knows which executor runs it."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from marlbench import __version__
from marlbench.fileio import save_torch
from marlbench.plan import Job
from marlbench.results.store import COMMIT_MARKS, Store, read_job_file, write_json

Progress = Callable[[int, int, str], None]


def package_versions() -> dict[str, str]:
    out = {"marlbench": __version__, "python": platform.python_version()}
    for name in ("torch", "jax", "jaxmarl", "numpy", "rware"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _behaviour(job: Job, out: Path, store: Store, opts: dict, progress: Progress) -> None:
    from marlbench.data.protocol import train_behaviour

    c = job.config
    summary = train_behaviour(c["task"], c["backend"], c["settings"], c["seed"], out, progress,
                              c.get("units"), c.get("reward"))
    logging.info("behaviour %s: expert eval win %.3f at %d steps; medium eval win %.3f at %d "
                 "steps (threshold %.3f)", c["task"], summary["expert"]["eval_win_rate"],
                 summary["expert"]["env_steps"], summary["medium"]["eval_win_rate"],
                 summary["medium"]["env_steps"], summary["medium"]["threshold"])
    for warning in summary["warnings"]:
        logging.warning(warning)


def _dataset(job: Job, out: Path, store: Store, opts: dict, progress: Progress) -> None:
    from marlbench.data.collect import collect_scripted
    from marlbench.data.protocol import make_quality

    c = job.config
    if "behaviour" in c:
        behaviour_dir = store.behaviour_dir(c["backend"], c["task"], c["behaviour"])
        manifest = make_quality(c["quality"], behaviour_dir, c["episodes"], c["seed"], out,
                                progress)
    else:  # a script, or the warehouse planner standing in for the behaviour policy
        manifest = collect_scripted(c["task"], c["quality"], c["episodes"], c["seed"], out,
                                    c["backend"], progress, c.get("units"), c.get("reward"),
                                    planner=c.get("policy") == "planner")
    logging.info("collected %s/%s: %s", c["task"], c["quality"], json.dumps(
        {k: manifest[k] for k in ("episodes", "mean_return", "win_rate")}))


def _build_learner(c: dict, device: Any):
    from marlbench.envs.maps import get_map
    from marlbench.envs.tasksets import get_task_set
    from marlbench.learners import get_learner

    cls = get_learner(c["algorithm"])
    layouts = {t: get_map(t).layout for t in get_task_set(c["task_set"]).test}
    learner = cls(layouts, cls.Config.model_validate(c["params"]), device)
    learner.set_budget(c["updates"])
    return learner


def _train_data(c: dict, store: Store) -> dict:
    from marlbench.data.dataset import load_task_data
    from marlbench.envs.maps import get_map

    return {
        task: load_task_data(
            [(store.data_dir / src["dir"], src["last"]) for src in sources],
            get_map(task).layout, task,
        )
        for task, sources in c["datasets"].items()
    }


def _train(job: Job, out: Path, store: Store, opts: dict, progress: Progress) -> None:
    _train_together([job], {job.id: _train_data(job.config, store)}, store, opts,
                    lambda _jid: progress)


def _eval(job: Job, out: Path, store: Store, opts: dict, progress: Progress) -> None:
    import torch

    from marlbench.evaluate import evaluate
    from marlbench.learners.base import pick_device

    c = job.config
    device = pick_device(opts.get("device", "auto"))
    train_dir = store.dir_of("train", c["train"])
    train_cfg = read_job_file(train_dir / "job.json")["config"]
    learner = _build_learner(train_cfg, device)
    ckpt = torch.load(train_dir / "checkpoints" / f"step_{c['step']}.pt", map_location=device)
    learner.load_state_dict(ckpt["learner"])
    seed = c["eval_seed"] * 1000 + c["seed"]
    policy = learner.policy()
    actions = c.get("actions", "greedy")
    if actions == "sampled":
        policy = policy.sampling(seed)
    standardisation = ckpt.get("standardisation")
    if standardisation is not None:
        from marlbench.data.dataset import Standardiser
        from marlbench.evaluate import StandardisedPolicy

        policy = StandardisedPolicy(policy, Standardiser.from_dict(standardisation[c["task"]]))
    start = time.time()
    stats = evaluate(policy, c["task"], c["episodes"], seed, c["backend"], progress,
                     c.get("units"), c.get("reward"))
    record = {
        "suite": opts.get("suite"),
        "algorithm": c["algorithm"],
        "label": c["label"],
        "task_set": c["task_set"],
        "quality": c["quality"],
        "seed": c["seed"],
        "task": c["task"],
        "split": c["split"],
        "step": c["step"],
        **stats,
        "wall_time_s": round(time.time() - start, 3),
        "backend": c["backend"],
        "units": c.get("units"),
        **({"reward": c["reward"]} if "reward" in c else {}),
        "action_selection": actions,
        "standardised": standardisation is not None,
        "versions": package_versions(),
        "config_hash": c["train"],
        "job_id": job.id,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(out / "records.json", [record])
    logging.info("%s: win rate %.3f over %d episodes", c["task"], stats["win_rate"],
                 stats["episodes"])


JOB_FUNCTIONS: dict[str, Callable[..., None]] = {
    "behaviour": _behaviour,
    "dataset": _dataset,
    "train": _train,
    "eval": _eval,
}


def _clear_invalid_commit_mark(job: Job, store: Store, out: Path) -> None:
    """A data job's folder is complete when its commit mark (manifest, summary) is there; a
    mark over outputs that fail their checks (edited, half-deleted) is removed, so the job
    collects again (a dataset) or resumes from its saved state (a behaviour run) instead of
    refusing to touch the folder."""
    mark = out / COMMIT_MARKS.get(job.kind, "")
    if job.kind not in COMMIT_MARKS or not mark.is_file():
        return
    problem = store.output_problem(job)
    if problem:
        logging.warning("%s; removing %s so that the job runs again", problem, mark)
        mark.unlink()


def _start_clean(job: Job, out: Path) -> None:
    """Nothing of an earlier attempt that died mid-job (a killed worker, a lost node) survives
    into this one: its temporary files go, and a train or eval job's outputs (which it rewrites
    from scratch) are removed before it starts. Datasets drop stale parts themselves; a
    behaviour run resumes from its last saved state, which is written atomically."""
    for stale in [*out.glob(".*.tmp"), *out.glob("*.tmp"), *out.glob("checkpoints/.*.tmp")]:
        stale.unlink(missing_ok=True)
    if job.kind == "train":
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
    elif job.kind == "eval":
        (out / "records.json").unlink(missing_ok=True)


def run_job(
    job_dict: dict, results_dir: str, data_dir: str, opts: dict, progress: Progress | None = None
) -> dict:
    """Run one job in this process; record its status; never raise for a job's own failure."""
    job = Job.from_dict(job_dict)
    store = Store(Path(results_dir), Path(data_dir))
    try:
        opened = _open(job, store)
    except JobBusy as exc:  # its folder is another process's: touch nothing, write nothing
        return {"id": job.id, "kind": job.kind, "title": job.title, "state": "failed",
                "error": str(exc)}
    start = time.time()
    status: dict[str, Any] = {}
    try:
        _clear_invalid_commit_mark(job, store, opened[0])
        fn = opts.get("job_functions", {}).get(job.kind) or JOB_FUNCTIONS[job.kind]
        if isinstance(fn, str):  # "module:function", for jobs registered by name
            module, _, name = fn.partition(":")
            fn = getattr(__import__(module, fromlist=[name]), name)
        fn(job, opened[0], store, opts, progress or (lambda *a: None))
        status.update(state="done")
    except Exception as exc:  # a failing job is recorded, not propagated
        logging.error("job failed:\n%s", traceback.format_exc())
        status.update(state="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        status = _close(job, opened, status, start) or status
    return status


Opened = tuple[Path, logging.Handler, int]
LOCK = ".lock"


class JobBusy(RuntimeError):
    """The job's folder is locked by another process running the same job."""


def _lock(out: Path) -> int:
    """An exclusive lock on a job's folder while the job runs (released when its process
    ends, however it ends): a second process given the same job (an orphaned worker, a
    second `marlbench run` on the same results or data) is refused before it touches the
    folder, instead of writing beside the first."""
    import fcntl

    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise JobBusy(f"{out} is being run by another process (a second marlbench run, or a "
                      "worker of one still alive); not run twice") from None
    return fd


def _open(job: Job, store: Store) -> Opened:
    """A job's folder locked and made ready to run it (see :func:`_start_clean`), its log
    attached."""
    out = store.job_dir(job)
    out.mkdir(parents=True, exist_ok=True)
    fd = _lock(out)
    (out / "status.json").unlink(missing_ok=True)  # a rerun of a failed job: running now
    _start_clean(job, out)
    write_json(out / "job.json", job.to_dict())
    handler = logging.FileHandler(out / "log.txt", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return out, handler, fd


def _log_to(opened: Opened, level: int, message: str) -> None:
    """A line in one job's log only (the others of its group do not get it)."""
    opened[1].emit(logging.LogRecord("marlbench", level, __file__, 0, message, None, None))


def _close(job: Job, opened: Opened, status: dict | None, start: float) -> dict | None:
    """Detach the job's log and write its status (none when ``status`` is None: the job is to
    run again); the full status written."""
    import torch

    out, handler, fd = opened
    logging.getLogger().removeHandler(handler)
    handler.close()
    try:
        if status is None:
            return None
        full = {"id": job.id, "kind": job.kind, "title": job.title, **status,
                "wall_time_s": round(time.time() - start, 3), "log": str(out / "log.txt"),
                "torch_threads": torch.get_num_threads(),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(out / "status.json", full)
        return full
    finally:
        os.close(fd)  # the lock goes with it


# -- fused groups ---------------------------------------------------------------------------
FUSED_APART = ("quality", "datasets")  # what the train jobs of one fused group may differ in


def fuse_key(job: Job) -> str | None:
    """Train jobs with one key can train fused (:func:`marlbench.learners.base.fuse`): same
    algorithm, parameters, task set, seed and budget, different data. None: not fusable."""
    if job.kind != "train":
        return None
    from marlbench.learners import get_learner

    if not get_learner(job.config["algorithm"]).fusable:
        return None
    return json.dumps({k: v for k, v in job.config.items() if k not in FUSED_APART},
                      sort_keys=True)


def run_jobs(job_dicts: list[dict], results_dir: str, data_dir: str, opts: dict,
             progress_for: Callable[[str], Progress] | None = None) -> list[dict]:
    """Run jobs in this process and record each one's status; train jobs of one
    :func:`fuse_key` train fused. Each job keeps its own folder, log, metrics, checkpoints and
    status; a job whose data cannot be read fails alone, and if the fused training itself
    fails, every job of the group runs again alone (so only a job that fails by itself is
    recorded failed)."""
    progress_for = progress_for or (lambda _jid: lambda *a: None)
    jobs = [Job.from_dict(d) for d in job_dicts]
    keys = {fuse_key(j) for j in jobs}
    if len(jobs) == 1 or len(keys) != 1 or None in keys:
        return [run_job(d, results_dir, data_dir, opts, progress_for(d["id"]))
                for d in job_dicts]
    store = Store(Path(results_dir), Path(data_dir))
    statuses: dict[str, dict] = {}
    opened: dict[str, Opened] = {}
    start = time.time()
    try:
        for job in jobs:
            opened[job.id] = _open(job, store)
    except JobBusy:  # one of them runs elsewhere: each runs (or is refused) alone
        for job in jobs:
            if job.id in opened:
                _close(job, opened[job.id], None, start)
        return [run_job(d, results_dir, data_dir, opts, progress_for(d["id"]))
                for d in job_dicts]
    alone: list[Job] = []
    try:
        data = {}
        for job in jobs:
            try:
                data[job.id] = _train_data(job.config, store)
            except Exception as exc:  # this job's data: it fails alone
                _log_to(opened[job.id], logging.ERROR, "job failed:\n" + traceback.format_exc())
                statuses[job.id] = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        group = [j for j in jobs if j.id in data]
        if len(group) > 1 and _same_batch_sizes(group, data):
            try:
                _train_together(group, data, store, opts, progress_for)
                statuses.update({j.id: {"state": "done"} for j in group})
            except Exception:
                logging.error("fused training failed; each job runs again alone:\n%s",
                              traceback.format_exc())
                alone = group
        else:
            alone = group
    finally:
        for job in jobs:
            full = _close(job, opened[job.id], None if job in alone else statuses.get(job.id),
                          start)
            if full:
                statuses[job.id] = full
    for job in alone:
        statuses[job.id] = run_job(job.to_dict(), results_dir, data_dir, opts,
                                   progress_for(job.id))
    return [statuses[j.id] for j in jobs]


def _same_batch_sizes(group: list[Job], data: dict) -> bool:
    """A group's batches stack only if every job draws as many episodes per task."""
    sizes = {tuple(min(j.config["batch_episodes"], d.n_episodes)
                   for _, d in sorted(data[j.id].items())) for j in group}
    return len(sizes) == 1


def _train_together(group: list[Job], data: dict, store: Store, opts: dict,
                    progress_for: Callable[[str], Progress]) -> None:
    """Train one job, or a group of one :func:`fuse_key` fused; each job's metrics and
    checkpoints in its own folder."""
    import numpy as np
    import torch

    from marlbench.learners.base import fuse, pick_device
    from marlbench.train import order_stream, train_group

    c = group[0].config
    device = pick_device(opts.get("device", "auto"))
    torch.manual_seed(c["seed"])  # seed, then the learner (its initial parameters)
    learner = _build_learner(c, device)
    if len(group) > 1:
        fuse(learner, len(group))
        logging.info("training %s on %s fused: %d jobs (%s) for %d updates on %s", c["label"],
                     c["task_set"], len(group), ", ".join(j.config["quality"] for j in group),
                     c["updates"], device)
    else:
        logging.info("training %s on %s (%s) for %d updates on %s", c["label"], c["task_set"],
                     c["quality"], c["updates"], device)
    outs = [store.job_dir(j) for j in group]
    for out in outs:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    standardisers: list[dict | None] = [None] * len(group)
    if c.get("standardise"):  # each job with its own data's statistics, saved with its weights
        from marlbench.data.dataset import feature_stats

        for j, job in enumerate(group):
            stats = {task: feature_stats(d) for task, d in data[job.id].items()}
            for task, d in data[job.id].items():
                d.standardiser = stats[task]
            standardisers[j] = {task: st.to_dict() for task, st in stats.items()}

    def save(j: int, step: int) -> None:
        extra = {} if standardisers[j] is None else {"standardisation": standardisers[j]}
        save_torch(outs[j] / "checkpoints" / f"step_{step}.pt",
                   {"step": step, "learner": learner.job_state(j), **extra})

    files = [open(out / "metrics.jsonl", "w") for out in outs]  # noqa: SIM115 - closed below
    progress = [progress_for(j.id) for j in group]
    try:
        def log(j: int, row: dict) -> None:
            files[j].write(json.dumps(row) + "\n")
            files[j].flush()

        # each job samples from its own stream, seeded as seed_everything seeds it
        train_group(learner, [data[j.id] for j in group], c["updates"], c["batch_episodes"],
                    [np.random.default_rng(c["seed"]) for _ in group], order_stream(c["seed"]),
                    c["checkpoint_steps"], save, log,
                    lambda d, t, w: [p(d, t, w) for p in progress] and None)
    finally:
        for f in files:
            f.close()
