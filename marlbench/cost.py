"""What a run will cost before it starts: a time estimate for every job from a calibration of
this machine, summed per job kind and algorithm, and the wall time projected by replaying the
scheduler over the executor's worker slots.

The model (each coefficient measured by ``marlbench calibrate``, or taken from the figures of
``benchmarks/`` when this machine has no calibration):

- **train**: ``updates × s_update``. A learner's s/update is measured on the reference maps at
  batch ``REF_BATCH`` of full-length episodes and at one short episode, and carried to another
  map and batch as ``fixed(size) + a × B × rows × size^p`` (size = agents × (agents +
  enemies), the entity pairs an entity transformer attends over; both parts fitted as power
  laws through the reference maps). ``rows`` is what a batch is cut to, the longest of its B
  sampled episodes: its expectation is computed from the episode lengths of the job's data
  (:class:`EpisodeLengths`). ODIS's two phases are costed separately.
- **eval**: the batched roll-out plays until its longest episode ends, so
  ``chunks × steps × s_step``, with s_step (per batch step, policy in the loop) fitted over map
  size like the updates and ``steps`` the expected longest of a chunk's episodes, taking the
  training data's lengths as those of the policy trained on them (else the calibrated fraction
  of the limit an untrained policy's longest episode reaches); plus the job's bookkeeping and,
  once per map and worker, building and compiling the environment.
- **dataset**: scripted collection, measured per episode (roll-out and writing) on the
  reference maps and carried over by size and episode limit; plus the compile.
- **behaviour**: ``env_steps`` at MAPPO's measured env-steps/s (replay log included), plus its
  greedy evaluation chunks every ``eval_interval`` env-steps (both carried over by size).

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

import numpy as np

from marlbench.envs.maps import get_map
from marlbench.fileio import read_json, write_json
from marlbench.plan import Plan, topological_order

REF_MAPS = ("3m", "3s5z")  # the size exponent spans 18 to 128 entity pairs
# scripted episode lengths are also measured on a large marine map: they grow with the number
# of units fighting, so a map's lengths are carried from maps of its own unit types
LENGTH_MAPS = ("3m", "10m", "3s5z")
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


def small_rows(task: str) -> int:
    """The rows of the one short episode an update is also calibrated at."""
    return max(3, rows(task) // 8)


def expected_longest(lengths: np.ndarray, k: int) -> float:
    """The expected largest of ``k`` values drawn without replacement from ``lengths``: the rows
    a batch of ``k`` sampled episodes is cut to, or the steps a batch of ``k`` roll-outs plays."""
    x = np.sort(np.asarray(lengths, dtype=float))
    n = len(x)
    k = max(1, min(k, n))
    j = np.arange(k)
    # P(max ≤ x_(i)) = C(i, k) / C(n, k) = Π_{j<k} (i − j) / (n − j), zero while i < k
    cdf = np.prod(np.clip((np.arange(1, n + 1)[:, None] - j) / (n - j), 0.0, None), axis=1)
    return float(np.diff(cdf, prepend=0.0) @ x)


def _unit_types(task: str) -> frozenset[str]:
    spec = get_map(task)
    return frozenset(getattr(spec, "ally_units", ())) | frozenset(getattr(spec, "enemy_units", ()))


def nearest_map(task: str, candidates: list[str]) -> str:
    """The candidate most like ``task``: most unit types in common, then nearest in size (on a
    log scale). Episode lengths are carried from it: they follow the units fighting more than
    the map's limit (marines end scripted fights in 15 to 20 rows on 3m and 10m alike)."""
    units = _unit_types(task)
    return min(candidates, key=lambda m: (-len(units & _unit_types(m)),
                                          abs(math.log(map_size(m) / map_size(task)))))


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


def _fit_or_mean(points: dict[float, float]) -> PowerLaw:
    """A power law through positive points; a constant (their mean) when one is zero."""
    if all(v > 0 for v in points.values()):
        return PowerLaw.fit(points)
    return PowerLaw(sum(points.values()) / len(points), 0.0)


