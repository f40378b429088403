"""The ODIS HDF5 episode format (protocol.md §4), read and written unchanged.

A part file holds E episodes padded on the time axis to ``episode_limit + 1`` rows. An episode
of T transitions fills T + 1 rows from the start: the last filled row carries the post-terminal
observation, state and availability, a placeholder action and zero reward; ``terminated`` is 1
on row T − 1 (time-outs included, as pymarl stores them). Every key is gzip level 9.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

KEYS_DTYPES: dict[str, np.dtype] = {
    "obs": np.dtype(np.float32),
    "state": np.dtype(np.float32),
    "actions": np.dtype(np.int64),
    "actions_onehot": np.dtype(np.float32),
    "avail_actions": np.dtype(np.int32),
    "reward": np.dtype(np.float32),
    "terminated": np.dtype(np.uint8),
    "filled": np.dtype(np.int64),
}


# The name of a part file in a run folder: part_0.h5, part_1.h5, ...
PART_NAME = re.compile(r"part_[0-9]{1,9}\.h5")


class DatasetError(Exception):
    """A dataset file is missing, corrupt, truncated or does not match what was expected."""


@dataclass
class EpisodeArrays:
    """Padded episodes in the ODIS layout, batch-major: ``[E, T+1, ...]``."""

    obs: np.ndarray
    state: np.ndarray
    actions: np.ndarray  # [E, T+1, n] int64 (the file stores a trailing 1)
    avail_actions: np.ndarray
    reward: np.ndarray  # [E, T+1]
    terminated: np.ndarray  # [E, T+1]
    filled: np.ndarray  # [E, T+1]

    @property
    def n_episodes(self) -> int:
        return int(self.obs.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Filled rows per episode (transitions + 1)."""
        return self.filled.sum(axis=1)

    @property
    def returns(self) -> np.ndarray:
        return (self.reward * self.filled).sum(axis=1)

    def select(self, index: np.ndarray | slice) -> EpisodeArrays:
        return EpisodeArrays(
            *(getattr(self, k)[index] for k in EpisodeArrays.__dataclass_fields__)
        )

    @classmethod
    def concat(cls, parts: list[EpisodeArrays]) -> EpisodeArrays:
        return cls(
            *(
                np.concatenate([getattr(p, k) for p in parts])
                for k in EpisodeArrays.__dataclass_fields__
            )
        )


# -- reading at the door: structure, then values -------------------------------------------

# Required keys (``actions_onehot`` is optional: it is derived from ``actions``), their number
# of dimensions and what each axis means.
REQUIRED = tuple(k for k in KEYS_DTYPES if k != "actions_onehot")
AXES: dict[str, tuple[str, ...]] = {
    "obs": ("episodes", "rows", "agents", "obs width"),
    "state": ("episodes", "rows", "state width"),
    "actions": ("episodes", "rows", "agents", "1"),
    "actions_onehot": ("episodes", "rows", "agents", "actions"),
    "avail_actions": ("episodes", "rows", "agents", "actions"),
    "reward": ("episodes", "rows", "1"),
    "terminated": ("episodes", "rows", "1"),
    "filled": ("episodes", "rows", "1"),
}
_INTEGER_KEYS = ("actions",)


@dataclass(frozen=True)
class PartLayout:
    """What one part file holds, read from its keys' shapes (no data read)."""

    episodes: int
    rows: int  # episode_limit + 1
    agents: int
    obs_dim: int
    state_dim: int
    actions: int
    shapes: dict[str, tuple[int, ...]]

    def differs(self, other: PartLayout) -> list[str]:
        return [f"{what} {getattr(self, k)} vs {getattr(other, k)}"
                for k, what in (("agents", "agents"), ("obs_dim", "obs width"),
                                ("state_dim", "state width"), ("actions", "actions"),
                                ("rows", "rows per episode"))
                if getattr(self, k) != getattr(other, k)]


