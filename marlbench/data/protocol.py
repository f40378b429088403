"""The ODIS collection protocol on a batched backend (protocol.md §3).

Per seen task one behaviour run trains MAPPO online for ``env_steps`` environment steps,
evaluating (greedy) and checkpointing every ``eval_interval`` steps, and logs its stochastic
training episodes. From that run:

- expert: greedy roll-outs of the final policy;
- medium: greedy roll-outs of the first checkpoint whose evaluation win rate reaches the stop
  threshold (``medium_win_rate``, or ``medium_fraction`` × the final evaluation win rate);
- medium-replay: the logged training episodes up to that checkpoint;
- MADT's good / medium / poor (MADS4's SMAC data): good = the final policy (as expert), medium
  and poor = the first checkpoints reaching ``medium_fraction`` and ``poor_fraction`` × the
  final evaluation, measured on ``threshold_metric`` (win rate, or mean return: the only
  measure on the warehouse, which has no win).

A behaviour run is resumable: ``state.pt`` (written atomically after each evaluation) holds the
learner, its optimiser and random state and the evaluation history; a rerun continues from it
and discards what was written after it. ``summary.json``, written last, marks the run complete.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import h5py
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from marlbench.data.collect import DatasetWriter, existing_dataset
from marlbench.data.format import DatasetError, EpisodeArrays
from marlbench.envs import has_win, make_env
from marlbench.fields import NonNegativeInt, PositiveInt, StrictModel, StrictProbability
from marlbench.fileio import read_json, save_torch, validated, write_json
from marlbench.learners.mappo import Mappo, MappoConfig

Progress = Callable[[int, int, str], None]
SUMMARY = "summary.json"
_LOG_KEYS = ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled")


class ReplayLog:
    """Training episodes, one HDF5 file per evaluation window (fast lzf compression).

    A window file is appended to while its window runs and is only trusted once the state
    written after the window's evaluation names it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._file: h5py.File | None = None
        self._path: Path | None = None

    def window_path(self, k: int) -> Path:
        return self.folder / f"window_{k}.h5"

    def discard_after(self, kept: int) -> None:
        """Remove window files a crashed run wrote after its last saved state."""
        for path in self.folder.glob("window_*.h5*"):
            if int(path.name.split("_")[1].split(".")[0]) >= kept:
                path.unlink()

    def append(self, k: int, ep: EpisodeArrays, won: np.ndarray) -> None:
        if self._file is None:
            self._path = self.window_path(k)
            self._file = h5py.File(self._path, "w")
            for key in _LOG_KEYS:
                arr = getattr(ep, key)
                self._file.create_dataset(key, data=arr, maxshape=(None, *arr.shape[1:]),
                                          chunks=(1, *arr.shape[1:]), compression="lzf")
            self._file.create_dataset("won", data=won, maxshape=(None,), chunks=True)
            return
        for key in _LOG_KEYS:
            arr = getattr(ep, key)
            d = self._file[key]
            d.resize(d.shape[0] + arr.shape[0], axis=0)
            d[-arr.shape[0]:] = arr
        d = self._file["won"]
        d.resize(d.shape[0] + won.shape[0], axis=0)
        d[-won.shape[0]:] = won

    def close_window(self) -> int:
        """Close the current window; return its episode count."""
        if self._file is None:
            return 0
        count = int(self._file["won"].shape[0])
        self._file.close()
        self._file = None
        return count

    def read(self, k: int) -> tuple[EpisodeArrays, np.ndarray]:
        with h5py.File(self.window_path(k), "r") as f:
            ep = EpisodeArrays(*(np.asarray(f[key]) for key in _LOG_KEYS))
            return ep, np.asarray(f["won"])


# -- summary.json's schema -------------------------------------------------------------------

_Checkpoint = Annotated[str, Field(pattern=r"^steps_[0-9]+\.pt$")]




class _Eval(StrictModel):
    env_steps: NonNegativeInt
    iteration: NonNegativeInt
    checkpoint: _Checkpoint
    win_rate: StrictProbability
    mean_return: Annotated[float, Field(allow_inf_nan=False, strict=True)]
    episodes: PositiveInt


class _Point(StrictModel):
    checkpoint: _Checkpoint
    env_steps: NonNegativeInt
    eval_win_rate: StrictProbability
    eval_return: Annotated[float, Field(allow_inf_nan=False, strict=True)] | None = None
    threshold: Annotated[float, Field(allow_inf_nan=False, strict=True)] | None = None
    metric: Literal["win_rate", "return"] | None = None


