"""The ODIS HDF5 episode format (protocol.md §4), read and written unchanged.

A part file holds E episodes padded on the time axis to ``episode_limit + 1`` rows. An episode
of T transitions fills T + 1 rows from the start: the last filled row carries the post-terminal
observation, state and availability, a placeholder action and zero reward; ``terminated`` is 1
on row T − 1 (time-outs included, as pymarl stores them). Every key is gzip level 9.
"""

from __future__ import annotations

import hashlib
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


def read_part(path: Path, last: int | None = None) -> EpisodeArrays:
    """Read a part file (ODIS's or marlbench's); ``last`` keeps only the last N episodes."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset part {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in KEYS_DTYPES if k not in f and k != "actions_onehot"]
            if missing:
                raise DatasetError(f"{path}: missing key(s) {', '.join(missing)}")
            e = f["obs"].shape[0]
            sel = slice(max(0, e - last), e) if last else slice(None)

            def get(key: str) -> np.ndarray:
                return np.asarray(f[key][sel])

            obs, state = get("obs"), get("state")
            actions, avail = get("actions"), get("avail_actions")
            reward, term, filled = get("reward"), get("terminated"), get("filled")
    except (OSError, KeyError, ValueError, RuntimeError) as exc:  # h5py's ways to fail
        raise DatasetError(f"{path} is not a readable HDF5 file ({exc}): it is corrupt or "
                           "truncated") from None
    ep = from_stored({"obs": obs, "state": state, "actions": actions, "avail_actions": avail,
                      "reward": reward, "terminated": term, "filled": filled})
    _check_shapes(path, ep)
    return ep


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


def _check_shapes(path: Path, ep: EpisodeArrays) -> None:
    e, t1, n = ep.obs.shape[:3]
    expected = {
        "state": (e, t1),
        "actions": (e, t1, n),
        "avail_actions": (e, t1, n),
        "reward": (e, t1),
        "terminated": (e, t1),
        "filled": (e, t1),
    }
    for key, shape in expected.items():
        got = getattr(ep, key).shape[: len(shape)]
        if got != shape:
            raise DatasetError(f"{path}: key {key!r} has shape {got}, expected {shape}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