@dataclass
class CostModel:
    """Per-job time estimates (seconds on one worker) from a calibration document."""

    doc: dict[str, Any]
    laws: dict[str, Any] = field(default_factory=dict)  # fitted laws, by what they cost

    @property
    def calibrated(self) -> bool:
        return "machine_id" in self.doc

    def _law(self, key: str, points: dict[float, float]) -> PowerLaw:
        if key not in self.laws:
            self.laws[key] = PowerLaw.fit(points)
        return self.laws[key]

    def update_s(self, learner: str, task: str, batch: int, device: str = "cpu",
                 batch_rows: float | None = None) -> float:
        """Seconds per update on ``task``'s batches of ``batch`` episodes cut to ``batch_rows``
        rows (default: full length)."""
        if device not in self.doc["update_s"]:
            device = "cpu"
        table = self.doc["update_s"][device]
        name = learner if learner in table else "bc_t"
        fixed, per_row = self._update_laws(device, name)
        size = map_size(task)
        return fixed(size) + per_row(size) * batch * (batch_rows if batch_rows is not None
                                                       else rows(task))

    def _update_laws(self, device: str, learner: str) -> tuple[PowerLaw, PowerLaw]:
        """An update's fixed seconds and seconds per episode-row, each against map size: from
        the full and the one-short-episode measurements (only the first: no fixed part)."""
        key = f"update/{device}/{learner}"
        if key not in self.laws:
            full = self.doc["update_s"][device][learner]
            small = (self.doc.get("update_small_s") or {}).get(device, {}).get(learner, {})
            slope, fixed = {}, {}
            for m, s in full.items():
                n = REF_BATCH * rows(m)
                if m in small:
                    k = small_rows(m)
                    per = max((s - small[m]) / (n - k), s / n * 0.05)  # noise never negative
                    slope[map_size(m)], fixed[map_size(m)] = per, max(0.0, s - per * n)
                else:
                    slope[map_size(m)], fixed[map_size(m)] = s / n, 0.0
            self.laws[key] = (_fit_or_mean(fixed), PowerLaw.fit(slope))
        return self.laws[key]

    def eval_s(self, task: str, episodes: int, steps: float | None = None) -> float:
        """Seconds of an evaluation job whose roll-outs play ``steps`` batch steps per chunk
        (default: the calibrated fraction of the limit an untrained policy reaches)."""
        law = self._law("eval", {map_size(m): s for m, s in self.doc["eval_step_s"].items()})
        if steps is None:
            steps = get_map(task).episode_limit * self.doc["eval_length_fraction"]
        chunks = math.ceil(episodes / EVAL_BATCH_LIMIT)
        return chunks * steps * law(map_size(task)) + self.doc["eval_overhead_s"]

    def scripted_rows(self, task: str) -> np.ndarray | None:
        """The calibrated lengths (rows) of scripted episodes, carried to ``task`` from the
        most similar reference map and cut at its limit; None without them."""
        measured = self.doc.get("scripted_rows") or {}
        if not measured:
            return None
        ref = nearest_map(task, sorted(measured))
        x = np.asarray(measured[ref], dtype=float)
        kin = [m for m in measured if _unit_types(m) == _unit_types(ref)]
        if len(kin) > 1:  # scaled by the mean length's trend over size among maps like it
            law = PowerLaw.fit({map_size(m): float(np.mean(measured[m])) for m in kin})
            x = x * law(map_size(task)) / law(map_size(ref))
        return np.minimum(x, rows(task))

    def collect_s(self, task: str, episodes: int) -> float:
        per_row = {map_size(m): s / rows(m) for m, s in self.doc["collect_episode_s"].items()}
        return episodes * rows(task) * self._law("collect", per_row)(map_size(task))

    def behaviour_s(self, task: str, settings: dict) -> float:
        """MAPPO's env-steps, and its greedy evaluation every ``eval_interval`` env-steps (and
        of the untrained policy) in chunks of 128 episodes that play to the longest one."""
        law = self._law("mappo", {map_size(m): 1 / v
                                  for m, v in self.doc["mappo_steps_per_s"].items()})
        total = settings["env_steps"] * law(map_size(task))
        chunk = self.doc.get("mappo_eval_chunk_s")
        if chunk:  # per limit step, carried over by size
            per = self._law("mappo-eval", {map_size(m): s / get_map(m).episode_limit
                                           for m, s in chunk.items()})
            evals = settings["env_steps"] // settings["eval_interval"] + 1
            chunks = math.ceil(settings["eval_episodes"] / settings["batch_episodes"])
            total += evals * chunks * get_map(task).episode_limit * per(map_size(task))
        return total

    def job_s(self, kind: str, c: dict, device: str = "cpu",
              lengths: dict[str, np.ndarray | None] | None = None,
              steps: float | None = None) -> float:
        """Seconds of one job on one worker (an eval job's compile excluded: a worker compiles
        each map once, see :func:`_replay`). ``lengths``: a train job's data's episode lengths
        (rows) per seen task, where known; ``steps``: the batch steps an eval job's chunk
        plays, where known (:class:`EpisodeLengths` gives both)."""
        lengths = lengths or {}
        if kind == "train":
            seen, b = c["seen"], c["batch_episodes"]

            def mean_update(learner: str) -> float:
                return sum(self.update_s(learner, t, b, device, _longest(lengths.get(t), b))
                           for t in seen) / len(seen)

            mean = mean_update(c["algorithm"])
            if c["algorithm"] == "odis":
                f = c["params"].get("pretrain_fraction", 0.3)
                return c["updates"] * (f * mean_update("odis-pre") + (1 - f) * mean)
            return c["updates"] * mean
        if kind == "eval":
            return self.eval_s(c["task"], c["episodes"], steps)
        if kind == "dataset":  # each data job builds (and compiles) its own environment
            return self.collect_s(c["task"], c["episodes"]) + self.compile_s
        if kind == "behaviour":
            return self.behaviour_s(c["task"], c["settings"]) + self.compile_s
        raise ValueError(f"unknown job kind {kind!r}")

    @property
    def compile_s(self) -> float:
        return float(self.doc["compile_s"])

    @property
    def worker_start_s(self) -> float:
        return float(self.doc.get("worker_start_s", 0.0))


