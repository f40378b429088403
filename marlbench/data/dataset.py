"""Loading datasets (marlbench's or ODIS's) and sampling padded training batches per task.

The papers' loading rules (protocol.md §3): a run's parts are concatenated in index order and
only the last N episodes are kept (default 2000); a composite quality such as medium-expert
keeps the last N/2 of each of its parts. Small datasets are held in memory; larger ones are
read from disk batch by batch, so no dataset has to fit in memory at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from marlbench.data.collect import existing_dataset
from marlbench.data.format import (
    PART_NAME,
    DatasetError,
    EpisodeArrays,
    PartLayout,
    check_values,
    from_stored,
    part_layout,
    read_part,
)
from marlbench.envs.maps import Layout
from marlbench.errors import UserError

DEFAULT_LAST_EPISODES = 2000
_KEYS = ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled")


def memory_budget_bytes() -> int:
    """Datasets larger than this (env MARLBENCH_DATA_MEMORY_GB, default 4) stream from disk."""
    raw = os.environ.get("MARLBENCH_DATA_MEMORY_GB", "4")
    try:
        gib = float(raw)
    except ValueError:
        gib = math.nan
    if not (math.isfinite(gib) and 0 <= gib <= 2**20):
        raise UserError(f"environment variable MARLBENCH_DATA_MEMORY_GB must be a number of GiB "
                        f"from 0 to 1048576 (got {raw!r})")
    return int(gib * 2**30)


def part_files(run_dir: Path) -> list[Path]:
    """Part files of one run folder in index order (part_0, part_1, ...)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise DatasetError(f"dataset folder {run_dir} is a file, not a directory")
    if not run_dir.is_dir():
        raise DatasetError(f"dataset folder {run_dir} does not exist")
    parts = []
    for p in run_dir.glob("part_*.h5"):
        if not PART_NAME.fullmatch(p.name):
            raise DatasetError(f"{p}: a part file is named part_<N>.h5 (N = 0, 1, ...)")
        if not p.is_file():
            raise DatasetError(f"dataset part {p} is not a regular file")
        parts.append(p)
    if not parts:
        raise DatasetError(f"no part_*.h5 files in {run_dir}")
    return sorted(parts, key=lambda p: int(p.stem.split("_")[1]))


def verify(run_dir: Path) -> None:
    """Check every part against the sha256 in the run's manifest (when one exists; the public
    ODIS folders have none)."""
    existing_dataset(run_dir)


def load_episodes(run_dir: Path, last: int | None = DEFAULT_LAST_EPISODES) -> EpisodeArrays:
    """The last ``last`` episodes of a run folder after concatenating its parts, in memory."""
    verify(run_dir)
    return LazyEpisodes(run_dir, last).load()


class LazyEpisodes:
    """The last ``last`` episodes of a run folder, read from its parts on demand.

    Opening checks every part's structure, that all parts have the same layout (agents,
    widths, actions, rows), and the values of the flags and rewards; observations, states and
    actions are checked as they are read.
    """

    def __init__(self, run_dir: Path, last: int | None = DEFAULT_LAST_EPISODES):
        self.run_dir = Path(run_dir)
        self.paths = part_files(run_dir)
        self._files: list[h5py.File] | None = None
        counts, filled, returns = [], [], []
        first: PartLayout | None = None
        for path in self.paths:
            try:
                with h5py.File(path, "r") as f:
                    layout = part_layout(f, path)
                    flags = {k: np.asarray(f[k]) for k in ("filled", "terminated", "reward")}
            except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
                raise DatasetError(f"{path} is not a readable HDF5 file ({exc}): it is corrupt "
                                   "or truncated") from None
            if first is None:
                first = layout
            elif layout.differs(first):
                raise DatasetError(f"{path} and {self.paths[0]} are parts of one run but differ: "
                                   f"{'; '.join(layout.differs(first))}")
            check_values(path, flags, layout.actions)
            counts.append(layout.episodes)
            filled.append(flags["filled"][..., 0])
            returns.append((flags["reward"][..., 0] * flags["filled"][..., 0]).sum(1))
        assert first is not None
        self.layout = first
        self.shape = {k: first.shapes[k] for k in _KEYS}
        total = sum(counts)
        self.offset = max(0, total - last) if last else 0
        self.n_episodes = total - self.offset
        self.starts = np.cumsum([0] + counts)
        self.lengths = np.concatenate(filled).sum(1)[self.offset:]
        self.returns = np.concatenate(returns)[self.offset:]  # per kept episode

    @property
    def nbytes(self) -> int:
        per = sum(int(np.prod(s[1:])) * 4 for s in self.shape.values())
        return per * self.n_episodes

    def take(self, index: np.ndarray, t: int | None = None) -> EpisodeArrays:
        """Episodes ``index`` (positions among the kept ones), cut to ``t`` rows."""
        if self._files is None:
            self._files = [h5py.File(p, "r") for p in self.paths]
        index = np.asarray(index) + self.offset
        order = np.argsort(index)
        sorted_idx = index[order]
        part = np.searchsorted(self.starts, sorted_idx, side="right") - 1
        t = t or self.shape["obs"][1]
        chunks: dict[str, list[np.ndarray]] = {k: [] for k in _KEYS}
        for k in np.unique(part):
            rows = (sorted_idx[part == k] - self.starts[k]).tolist()
            f = self._files[k]
            got = {key: np.asarray(f[key][rows, :t]) for key in _KEYS}
            check_values(self.paths[k], {key: got[key] for key in ("obs", "state", "actions",
                                                                   "avail_actions")},
                         self.layout.actions)
            for key in _KEYS:
                chunks[key].append(got[key])
        back = np.argsort(order)
        return from_stored({k: np.concatenate(v)[back] for k, v in chunks.items()})

    def load(self) -> EpisodeArrays:
        """All kept episodes in memory. Only the parts holding kept episodes are read, and of
        the first of them only its kept rows: a medium-replay run keeps its last N of many
        thousand episodes (reading them all took 12 GB for 9m_vs_10m's 6 GiB of parts)."""
        pieces = []
        for k, path in enumerate(self.paths):
            lo, hi = int(self.starts[k]), int(self.starts[k + 1])
            if hi <= self.offset:
                continue  # wholly before the kept episodes
            pieces.append(read_part(path, last=hi - max(lo, self.offset)))
        return EpisodeArrays.concat(pieces) if len(pieces) > 1 else pieces[0]