class _Window(StrictModel):
    file: Annotated[str, Field(pattern=r"^window_[0-9]+\.h5$")]
    episodes: PositiveInt
    until_env_steps: NonNegativeInt


class _Replay(StrictModel):
    windows: list[_Window]
    episodes: NonNegativeInt

    @model_validator(mode="after")
    def _adds_up(self) -> _Replay:
        if sum(w.episodes for w in self.windows) != self.episodes:
            raise ValueError("episodes is not the sum of the windows' episodes")
        return self


class _Settings(BaseModel):
    model_config = ConfigDict(extra="allow")  # the suite's behaviour settings, as resolved
    batch_episodes: PositiveInt


class BehaviourSummary(StrictModel):
    """``summary.json`` of a behaviour run, as :func:`train_behaviour` writes it."""

    task: str
    backend: str
    units: Literal["smax", "sc2"] | None = None
    reward: Literal["rware", "alberdice"] | None = None  # the warehouse's reward definition
    algorithm: Literal["mappo"]
    config: dict[str, Any]
    settings: _Settings
    seed: NonNegativeInt
    env_steps: NonNegativeInt
    iterations: NonNegativeInt
    evals: list[_Eval] = Field(min_length=1)
    expert: _Point
    medium: _Point
    poor: _Point | None = None
    replay: _Replay
    warnings: list[str]
    wall_time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    resumed_at_env_steps: NonNegativeInt | None = None


def read_summary(run_dir: Path) -> dict:
    """A behaviour run's ``summary.json``, checked against its schema."""
    path = Path(run_dir) / SUMMARY
    data = read_json(path, "behaviour summary")
    validated(BehaviourSummary, data, path, "behaviour summary")
    return data


def behaviour_config(settings: dict) -> MappoConfig:
    return MappoConfig(**settings.get("params", {}))


def _evaluate(learner: Mappo, env, episodes: int, seed: int) -> dict[str, float]:
    won, returns = [], []
    for k in range(math.ceil(episodes / env.batch_size)):
        r = learner.play(env, seed + k, greedy=True)
        won.append(r.won)
        returns.append(r.returns)
    w, ret = np.concatenate(won), np.concatenate(returns)
    return {"win_rate": float(w.mean()), "mean_return": float(ret.mean()),
            "episodes": int(w.size)}


