"""Loading datasets (marlbench's or ODIS's) and sampling padded training batches per task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from marlbench.data.format import DatasetError, EpisodeArrays, read_part, sha256

DEFAULT_LAST_EPISODES = 2000


def part_files(run_dir: Path) -> list[Path]:
    """Part files of one run folder in index order (part_0, part_1, ...)."""
    parts = sorted(Path(run_dir).glob("part_*.h5"), key=lambda p: int(p.stem.split("_")[1]))
    if not parts:
        raise DatasetError(f"no part_*.h5 files in {run_dir}")
    return parts


def verify(run_dir: Path) -> None:
    """Check every part against the sha256 in the run's manifest (when one exists)."""
    manifest = Path(run_dir) / "manifest.json"
    if not manifest.exists():
        return
    for part in json.loads(manifest.read_text())["parts"]:
        path = Path(run_dir) / part["file"]
        if not path.exists():
            raise DatasetError(f"{path} is listed in the manifest but missing")
        if sha256(path) != part["sha256"]:
            raise DatasetError(
                f"{path} does not match the checksum in its manifest: the file is corrupt or "
                "was modified; delete the dataset folder to collect it again"
            )


def load_episodes(run_dir: Path, last: int | None = DEFAULT_LAST_EPISODES) -> EpisodeArrays:
    """The last ``last`` episodes of a run folder after concatenating its parts in order."""
    verify(run_dir)
    eps = EpisodeArrays.concat([read_part(p) for p in part_files(run_dir)])
    if last and eps.n_episodes > last:
        eps = eps.select(slice(eps.n_episodes - last, None))
    return eps


@dataclass
class Batch:
    """A padded batch of episodes of one task as torch tensors, truncated to its longest episode.

    Shapes: obs [B, T, n, obs], state [B, T, S], actions [B, T, n], avail [B, T, n, A],
    reward/terminated/filled [B, T]. ``mask`` marks transitions (filled rows minus the
    post-terminal row).
    """

    obs: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor
    avail: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    filled: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        ended_before = torch.nn.functional.pad(self.terminated, (1, 0))[:, :-1].cumsum(1)
        return self.filled * (1 - ended_before.clamp(max=1))

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, k).to(device) for k in Batch.__dataclass_fields__))


class TaskData:
    """The episodes of one task, sampled uniformly without replacement within a batch."""

    def __init__(self, episodes: EpisodeArrays):
        self.episodes = episodes
        self._lengths = episodes.lengths

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        e = self.episodes
        idx = rng.choice(e.n_episodes, size=min(batch_size, e.n_episodes), replace=False)
        t = int(self._lengths[idx].max())
        return Batch(
            obs=torch.from_numpy(e.obs[idx, :t]),
            state=torch.from_numpy(e.state[idx, :t]),
            actions=torch.from_numpy(e.actions[idx, :t]),
            avail=torch.from_numpy(e.avail_actions[idx, :t]),
            reward=torch.from_numpy(e.reward[idx, :t]),
            terminated=torch.from_numpy(e.terminated[idx, :t].astype(np.float32)),
            filled=torch.from_numpy(e.filled[idx, :t].astype(np.float32)),
        )