def check_layout(run_dir: Path, shape: dict[str, tuple], layout: Layout, task: str) -> None:
    """Stop with a clear message when a dataset's widths do not fit the task it feeds."""
    got = {"agents": shape["obs"][2], "obs width": shape["obs"][3],
           "state width": shape["state"][2], "actions": shape["avail_actions"][3]}
    want = {"agents": layout.n_agents, "obs width": layout.obs_dim,
            "state width": layout.state_dim, "actions": layout.n_actions}
    bad = [f"{k} {got[k]} (task {task} has {want[k]})" for k in got if got[k] != want[k]]
    if bad:
        raise DatasetError(f"{run_dir} does not fit task {task}: " + "; ".join(bad))


@dataclass
class Batch:
    """A padded batch of episodes of one task as torch tensors, truncated to its longest episode.

    Shapes: obs [B, T, n, obs], state [B, T, S], actions [B, T, n], avail [B, T, n, A],
    reward/terminated/filled [B, T]. ``mask`` marks transitions (filled rows minus the
    post-terminal row). ``length`` (0-dim) is the batch's own row count T: in a fused group
    (:func:`stack_batches`) batches are zero-padded to the group's longest, and losses read
    ``rows`` / ``length`` so that the padding changes nothing.
    """

    obs: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor
    avail: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    filled: torch.Tensor
    length: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.length is None:
            self.length = torch.tensor(self.obs.shape[1], device=self.obs.device)

    @property
    def rows(self) -> torch.Tensor:
        """[T]: 1.0 for the batch's own rows, 0.0 for a fused group's padding."""
        t = torch.arange(self.obs.shape[1], device=self.obs.device)
        return (t < self.length).float()

    @property
    def steps(self) -> torch.Tensor:
        """The batch's own row count T as a float (0-dim)."""
        return self.length.float()

    @property
    def mask(self) -> torch.Tensor:
        ended_before = torch.nn.functional.pad(self.terminated, (1, 0))[:, :-1].cumsum(1)
        return self.filled * (1 - ended_before.clamp(max=1))

    def to(self, device: torch.device) -> Batch:
        return Batch(*(f.to(device) for f in self.fields()))

    def fields(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, k) for k in Batch.__dataclass_fields__)

    @classmethod
    def from_episodes(cls, e: EpisodeArrays, t: int) -> Batch:
        """Episodes cut to their first ``t`` rows, as torch tensors."""

        def rows(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x[:, :t]))

        return cls(
            obs=rows(e.obs),
            state=rows(e.state),
            actions=rows(e.actions),
            avail=rows(e.avail_actions),
            reward=rows(e.reward),
            terminated=rows(e.terminated.astype(np.float32)),
            filled=rows(e.filled.astype(np.float32)),
        )


