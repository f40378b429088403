"""Writing datasets: ODIS part files filled batch by batch, then a manifest as the commit mark.

A dataset folder is complete exactly when its ``manifest.json`` exists and every part matches
the sha256 recorded there. Parts are written under temporary names and renamed; the manifest is
written last, atomically. A folder without a manifest is an interrupted attempt and is cleared
before the next one; a folder whose manifest exists is never overwritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import h5py
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from marlbench import __version__
from marlbench.data.behaviour import FocusFirePolicy
from marlbench.data.format import KEYS_DTYPES, PART_NAME, DatasetError, EpisodeArrays, sha256
from marlbench.data.qualities import get_quality
from marlbench.data.stats import length_stats
from marlbench.envs import make_env
from marlbench.envs.maps import Layout
from marlbench.fields import (
    NonNegativeInt,
    PositiveInt,
    StrictFinite,
    StrictModel,
    StrictProbability,
)
from marlbench.fileio import read_json, validated, write_json
from marlbench.rollout import rollout

Progress = Callable[[int, int, str], None]
COLLECT_BATCH = 128
PART_EPISODES = 2000
MANIFEST = "manifest.json"


# -- the manifest's schema ------------------------------------------------------------------


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]




class PartEntry(StrictModel):
    file: str
    sha256: Sha256
    episodes: PositiveInt | None = None

    @field_validator("file")
    @classmethod
    def _part_name(cls, v: str) -> str:
        if not PART_NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a part file name (part_<N>.h5, inside the folder)")
        return v


class LengthStats(StrictModel):
    mean: Annotated[StrictFinite, Field(ge=0)]
    min: NonNegativeInt
    max: NonNegativeInt
    unit: str

    @model_validator(mode="after")
    def _order(self) -> LengthStats:
        if not self.min <= self.mean <= self.max:
            raise ValueError(f"min {self.min} <= mean {self.mean} <= max {self.max} does not hold")
        return self


class BehaviourPolicy(BaseModel):
    """What made the data: free-form beyond its name (each producer records its own)."""

    model_config = ConfigDict(extra="allow")
    name: str
    checkpoint: str | None = None
    until_checkpoint: str | None = None


class Standardisation(StrictModel):
    """Per-feature mean and standard deviation of a dataset's observations and states (over
    its filled rows), for evaluation contracts that standardise inputs (AlberDICE's
    ``standardize_obs``)."""

    obs_mean: list[StrictFinite]
    obs_std: list[Annotated[StrictFinite, Field(ge=0)]]
    state_mean: list[StrictFinite]
    state_std: list[Annotated[StrictFinite, Field(ge=0)]]
    over: str

    @model_validator(mode="after")
    def _widths(self) -> Standardisation:
        if len(self.obs_mean) != len(self.obs_std) or len(self.state_mean) != len(
                self.state_std):
            raise ValueError("means and standard deviations differ in width")
        return self


class Manifest(StrictModel):
    """``manifest.json`` as DatasetWriter.finish and the importers write it."""

    format: Literal["odis-hdf5"]
    task: str
    backend: str | None
    units: Literal["smax", "sc2"] | None = None  # the embedded backend's unit profile
    reward: Literal["rware", "alberdice"] | None = None  # the warehouse's reward definition
    quality: str
    source: str | None = None
    origin: str | None = None
    behaviour_policy: BehaviourPolicy
    episodes: PositiveInt
    mean_return: StrictFinite
    return_std: Annotated[StrictFinite, Field(ge=0)] | None = None
    return_min: StrictFinite | None = None
    return_max: StrictFinite | None = None
    win_rate: StrictProbability | None
    win_rate_source: str | None = None
    episode_length: LengthStats
    time_outs: NonNegativeInt | None = None
    parts: list[PartEntry] = Field(min_length=1)
    collection_seed: NonNegativeInt | None
    standardisation: Standardisation | None = None
    marlbench_version: str
    wall_time_s: Annotated[StrictFinite, Field(ge=0)]
    created_at: str

    @model_validator(mode="after")
    def _parts_add_up(self) -> Manifest:
        files = [p.file for p in self.parts]
        if len(set(files)) != len(files):
            raise ValueError(f"parts lists a file twice ({', '.join(files)})")
        counts = [p.episodes for p in self.parts]
        if None not in counts and sum(counts) != self.episodes:  # type: ignore[arg-type]
            raise ValueError(f"the parts hold {sum(counts)} episodes, "  # type: ignore[arg-type]
                             f"the manifest says {self.episodes}")
        return self


def read_manifest(run_dir: Path) -> dict:
    """The manifest of ``run_dir``, checked against its schema (the file as written)."""
    path = Path(run_dir) / MANIFEST
    data = read_json(path, "dataset manifest")
    validated(Manifest, data, path, "dataset manifest")
    return data


def verify_dataset(run_dir: Path) -> dict:
    """The manifest of a complete dataset after checking every part's checksum, and that the
    folder holds no part the manifest does not list."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.exists():
        raise DatasetError(f"{run_dir} has no {MANIFEST}: it is not a complete dataset")
    manifest = read_manifest(run_dir)
    listed = {part["file"] for part in manifest["parts"]}
    extra = sorted(p.name for p in run_dir.glob("part_*.h5") if p.name not in listed)
    if extra:
        raise DatasetError(f"{run_dir / extra[0]} is not listed in {path}: the folder holds "
                           "parts of another dataset. Delete the folder to collect it again.")
    for part in manifest["parts"]:
        file = run_dir / part["file"]
        if file.is_dir() or not file.exists():
            raise DatasetError(f"{file} is listed in {path} but "
                               f"{'is a directory' if file.is_dir() else 'missing'}")
        if sha256(file) != part["sha256"]:
            raise DatasetError(
                f"{file} does not match the sha256 in its manifest: the file is corrupt, "
                "truncated or was modified. Delete the folder to collect it again."
            )
    return manifest