def _longest(x: np.ndarray | None, batch: int) -> float | None:
    return None if x is None else expected_longest(x, batch)


class EpisodeLengths:
    """The episode lengths (rows) of each train job's data, from the best source there is:

    - ``data``: the dataset on disk, read from its parts (the loader's last N episodes);
    - ``scripted``: scripted data not collected yet, from the calibrated scripted episodes of
      the most similar reference map;
    - ``full length``: otherwise (a behaviour policy's data not collected yet), an upper bound.
    """

    def __init__(self, plan: Plan, model: CostModel, data_dir: Path | None):
        self.plan, self.model, self.data_dir = plan, model, data_dir
        self.basis: dict[str, int] = {}  # per (train job, task): which source
        self._sources: dict[tuple[str, int | None], np.ndarray | None] = {}
        self._jobs: dict[str, tuple[dict[str, np.ndarray | None], list[str]]] = {}
        self._steps: dict[tuple[str, str, int], float | None] = {}

    def of_train(self, jid: str) -> tuple[dict[str, np.ndarray | None], list[str]]:
        """Per seen task of train job ``jid``: its data's lengths (None: unknown), and where
        they came from."""
        if jid not in self._jobs:
            c = self.plan.jobs[jid].config
            out: dict[str, np.ndarray | None] = {}
            bases = []
            for task in c["seen"]:
                parts = [self._source(task, s["dir"], s.get("last"))
                         for s in c.get("datasets", {}).get(task, [])]
                if parts and all(x is not None for x, _ in parts):
                    out[task] = np.concatenate([x for x, _ in parts])
                    bases.append("scripted" if any(b == "scripted" for _, b in parts)
                                 else "data")
                else:
                    out[task] = None
                    bases.append("full length")
            self._jobs[jid] = (out, bases)
        return self._jobs[jid]

    def _source(self, task: str, rel: str, last: int | None) -> tuple[np.ndarray | None, str]:
        from marlbench.data.dataset import LazyEpisodes
        from marlbench.data.format import DatasetError

        if self.data_dir is not None and (self.data_dir / rel / "manifest.json").is_file():
            key = (rel, last)
            if key not in self._sources:
                try:
                    self._sources[key] = LazyEpisodes(self.data_dir / rel, last).lengths
                except (DatasetError, OSError):  # unreadable: the run collects it again
                    self._sources[key] = None
            if self._sources[key] is not None:
                return self._sources[key], "data"
        job = self.plan.jobs.get(Path(rel).name)
        if job is not None and job.kind == "dataset" and "behaviour" not in job.config:
            x = self.model.scripted_rows(task)
            if x is not None:
                return x, "scripted"
        return None, "full length"

    def of_job(self, job) -> dict[str, np.ndarray | None]:
        """A train job's data's lengths per seen task (counting their sources in ``basis``);
        empty for other jobs."""
        if job.kind != "train":
            return {}
        out, bases = self.of_train(job.id)
        for b in bases:
            self.basis[b] = self.basis.get(b, 0) + 1
        return out

    def eval_steps(self, job) -> float | None:
        """The batch steps an eval job's chunk plays, the expected longest of its episodes, a
        policy playing episodes as long as those it was trained on (None: unknown). Computed
        once per (train job, test task)."""
        c = job.config
        if job.kind != "eval" or c.get("train") not in self.plan.jobs:
            return None
        chunk = min(c["episodes"], EVAL_BATCH_LIMIT)
        key = (c["train"], c["task"], chunk)
        if key not in self._steps:
            known = {t: x for t, x in self.of_train(c["train"])[0].items() if x is not None}
            steps = None
            if known:
                x = known[nearest_map(c["task"], sorted(known))]
                steps = min(max(1.0, expected_longest(x, chunk) - 1),
                            get_map(c["task"]).episode_limit)
            self._steps[key] = steps
        return self._steps[key]


