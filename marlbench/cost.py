"""What a run will cost before it starts: a time estimate for every job from a calibration of
this machine, summed per job kind and algorithm, and the wall time projected by replaying the
scheduler over the executor's worker slots.

The model (each coefficient measured by ``marlbench calibrate``, or taken from the figures of
``benchmarks/`` when this machine has no calibration):

- **train**: ``updates × s_update``. A learner's s/update is measured at batch ``REF_BATCH`` of
  full-length episodes on the reference maps and carried to another map and batch as
  ``a × B × rows × size^p`` (rows = episode limit + 1, size = agents × (agents + enemies), the
  entity pairs an entity transformer attends over; ``a`` and ``p`` fitted through the reference
  maps). Batches are taken at full length, as the longest episode of a batch of 32 usually is:
  an upper bound when episodes end early. ODIS's two phases are costed separately.
- **eval**: the batched roll-out plays until its longest episode ends, so
  ``chunks × limit × fraction × s_step`` with s_step (per batch step, policy in the loop) fitted
  over map size like the updates and the measured fraction of the limit the longest episode
  reaches; plus the job's bookkeeping and, once per map and worker, building and compiling the
  environment.
- **dataset**: scripted collection, measured per episode (roll-out and writing) on the
  reference maps and carried over by size and episode limit; plus the compile.
- **behaviour**: ``env_steps`` at MAPPO's measured env-steps/s (carried over by size).

The wall time replays :func:`marlbench.plan.topological_order` on ``workers`` slots (each job
starts on the slot that frees first once its dependencies are done; a slot compiles each map
once), which is what the local executor does.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marlbench.envs.maps import get_map
from marlbench.fileio import read_json, write_json
from marlbench.plan import Plan, topological_order

REF_MAPS = ("3m", "3s5z")  # the size exponent spans 18 to 128 entity pairs
REF_BATCH = 8
EVAL_BATCH_LIMIT = 256  # evaluate.MAX_PARALLEL
COLLECT_BATCH = 128  # collect.COLLECT_BATCH
FORMAT = "marlbench-calibration/1"

# Figures measured with benchmarks/ on a 2-core x86-64 CPU, one torch thread (README, Speed):
# s/update at 8 full-length episodes on 3m and 3s5z; the others from updates/s at 32 episodes on
# 3m relative to BC-t, with BC-t's size exponent. Environment figures: env_throughput.py and
# collect_throughput.py.
_BC_T = {"3m": 0.15, "3s5z": 1.55}


def _like_bc_t(ratio: float) -> dict[str, float]:
    return {m: s * ratio for m, s in _BC_T.items()}


BENCHMARK_FIGURES: dict[str, Any] = {
    "format": FORMAT,
    "source": "benchmarks/ figures of a 2-core x86-64 CPU (README, Speed); no calibration of "
              "this machine",
    "machine": {"cpu": "2-core x86-64 (README figures)"},
    "threads": 1,
    "update_s": {
        "cpu": {
            "bc_t": _BC_T, "bc_r": _like_bc_t(4.8 / 4.9), "updet_m": _like_bc_t(4.8 / 3.1),
            "updet_l": _like_bc_t(4.8 / 3.6), "stairs": {"3m": 0.86, "3s5z": 7.4},
            "odis": {"3m": 0.25, "3s5z": 2.2}, "odis-pre": {"3m": 0.25, "3s5z": 2.2},
            "hissd": {"3m": 1.08, "3s5z": 12.0},
        },
    },
    # seconds per batch step of B parallel episodes with a BC-t policy in the loop, B = 256
    # (13,500 env-steps/s on 3m), and the fraction of the limit the longest episode reaches
    "eval_step_s": {"3m": 256 / 13_500, "10m": 256 / 13_500 * 3.6},
    "eval_length_fraction": 1.0,
    "eval_overhead_s": 0.018,  # benchmarks/eval_overhead.py (STAIRS-Former)
    "compile_s": 3.4,  # benchmarks/eval_overhead.py, warm JAX disk cache, median of 10 maps
    "worker_start_s": 5.0,  # importing torch, JAX and jaxmarl in a fresh worker
    # seconds per collected episode, gzip-9 parts, B = 128 (collect_throughput.py)
    "collect_episode_s": {"3m": 1 / 906, "10m": 1 / 68},
    "mappo_steps_per_s": {"3m": 7_700, "10m": 1_280},
}


def map_size(task: str) -> int:
    spec = get_map(task)
    return spec.n_agents * (spec.n_agents + spec.n_enemies)


def rows(task: str) -> int:
    return get_map(task).episode_limit + 1


@dataclass(frozen=True)
class PowerLaw:
    """``y = a × x^p`` through measured points (one point: ``p`` = 1)."""

    a: float
    p: float

    @classmethod
    def fit(cls, points: dict[float, float]) -> PowerLaw:
        xs = sorted(points)
        if not xs:
            raise ValueError("no points to fit")
        if len(xs) == 1 or xs[0] == xs[-1]:
            return cls(points[xs[0]] / xs[0], 1.0)
        x0, x1 = xs[0], xs[-1]
        p = math.log(points[x1] / points[x0]) / math.log(x1 / x0)
        return cls(points[x0] / x0**p, p)

    def __call__(self, x: float) -> float:
        return self.a * x**self.p


@dataclass
class CostModel:
    """Per-job time estimates (seconds on one worker) from a calibration document."""

    doc: dict[str, Any]
    laws: dict[str, PowerLaw] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return "machine_id" in self.doc

    def _law(self, key: str, points: dict[float, float]) -> PowerLaw:
        if key not in self.laws:
            self.laws[key] = PowerLaw.fit(points)
        return self.laws[key]

    def update_s(self, learner: str, task: str, batch: int, device: str = "cpu") -> float:
        table = self.doc["update_s"].get(device) or self.doc["update_s"]["cpu"]
        measured = table.get(learner) or table["bc_t"]
        # per episode-row: s / (B × rows) against size
        points = {map_size(m): s / (REF_BATCH * rows(m)) for m, s in measured.items()}
        return self._law(f"update/{device}/{learner}", points)(map_size(task)) * batch * rows(task)

    def eval_s(self, task: str, episodes: int) -> float:
        law = self._law("eval", {map_size(m): s for m, s in self.doc["eval_step_s"].items()})
        limit = get_map(task).episode_limit
        chunks = math.ceil(episodes / EVAL_BATCH_LIMIT)
        steps = chunks * limit * self.doc["eval_length_fraction"]
        return steps * law(map_size(task)) + self.doc["eval_overhead_s"]

    def collect_s(self, task: str, episodes: int) -> float:
        per_row = {map_size(m): s / rows(m) for m, s in self.doc["collect_episode_s"].items()}
        return episodes * rows(task) * self._law("collect", per_row)(map_size(task))

    def behaviour_s(self, task: str, env_steps: int) -> float:
        law = self._law("mappo", {map_size(m): 1 / v
                                  for m, v in self.doc["mappo_steps_per_s"].items()})
        return env_steps * law(map_size(task))

    def job_s(self, kind: str, c: dict, device: str = "cpu") -> float:
        """Seconds of one job on one worker (an eval job's compile excluded: a worker compiles
        each map once, see :func:`_replay`)."""
        if kind == "train":
            seen = c["seen"]
            per = {t: self.update_s(c["algorithm"], t, c["batch_episodes"], device) for t in seen}
            mean = sum(per.values()) / len(per)
            if c["algorithm"] == "odis":
                pre = sum(self.update_s("odis-pre", t, c["batch_episodes"], device)
                          for t in seen) / len(seen)
                f = c["params"].get("pretrain_fraction", 0.3)
                return c["updates"] * (f * pre + (1 - f) * mean)
            return c["updates"] * mean
        if kind == "eval":
            return self.eval_s(c["task"], c["episodes"])
        if kind == "dataset":  # each data job builds (and compiles) its own environment
            return self.collect_s(c["task"], c["episodes"]) + self.compile_s
        if kind == "behaviour":
            return self.behaviour_s(c["task"], c["settings"]["env_steps"]) + self.compile_s
        raise ValueError(f"unknown job kind {kind!r}")

    @property
    def compile_s(self) -> float:
        return float(self.doc["compile_s"])

    @property
    def worker_start_s(self) -> float:
        return float(self.doc.get("worker_start_s", 0.0))


@dataclass
class Projection:
    cpu_hours: dict[str, float]  # per job kind
    per_algorithm: dict[str, dict[str, float]]  # label → {train, eval} CPU-hours
    gpu_hours: float | None  # None: no GPU figures
    wall_s: float
    workers: int
    source: str
    jobs: dict[str, int]


def project(plan: Plan, model: CostModel, workers: int, skip: set[str] | None = None,
            gpu_train: bool = False) -> Projection:
    """Sum the jobs of ``plan`` not in ``skip`` (done already) and replay the scheduler on
    ``workers`` slots (0 = in-process, one slot)."""
    skip = skip or set()
    device = "cuda" if gpu_train and "cuda" in model.doc["update_s"] else "cpu"
    est: dict[str, float] = {}
    for jid, job in plan.jobs.items():
        if jid not in skip:
            est[jid] = model.job_s(job.kind, job.config, device if job.kind == "train" else "cpu")
    cpu: dict[str, float] = {}
    per_alg: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    gpu = 0.0
    for jid, s in est.items():
        job = plan.jobs[jid]
        counts[job.kind] = counts.get(job.kind, 0) + 1
        if job.kind == "train" and device == "cuda":
            gpu += s / 3600
        else:
            cpu[job.kind] = cpu.get(job.kind, 0.0) + s / 3600
        if job.kind in ("train", "eval"):
            row = per_alg.setdefault(job.config["label"], {"train": 0.0, "eval": 0.0})
            row[job.kind] += s / 3600
    wall = _replay(plan, est, model.compile_s, max(1, workers), model.worker_start_s)
    return Projection(cpu, per_alg, gpu if device == "cuda" else None, wall, max(1, workers),
                      model.doc["source"], counts)


def _replay(plan: Plan, est: dict[str, float], compile_s: float, slots: int,
            start_s: float = 0.0) -> float:
    """Wall time of the local executor's schedule: whenever a slot is free, it takes the first
    job, in topological order, whose dependencies are done (jobs done before the run count as
    done); a slot pays ``start_s`` before its first job and compiles each evaluation map
    once."""
    order = [j for j in topological_order(plan) if j in est]
    rank = {j: i for i, j in enumerate(order)}
    waiting = {j: sum(d in est for d in plan.jobs[j].deps) for j in order}
    children: dict[str, list[str]] = {j: [] for j in order}
    for j in order:
        for d in plan.jobs[j].deps:
            if d in est:
                children[d].append(j)
    ready = [rank[j] for j in order if waiting[j] == 0]
    heapq.heapify(ready)
    free = list(range(slots))
    running: list[tuple[float, int, str]] = []
    compiled: list[set[str]] = [set() for _ in range(slots)]
    started = [False] * slots
    t = 0.0
    while ready or running:
        while ready and free:
            jid = order[heapq.heappop(ready)]
            slot = free.pop()
            job = plan.jobs[jid]
            s = est[jid]
            task = job.config.get("task")
            if job.kind == "eval" and task not in compiled[slot]:
                compiled[slot].add(task)
                s += compile_s
            if not started[slot]:
                started[slot] = True
                s += start_s
            heapq.heappush(running, (t + s, slot, jid))
        t, slot, jid = heapq.heappop(running)
        free.append(slot)
        for child in children[jid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, rank[child])
    return t


# -- where calibrations live ------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "gpus": gpus,
            "python": platform.python_version(), "torch": torch.__version__}


def machine_id(info: dict[str, Any]) -> str:
    key = f"{info['host']}|{info['cpu']}|{info['cores']}|{','.join(info['gpus'])}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """``$MARLBENCH_CACHE``, else ``$XDG_CACHE_HOME/marlbench``, else ``~/.cache/marlbench``."""
    env = os.environ.get("MARLBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "marlbench"


def calibration_path(info: dict[str, Any] | None = None) -> Path:
    return cache_dir() / "calibration" / f"{machine_id(info or machine_info())}.json"


def load_model() -> CostModel:
    """This machine's calibration, else the benchmarks' figures (the model says which)."""
    from marlbench.fileio import validated
    from marlbench.results.schemas import CalibrationFile

    path = calibration_path()
    if path.is_file():
        doc = read_json(path, "calibration file")
        validated(CalibrationFile, doc, path, "calibration file")
        return CostModel(doc)
    return CostModel(dict(BENCHMARK_FIGURES))


def save_calibration(doc: dict[str, Any]) -> Path:
    path = calibration_path(doc["machine"])
    write_json(path, doc, sort_keys=False, root=cache_dir())
    return path


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