def train_behaviour(
    task: str,
    backend: str,
    settings: dict,
    seed: int,
    run_dir: Path,
    progress: Progress | None = None,
    units: str | None = None,
    reward: str | None = None,
) -> dict:
    """Train (or resume, or reuse) the behaviour run of one task; return its summary."""
    run_dir = Path(run_dir)
    if (run_dir / SUMMARY).exists():
        return read_summary(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    # one thread: the networks are small, and the run is then bit-identical on every machine
    # (and across a resume)
    torch.set_num_threads(1)
    env = make_env(task, settings["batch_episodes"], backend, units, reward)
    config = behaviour_config(settings)
    learner = Mappo(env.layout, config, seed)
    log = ReplayLog(run_dir / "replay")
    # the replay log (medium-replay) may stop once the medium point is certainly reached: a win
    # rate at or above the fraction (the threshold is that fraction of a final rate <= 1); a
    # return threshold is known only at the end, so the log runs to the end then
    by_return = _metric(settings) == "mean_return"
    bound = math.inf if by_return else (settings.get("medium_win_rate")
                                        or settings["medium_fraction"])
    st: dict[str, Any] = {"iteration": 0, "env_steps": 0, "evals": [], "windows": [],
                          "recording": True, "elapsed_s": 0.0}
    state_path = run_dir / "state.pt"
    if state_path.exists():
        saved = torch.load(state_path, weights_only=False)
        learner.load_state_dict(saved["learner"])
        st = saved["progress"]
    log.discard_after(len(st["windows"]))
    resumed_at = st["env_steps"]
    total = settings["env_steps"]
    interval = settings["eval_interval"]
    eval_seed = seed * 1_000_003 + 900_000

    def checkpoint() -> None:
        steps = st["env_steps"]
        stats = _evaluate(learner, env, settings["eval_episodes"], eval_seed + 1000 * len(
            st["evals"]))
        name = f"steps_{steps}.pt"
        save_torch(ckpt_dir / name, {"net": learner.net.state_dict(), "config": asdict(config),
                                      "task": task, "env_steps": steps})
        if st["recording"]:
            k = len(st["windows"])
            count = log.close_window()
            if count:
                st["windows"].append({"file": log.window_path(k).name, "episodes": count,
                                      "until_env_steps": steps})
            if stats["win_rate"] >= bound and st["iteration"] > 0:
                st["recording"] = False  # no later checkpoint can be the medium one
        st["evals"].append({"env_steps": steps, "iteration": st["iteration"],
                            "checkpoint": name, **stats})
        st["elapsed_s"] += time.time() - t_mark[0]
        t_mark[0] = time.time()
        save_torch(state_path, {"learner": learner.state_dict(), "progress": st})

    t_mark = [time.time()]
    if not st["evals"]:
        checkpoint()  # the untrained policy: step 0
    next_eval = (st["env_steps"] // interval + 1) * interval
    while st["env_steps"] < total:
        r = learner.play(env, seed * 1_000_003 + st["iteration"], greedy=False)
        if st["recording"]:
            log.append(len(st["windows"]), r.episodes, r.won)
        learner.update(r)
        st["iteration"] += 1
        st["env_steps"] += int(r.lengths.sum())
        if st["env_steps"] >= next_eval or st["env_steps"] >= total:
            checkpoint()
            next_eval = (st["env_steps"] // interval + 1) * interval
        if progress:
            progress(min(st["env_steps"], total), total, f"behaviour {task}")
    summary = _summarise(task, backend, settings, seed, config, st)
    if units is not None:
        summary["units"] = units
    if reward is not None:
        summary["reward"] = reward
    summary["wall_time_s"] = round(st["elapsed_s"], 2)
    summary["resumed_at_env_steps"] = resumed_at or None
    _prune_checkpoints(ckpt_dir, summary)
    write_json(run_dir / SUMMARY, summary, sort_keys=False)
    return summary


def _metric(settings: dict) -> str:
    """The evaluation key the quality thresholds are fractions of (settings of older runs
    carry no ``threshold_metric``: win rate)."""
    return "mean_return" if settings.get("threshold_metric") == "return" else "win_rate"


def _point(e: dict, metric: str, threshold: float | None = None) -> dict:
    out = {"checkpoint": e["checkpoint"], "env_steps": e["env_steps"],
           "eval_win_rate": e["win_rate"], "eval_return": e["mean_return"]}
    if threshold is not None:
        out.update(threshold=threshold, metric="return" if metric == "mean_return" else
                   "win_rate")
    return out


def _first_reaching(evals: list[dict], metric: str, threshold: float) -> dict:
    """The first evaluation at or above ``threshold`` (the final one reaches any fraction of
    itself when it is positive; else the first evaluation)."""
    return next((e for e in evals if e[metric] >= threshold), evals[0])


def _summarise(task: str, backend: str, settings: dict, seed: int, config: MappoConfig,
               st: dict) -> dict:
    evals = st["evals"]
    final = evals[-1]
    metric = _metric(settings)
    threshold = settings.get("medium_win_rate") if metric == "win_rate" else None
    if threshold is None:
        threshold = settings["medium_fraction"] * final[metric]
    medium = _first_reaching(evals, metric, threshold)
    poor_threshold = settings.get("poor_fraction", 0.41) * final[metric]
    poor = _first_reaching(evals, metric, poor_threshold)
    # the replay log runs to the medium checkpoint (at least one window)
    windows = [w for w in st["windows"] if w["until_env_steps"] <= medium["env_steps"]]
    windows = windows or st["windows"][:1]
    warnings = []
    if metric == "win_rate" and final["win_rate"] == 0:
        warnings.append("the behaviour policy never won an evaluation: expert and medium data "
                        "are not distinct; raise data.behaviour.env_steps")
    if metric == "mean_return" and final["mean_return"] <= max(e["mean_return"]
                                                               for e in evals[:1]):
        warnings.append("the behaviour policy's final evaluation return is no better than the "
                        "untrained policy's: good, medium and poor data are not distinct; raise "
                        "data.behaviour.env_steps")
    return {
        "task": task,
        "backend": backend,
        "algorithm": "mappo",
        "config": asdict(config),
        "settings": settings,
        "seed": seed,
        "env_steps": st["env_steps"],
        "iterations": st["iteration"],
        "evals": evals,
        "expert": _point(final, metric),
        "medium": _point(medium, metric, threshold),
        "poor": _point(poor, metric, poor_threshold),
        "replay": {"windows": windows, "episodes": sum(w["episodes"] for w in windows)},
        "warnings": warnings,
    }


def _prune_checkpoints(ckpt_dir: Path, summary: dict) -> None:
    """Keep the checkpoints data is made from (expert, medium) and every evaluation record
    high (any could be the medium under another threshold); drop the rest."""
    keep = {summary[p]["checkpoint"] for p in ("expert", "medium", "poor") if summary.get(p)}
    for key in ("win_rate", "mean_return"):
        best = -math.inf
        for e in summary["evals"]:
            if e[key] > best:
                keep.add(e["checkpoint"])
                best = e[key]
    for path in ckpt_dir.glob("steps_*.pt"):
        if path.name not in keep:
            path.unlink()


def load_behaviour_policy(run_dir: Path, checkpoint: str, layout) -> Mappo:
    saved = torch.load(Path(run_dir) / "checkpoints" / checkpoint, weights_only=False)
    learner = Mappo(layout, MappoConfig(**saved["config"]), 0)
    learner.net.load_state_dict(saved["net"])
    return learner


def make_quality(
    quality: str,
    behaviour_dir: Path,
    episodes: int,
    seed: int,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict:
    """Write the ``quality`` dataset of a finished behaviour run into ``out_dir``."""
    existing = existing_dataset(out_dir)
    if existing is not None:
        return existing
    behaviour_dir = Path(behaviour_dir)
    summary = read_summary(behaviour_dir)
    task, backend, units = summary["task"], summary["backend"], summary.get("units")
    reward = summary.get("reward")
    meta: dict[str, Any] = {"task": task, "backend": backend, "quality": quality,
                            "collection_seed": seed}
    if units is not None:
        meta["units"] = units
    if reward is not None:
        meta["reward"] = reward
    policy = {"name": "mappo", "config": summary["config"], "trained_env_steps":
              summary["env_steps"], "behaviour_run": behaviour_dir.name}
    if quality == "medium-replay":
        replay = summary["replay"]
        if not replay["episodes"]:
            raise DatasetError(f"{behaviour_dir / SUMMARY}: the behaviour run logged no "
                               "training episodes to make medium-replay data from")
        log = ReplayLog(behaviour_dir / "replay")
        from marlbench.envs.maps import get_map

        writer = DatasetWriter(out_dir, replay["episodes"], get_map(task).layout)
        for w in replay["windows"]:
            ep, won = log.read(int(w["file"].split("_")[1].split(".")[0]))
            writer.add(ep, won if has_win(task) else None)
            if progress:
                progress(writer.written, replay["episodes"], f"data {task}/{quality}")
        meta["behaviour_policy"] = {
            **policy, "mode": "stochastic training episodes",
            "until_checkpoint": summary["medium"]["checkpoint"],
            "until_env_steps": summary["medium"]["env_steps"]}
        return writer.finish(meta)
    which = {"expert": "expert", "good": "expert", "medium": "medium", "poor": "poor"}[quality]
    point = summary.get(which)
    if point is None:
        raise DatasetError(f"{behaviour_dir / SUMMARY}: the behaviour run records no {which} "
                           "checkpoint (it predates that quality); remove it to rerun it")
    env = make_env(task, summary["settings"]["batch_episodes"], backend, units, reward)
    learner = load_behaviour_policy(behaviour_dir, point["checkpoint"], env.layout)
    writer = DatasetWriter(out_dir, episodes, env.layout)
    base = seed * 1_000_003 + {"expert": 500_000, "medium": 700_000, "good": 800_000,
                               "poor": 600_000}[quality]
    chunk = 0
    while writer.remaining:
        r = learner.play(env, base + chunk, greedy=True)
        writer.add(r.episodes, r.won if has_win(task) else None)
        chunk += 1
        if progress:
            progress(writer.written, episodes, f"data {task}/{quality}")
    meta["behaviour_policy"] = {
        **policy, "mode": "greedy", "checkpoint": point["checkpoint"],
        "checkpoint_env_steps": point["env_steps"],
        "checkpoint_eval_win_rate": point["eval_win_rate"],
        **({"checkpoint_eval_return": point["eval_return"]} if "eval_return" in point else {}),
        **({"stop_threshold": point["threshold"], "threshold_metric": point.get(
            "metric", "win_rate")} if quality in ("medium", "poor") else {})}
    return writer.finish(meta)