def existing_dataset(run_dir: Path) -> dict | None:
    """The manifest if ``run_dir`` already holds a valid dataset; None if it holds none.

    Raises when a manifest exists but the files do not match it (DatasetError) or it is off
    its schema (FileFormatError): such a dataset is never overwritten silently.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DatasetError(f"dataset folder {run_dir} is a file, not a directory")
    if not (run_dir / MANIFEST).exists():
        return None
    return verify_dataset(run_dir)


class DatasetWriter:
    """Streams episodes into ``part_<k>.h5`` files of ``part_episodes`` each.

    Memory stays at one roll-out batch however large the dataset. Statistics for the manifest
    (returns, lengths, wins) are accumulated on the way.
    """

    def __init__(self, out_dir: Path, total: int, layout: Layout,
                 part_episodes: int = PART_EPISODES):
        self.out_dir = Path(out_dir)
        if existing_dataset(self.out_dir) is not None:
            raise DatasetError(f"{self.out_dir} already holds a complete dataset; refusing to "
                               "overwrite it")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*self.out_dir.glob("part_*.h5"), *self.out_dir.glob("*.tmp")]:
            stale.unlink()  # left by an interrupted attempt (there is no manifest)
        self.total, self.layout, self.part_episodes = total, layout, part_episodes
        self.written = 0
        self.returns: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.won: list[np.ndarray] = []
        self.won_known = True
        self.parts: list[dict[str, Any]] = []
        self._sums: dict[str, np.ndarray] = {}  # feature sums over filled rows (float64)
        self._file: h5py.File | None = None
        self._in_part = 0
        self.start = time.time()

    @property
    def remaining(self) -> int:
        return self.total - self.written

    def _open_part(self) -> None:
        k = len(self.parts)
        size = min(self.part_episodes, self.total - self.written)
        lay, t1 = self.layout, self.layout.episode_limit + 1
        n, a = lay.n_agents, lay.n_actions
        shapes = {
            "obs": (size, t1, n, lay.obs_dim),
            "state": (size, t1, lay.state_dim),
            "actions": (size, t1, n, 1),
            "actions_onehot": (size, t1, n, a),
            "avail_actions": (size, t1, n, a),
            "reward": (size, t1, 1),
            "terminated": (size, t1, 1),
            "filled": (size, t1, 1),
        }
        self._tmp = self.out_dir / f"part_{k}.h5.tmp"
        self._file = h5py.File(self._tmp, "w")
        for key, dtype in KEYS_DTYPES.items():
            # one chunk per episode: a training batch of random episodes then decompresses
            # only what it reads, so large datasets can be streamed from disk
            self._file.create_dataset(key, shape=shapes[key], dtype=dtype,
                                      chunks=(1, *shapes[key][1:]), compression="gzip",
                                      compression_opts=9)
        self._size, self._in_part = size, 0

    def _close_part(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        final = self._tmp.with_suffix("")  # drop .tmp
        os.replace(self._tmp, final)
        self.parts.append({"file": final.name, "episodes": self._size, "sha256": sha256(final)})

    def add(self, ep: EpisodeArrays, won: np.ndarray | None) -> None:
        """Append episodes (at most ``remaining`` are kept) with their battle outcomes (None
        when unknown)."""
        take = min(ep.n_episodes, self.remaining)
        ep = ep.select(slice(0, take))
        self.returns.append(ep.returns)
        self.lengths.append(ep.lengths)
        self._accumulate(ep)
        if won is None:
            self.won_known = False
        else:
            self.won.append(np.asarray(won[:take], dtype=bool))
        lo = 0
        while lo < take:
            if self._file is None:
                self._open_part()
            n = min(take - lo, self._size - self._in_part)
            chunk = ep.select(slice(lo, lo + n))
            onehot = np.eye(self.layout.n_actions, dtype=np.float32)[chunk.actions]
            arrays = {
                "obs": chunk.obs,
                "state": chunk.state,
                "actions": chunk.actions[..., None],
                "actions_onehot": onehot * chunk.filled[..., None, None],
                "avail_actions": chunk.avail_actions,
                "reward": chunk.reward[..., None],
                "terminated": chunk.terminated[..., None],
                "filled": chunk.filled[..., None],
            }
            sl = slice(self._in_part, self._in_part + n)
            for key, dtype in KEYS_DTYPES.items():
                self._file[key][sl] = arrays[key].astype(dtype)
            self._in_part += n
            self.written += n
            lo += n
            if self._in_part == self._size:
                self._close_part()

    def _accumulate(self, ep: EpisodeArrays) -> None:
        rows = ep.filled.astype(bool)
        obs = ep.obs[rows].reshape(-1, ep.obs.shape[-1]).astype(np.float64)
        state = ep.state[rows].astype(np.float64)
        for key, x in (("obs", obs), ("state", state)):
            for part, value in ((f"{key}_sum", x.sum(0)), (f"{key}_sq", (x * x).sum(0)),
                                (f"{key}_n", np.asarray(float(x.shape[0])))):
                self._sums[part] = self._sums.get(part, 0.0) + value

    def standardisation(self) -> dict[str, Any]:
        """The written episodes' per-feature mean and std over filled rows (observations
        pooled over agents), as the manifest's ``standardisation``."""
        out: dict[str, Any] = {}
        for key in ("obs", "state"):
            n = max(float(self._sums[f"{key}_n"]), 1.0)
            mean = self._sums[f"{key}_sum"] / n
            std = np.sqrt(np.maximum(self._sums[f"{key}_sq"] / n - mean * mean, 0.0))
            out[f"{key}_mean"], out[f"{key}_std"] = mean.tolist(), std.tolist()
        return {**out, "over": "filled rows of every episode (observations pooled over agents)"}

    def finish(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (the commit mark) and return it."""
        if self.remaining:
            raise DatasetError(f"{self.out_dir}: {self.remaining} episodes still missing")
        returns = np.concatenate(self.returns)
        win_rate = float(np.concatenate(self.won).mean()) if self.won_known else None
        manifest = {
            **meta,
            "format": "odis-hdf5",
            "episodes": int(self.written),
            "mean_return": float(returns.mean()),
            "return_std": float(returns.std()),
            "win_rate": win_rate,
            "episode_length": length_stats(np.concatenate(self.lengths)),
            "parts": self.parts,
            "standardisation": meta.get("standardisation") or self.standardisation(),
            "marlbench_version": __version__,
            "wall_time_s": round(time.time() - self.start, 2),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        validated(Manifest, manifest, self.out_dir / MANIFEST, "dataset manifest")
        write_json(self.out_dir / MANIFEST, manifest, sort_keys=False)
        return manifest


def collect_scripted(
    task: str,
    quality: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    backend: str | None = None,
    progress: Progress | None = None,
    units: str | None = None,
    reward: str | None = None,
    planner: bool = False,
) -> dict:
    """Collect ``episodes`` episodes of a scripted quality on ``task``: the focus-fire script
    on StarCraft maps; with ``planner``, the warehouse's shelf-delivery planner standing in
    for the behaviour policy of ``quality`` (``data.behaviour.algorithm: planner``)."""
    existing = existing_dataset(out_dir)
    if existing is not None:
        return existing
    q = get_quality(quality)
    batch = min(COLLECT_BATCH, episodes)
    env = make_env(task, batch, backend, units, reward)
    writer = DatasetWriter(out_dir, episodes, env.layout)
    if planner:
        from marlbench.data.rware_planner import PLANNER_EPSILON, ShelfDeliveryPlanner

        robots = ShelfDeliveryPlanner(env, PLANNER_EPSILON, seed)
        act = robots.act
        made_by = {"name": "shelf_delivery_planner", "epsilon": PLANNER_EPSILON,
                   "description": "marlbench's scripted shelf-delivery planner (shortest paths "
                   f"in rware's moves) standing in for MAPPO's {quality} policy "
                   "(data.behaviour.algorithm: planner)", "checkpoint": None}
    else:
        policy = FocusFirePolicy(env.layout, q.epsilon, np.random.default_rng(seed))

        def act(r):
            return policy.act(r.obs, r.avail_actions)

        made_by = {"name": "focus_fire", "epsilon": q.epsilon, "description": q.description,
                   "checkpoint": None}
    chunk = 0
    while writer.remaining:
        res = rollout(env, act, seed * 100_003 + chunk, True)
        writer.add(res.episodes, None if planner else res.won)  # the warehouse has no win
        chunk += 1
        if progress:
            progress(writer.written, episodes, f"collect {task}/{quality}")
    return writer.finish({
        "task": task,
        "backend": backend,
        **({"units": units} if units is not None else {}),
        **({"reward": reward} if reward is not None else {}),
        "quality": quality,
        "behaviour_policy": made_by,
        "collection_seed": seed,
    })