def stack_batches(batches: list[Batch]) -> Batch:
    """K batches of one task (same episode count) → one batch with a leading job axis [K, ...],
    each zero-padded in time to the longest (padded rows are unfilled, so ``mask`` is 0 there;
    ``length`` [K] keeps each batch's own T)."""
    t = max(b.obs.shape[1] for b in batches)

    def pad(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == t:
            return x
        return torch.cat([x, x.new_zeros(x.shape[0], t - x.shape[1], *x.shape[2:])], 1)

    keys = [k for k in Batch.__dataclass_fields__ if k != "length"]
    stacked = {k: torch.stack([pad(getattr(b, k)) for b in batches]) for k in keys}
    return Batch(**stacked, length=torch.stack([b.length for b in batches]))


@dataclass(frozen=True)
class Standardiser:
    """Per-feature standardisation of observations and states with a dataset's own mean and
    std over its filled rows (AlberDICE's ``standardize_obs``); a constant feature (std 0)
    is only centred."""

    obs_mean: np.ndarray
    obs_std: np.ndarray
    state_mean: np.ndarray
    state_std: np.ndarray

    @staticmethod
    def _scale(std: np.ndarray) -> np.ndarray:
        return np.where(std > 1e-8, std, 1.0).astype(np.float32)

    def obs(self, obs: np.ndarray) -> np.ndarray:
        return ((obs - self.obs_mean) / self._scale(self.obs_std)).astype(np.float32)

    def state(self, state: np.ndarray) -> np.ndarray:
        return ((state - self.state_mean) / self._scale(self.state_std)).astype(np.float32)

    def batch(self, b: Batch) -> Batch:
        def z(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
            m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
            s = torch.as_tensor(self._scale(std), dtype=x.dtype, device=x.device)
            return (x - m) / s

        return Batch(z(b.obs, self.obs_mean, self.obs_std),
                     z(b.state, self.state_mean, self.state_std), b.actions, b.avail, b.reward,
                     b.terminated, b.filled, b.length)

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).astype(float).tolist()
                for k in ("obs_mean", "obs_std", "state_mean", "state_std")}

    @classmethod
    def from_dict(cls, d: dict) -> Standardiser:
        return cls(*(np.asarray(d[k], np.float32)
                     for k in ("obs_mean", "obs_std", "state_mean", "state_std")))


def _moments(chunks) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std over rows of [rows, features] chunks (float64 sums)."""
    total = count = squares = None
    for x in chunks:
        x = x.astype(np.float64)
        total = x.sum(0) if total is None else total + x.sum(0)
        squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
        count = x.shape[0] if count is None else count + x.shape[0]
    mean = total / max(count, 1)
    var = np.maximum(squares / max(count, 1) - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def feature_stats(data: TaskData, chunk: int = 256) -> Standardiser:
    """The standardisation of one task's loaded episodes: observations over every filled
    (row, agent), states over every filled row."""
    def parts():
        for start in range(0, data.n_episodes, chunk):
            idx = np.arange(start, min(start + chunk, data.n_episodes))
            eps = data.take(idx, int(data.lengths[idx].max()))
            yield eps, eps.filled.astype(bool)  # [E, T+1]

    obs_mean, obs_std = _moments(e.obs[f].reshape(-1, e.obs.shape[-1]) for e, f in parts())
    state_mean, state_std = _moments(e.state[f] for e, f in parts())
    return Standardiser(obs_mean, obs_std, state_mean, state_std)


class TaskData:
    """The episodes of one task (one or more sources, e.g. medium + expert), sampled uniformly
    without replacement within a batch; with a :class:`Standardiser`, batches come
    standardised."""

    standardiser: Standardiser | None = None

    def __init__(self, *sources: EpisodeArrays | LazyEpisodes):
        if not sources:
            raise ValueError("TaskData needs at least one source of episodes")
        self.sources = sources
        self._sizes = np.array([s.n_episodes for s in sources])
        self._starts = np.cumsum(np.concatenate([[0], self._sizes]))
        self._lengths = np.concatenate([s.lengths for s in sources])

    @property
    def n_episodes(self) -> int:
        return int(self._sizes.sum())

    @property
    def lengths(self) -> np.ndarray:
        return self._lengths

    @property
    def returns(self) -> np.ndarray:
        """Each episode's return (its rewards summed over filled rows)."""
        return np.concatenate([s.returns for s in self.sources])

    def take(self, idx: np.ndarray, t: int) -> EpisodeArrays:
        """Episodes ``idx`` (positions in the concatenated sources), in that order."""
        src = np.searchsorted(self._starts, idx, side="right") - 1
        pieces, order = [], []
        for k in np.unique(src):
            sel = np.flatnonzero(src == k)
            local = idx[sel] - self._starts[k]
            s = self.sources[k]
            part = s.take(local, t) if isinstance(s, LazyEpisodes) else s.select(local)
            pieces.append(part)
            order.append(sel)
        back = np.argsort(np.concatenate(order))
        eps = EpisodeArrays.concat(pieces) if len(pieces) > 1 else pieces[0]
        return eps.select(back)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = rng.choice(self.n_episodes, size=min(batch_size, self.n_episodes), replace=False)
        t = int(self._lengths[idx].max())
        batch = Batch.from_episodes(self.take(idx, t), t)
        return batch if self.standardiser is None else self.standardiser.batch(batch)


def load_task_data(
    sources: list[tuple[Path, int | None]],
    layout: Layout | None = None,
    task: str = "",
    in_memory: bool | None = None,
) -> TaskData:
    """Verify, check against the task's layout, and open the sources of one task.

    ``in_memory`` None decides by size against :func:`memory_budget_bytes`.
    """
    lazy = []
    for run_dir, last in sources:
        verify(run_dir)
        src = LazyEpisodes(run_dir, last)
        if layout is not None:
            check_layout(run_dir, src.shape, layout, task)
        lazy.append(src)
    if in_memory is None:
        in_memory = sum(s.nbytes for s in lazy) <= memory_budget_bytes()
    return TaskData(*(s.load() for s in lazy)) if in_memory else TaskData(*lazy)
