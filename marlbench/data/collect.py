"""Dataset collection on the embedded backend: roll out a behaviour policy, write ODIS parts."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from marlbench import __version__
from marlbench.data.behaviour import FocusFirePolicy
from marlbench.data.format import EpisodeArrays, sha256, write_part
from marlbench.data.qualities import get_quality
from marlbench.envs import make_env
from marlbench.rollout import rollout

Progress = Callable[[int, int, str], None]
COLLECT_BATCH = 128
PART_EPISODES = 2000


def collect_dataset(
    task: str,
    quality: str,
    episodes: int,
    seed: int,
    out_dir: Path,
    backend: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Collect ``episodes`` episodes of ``quality`` on ``task``; write parts and a manifest."""
    q = get_quality(quality)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    batch = min(COLLECT_BATCH, episodes)
    env = make_env(task, batch, backend)
    rng = np.random.default_rng(seed)
    policy = FocusFirePolicy(env.layout, q.epsilon, rng)
    chunks: list[EpisodeArrays] = []
    won: list[np.ndarray] = []
    done = 0
    chunk = 0
    while done < episodes:
        res = rollout(
            env, lambda r: policy.act(r.obs, r.avail_actions), seed * 100_003 + chunk, True
        )
        take = min(batch, episodes - done)
        chunks.append(res.episodes.select(slice(0, take)))
        won.append(res.won[:take])
        done += take
        chunk += 1
        if progress:
            progress(done, episodes, f"collect {task}/{quality}")
    data = EpisodeArrays.concat(chunks)
    parts = []
    for k, lo in enumerate(range(0, episodes, PART_EPISODES)):
        path = out_dir / f"part_{k}.h5"
        write_part(path, data.select(slice(lo, lo + PART_EPISODES)), env.layout.n_actions)
        parts.append({"file": path.name, "sha256": sha256(path)})
    lengths = data.lengths
    manifest = {
        "task": task,
        "backend": backend,
        "quality": quality,
        "behaviour_policy": {
            "name": q.behaviour,
            "epsilon": q.epsilon,
            "description": q.description,
            "checkpoint": None,
        },
        "episodes": int(data.n_episodes),
        "mean_return": float(data.returns.mean()),
        "win_rate": float(np.concatenate(won).mean()),
        "episode_length": {
            "mean": float(lengths.mean()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
            "unit": "filled rows (transitions + 1)",
        },
        "parts": parts,
        "collection_seed": seed,
        "marlbench_version": __version__,
        "wall_time_s": round(time.time() - start, 2),
    }
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out_dir / "manifest.json")
    return manifest