def part_layout(f: h5py.File, path: Path) -> PartLayout:
    """Check the structure of an open part file: only known members, each a dataset of a
    numeric dtype with the right number of dimensions, shapes agreeing across keys, at least
    one episode. Raises DatasetError naming the file and the key."""
    for name in f:
        member = f.get(name)
        kind = ("array" if isinstance(member, h5py.Dataset)
                else "group" if isinstance(member, h5py.Group) else "link or datatype")
        if name not in KEYS_DTYPES:
            raise DatasetError(f"{path}: unknown {kind} {name!r}; an ODIS part file holds only "
                               f"the keys {', '.join(KEYS_DTYPES)}")
        if kind != "array":
            raise DatasetError(f"{path}: key {name!r} is a {kind}, not an array")
    missing = [k for k in REQUIRED if k not in f]
    if missing:
        raise DatasetError(f"{path}: missing key(s) {', '.join(missing)}")
    shapes: dict[str, tuple[int, ...]] = {}
    for key in (k for k in KEYS_DTYPES if k in f):
        d = f[key]
        kinds = "iu" if key in _INTEGER_KEYS else "biuf"
        if d.dtype.kind not in kinds:
            want = "integers" if key in _INTEGER_KEYS else "numbers"
            raise DatasetError(f"{path}: key {key!r} has dtype {d.dtype}; it must hold {want}")
        axes = AXES[key]
        if d.ndim != len(axes):
            raise DatasetError(f"{path}: key {key!r} has shape {d.shape}, {d.ndim} dimension(s); "
                               f"expected {len(axes)} ({', '.join(axes)})")
        shapes[key] = tuple(int(x) for x in d.shape)
    e, rows, n, obs_dim = shapes["obs"]
    state_dim, n_actions = shapes["state"][2], shapes["avail_actions"][3]
    sizes = {"episodes": e, "rows": rows, "agents": n, "obs width": obs_dim,
             "state width": state_dim, "actions": n_actions, "1": 1}
    for key, shape in shapes.items():
        want = tuple(sizes[a] for a in AXES[key])
        if shape != want:
            raise DatasetError(f"{path}: key {key!r} has shape {shape}, expected {want} "
                               f"({', '.join(AXES[key])}) to agree with 'obs', 'state' and "
                               "'avail_actions'")
    if e == 0:
        raise DatasetError(f"{path}: key 'obs' holds no episodes (shape {shapes['obs']})")
    empty = [a for a, v in sizes.items() if v == 0]
    if empty or rows < 2:
        raise DatasetError(f"{path}: key 'obs' has shape {shapes['obs']} and 'state' "
                           f"{shapes['state']}: {', '.join(empty) or 'rows'} too small")
    return PartLayout(e, rows, n, obs_dim, state_dim, n_actions, shapes)


def check_values(path: Path, arrays: dict[str, np.ndarray], n_actions: int) -> None:
    """Check the values of the keys in ``arrays`` (as stored, any subset): flags 0/1, the
    filled rows a prefix of each episode, actions in range, no NaN or infinity."""
    for key in ("obs", "state", "reward"):
        x = arrays.get(key)
        if x is not None and x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DatasetError(f"{path}: key {key!r} holds NaN or infinity")
    for key in ("filled", "terminated", "avail_actions"):
        x = arrays.get(key)
        if x is not None and not ((x == 0) | (x == 1)).all():
            bad = x[(x != 0) & (x != 1)].flat[0]
            raise DatasetError(f"{path}: key {key!r} holds {bad}; it must hold only 0 or 1")
    filled = arrays.get("filled")
    if filled is not None:
        f = filled[..., 0]
        if not (f[:, 0] == 1).all() or (np.diff(f, axis=1) > 0).any():
            raise DatasetError(f"{path}: key 'filled' is not 1 on the first rows of each "
                               "episode and 0 after them")
    actions = arrays.get("actions")
    if actions is not None and actions.size and (actions.min() < 0
                                                 or actions.max() >= n_actions):
        raise DatasetError(f"{path}: key 'actions' holds {actions.min()}..{actions.max()}; "
                           f"the file has {n_actions} actions")


def _unreadable(path: Path, exc: BaseException) -> DatasetError:
    return DatasetError(f"{path} is not a readable HDF5 file ({exc}): it is corrupt or "
                        "truncated")


def require_part(path: Path) -> Path:
    """``path`` if it is a regular file (a part, or any file given as one)."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"dataset part {path} is a directory, not a file")
    if not path.is_file():
        raise DatasetError(f"dataset part {path} does not exist")
    return path


def open_layout(path: Path) -> PartLayout:
    """The checked structure of a part file (reads no data)."""
    try:
        with h5py.File(require_part(path), "r") as f:
            return part_layout(f, path)
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:  # h5py's ways
        raise _unreadable(path, exc) from None


def read_part(path: Path, last: int | None = None) -> EpisodeArrays:
    """Read a part file (ODIS's or marlbench's), checking its structure and values; ``last``
    keeps only the last N episodes."""
    path = require_part(path)
    try:
        with h5py.File(path, "r") as f:
            layout = part_layout(f, path)
            e = layout.episodes
            sel = slice(max(0, e - last), e) if last else slice(None)
            stored = {k: np.asarray(f[k][sel]) for k in REQUIRED}
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:  # h5py's ways
        raise _unreadable(path, exc) from None
    check_values(path, stored, layout.actions)
    return from_stored(stored)


def from_stored(arrays: dict[str, np.ndarray]) -> EpisodeArrays:
    """Episodes from arrays as a part file stores them (trailing 1 on actions, reward,
    terminated and filled; any numeric dtype)."""
    return EpisodeArrays(
        obs=arrays["obs"].astype(np.float32),
        state=arrays["state"].astype(np.float32),
        actions=arrays["actions"][..., 0].astype(np.int64),
        avail_actions=arrays["avail_actions"].astype(np.int32),
        reward=arrays["reward"][..., 0].astype(np.float32),
        terminated=arrays["terminated"][..., 0].astype(np.uint8),
        filled=arrays["filled"][..., 0].astype(np.int64),
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