@dataclass
class Projection:
    cpu_hours: dict[str, float]  # per job kind
    per_algorithm: dict[str, dict[str, float]]  # label → {train, eval} CPU-hours
    gpu_hours: float | None  # None: no GPU figures
    wall_s: float
    workers: int
    source: str
    jobs: dict[str, int]
    lengths: dict[str, int] = field(default_factory=dict)  # (train job, task) per length basis
    gpu_uncalibrated: bool = False  # training will use GPUs, the calibration has no CUDA figures
    unmeasured: list[str] = field(default_factory=list)  # what the model has no figures for


MEASURED_BACKENDS = ("smax", "sc2", "grid")  # env and collection figures exist for these


def unmeasured(plan: Plan, model: CostModel) -> list[str]:
    """What a projection of ``plan`` guesses: learners without update figures (costed as
    BC-t's) and backends without environment figures (costed as the embedded simulator's by
    map size)."""
    table = model.doc["update_s"].get("cpu", {})
    learners = sorted({j.config["algorithm"] for j in plan.of_kind("train")} - set(table))
    backends = sorted({j.config.get("backend") for j in plan.jobs.values()}
                      - {None, *MEASURED_BACKENDS})
    out = [f"learner {name} (taken as BC-t's)" for name in learners]
    return out + [f"backend {b} (taken as the embedded simulator's by map size)"
                  for b in backends]


def project(plan: Plan, model: CostModel, workers: int, skip: set[str] | None = None,
            gpu_train: bool = False, data_dir: Path | None = None) -> Projection:
    """Sum the jobs of ``plan`` not in ``skip`` (done already) and replay the scheduler on
    ``workers`` slots (0 = in-process, one slot). Episode lengths are read from the datasets
    under ``data_dir`` that exist already."""
    skip = skip or set()
    device = "cuda" if gpu_train and "cuda" in model.doc["update_s"] else "cpu"
    lengths = EpisodeLengths(plan, model, data_dir)
    est: dict[str, float] = {}
    for jid, job in plan.jobs.items():
        if jid not in skip:
            est[jid] = model.job_s(job.kind, job.config, device if job.kind == "train" else "cpu",
                                   lengths.of_job(job), lengths.eval_steps(job))
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
                      model.doc["source"], counts, lengths.basis,
                      gpu_train and device == "cpu", unmeasured(plan, model))


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
