"""Data collection and loading speed.

    python benchmarks/collect_throughput.py [--maps 3m 10m 2s3z] [--batch 128] [--iters 10]

1. Behaviour training: env-steps/s of MAPPO iterations (B stochastic episodes, then PPO
   epochs on them), after one warm-up iteration (JAX compilation).
2. Writing: episodes/s of greedy roll-outs written as gzip-9 ODIS parts.
3. Loading: training batches/s (32 episodes) sampled from the public ODIS 3m file held in
   memory, streamed from the ODIS file, and streamed from a marlbench-written copy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import machine

from marlbench.data.collect import DatasetWriter
from marlbench.data.dataset import LazyEpisodes, TaskData, load_episodes
from marlbench.envs import make_env
from marlbench.learners.mappo import Mappo, MappoConfig

ODIS_3M = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "odis" / "dataset"
           / "3m" / "medium" / "qmix_2022-04-03_12-49-45")


def behaviour(task: str, batch: int, iters: int) -> tuple[float, float]:
    env = make_env(task, batch)
    learner = Mappo(env.layout, MappoConfig(), 0)
    learner.update(learner.play(env, 0, greedy=False))  # warm-up: compilation
    steps, start = 0, time.perf_counter()
    for it in range(1, iters + 1):
        r = learner.play(env, it, greedy=False)
        learner.update(r)
        steps += int(r.lengths.sum())
    elapsed = time.perf_counter() - start
    # greedy roll-outs written to disk
    with tempfile.TemporaryDirectory() as tmp:
        episodes = 4 * batch
        writer = DatasetWriter(Path(tmp) / "ds", episodes, env.layout)
        start_w = time.perf_counter()
        k = 0
        while writer.remaining:
            r = learner.play(env, 10_000 + k, greedy=True)
            writer.add(r.episodes, r.won)
            k += 1
        writer.finish({})
        written = episodes / (time.perf_counter() - start_w)
    return steps / elapsed, written


def loading(batches: int = 100) -> dict[str, float]:
    """Batches/s from memory, streamed from the ODIS file (250 episodes per HDF5 chunk), and
    streamed from the same episodes written by marlbench (one episode per chunk)."""
    from marlbench.envs.maps import get_map

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        episodes = load_episodes(ODIS_3M)
        writer = DatasetWriter(Path(tmp) / "3m", episodes.n_episodes, get_map("3m").layout)
        writer.add(episodes, np.zeros(episodes.n_episodes, bool))
        writer.finish({})
        for name, source in (("memory", episodes), ("odis file", LazyEpisodes(ODIS_3M)),
                             ("marlbench file", LazyEpisodes(Path(tmp) / "3m"))):
            data = TaskData(source)
            rng = np.random.default_rng(0)
            data.sample(32, rng)
            n = batches if name != "odis file" else 10
            start = time.perf_counter()
            for _ in range(n):
                data.sample(32, rng)
            out[name] = n / (time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", nargs="+", default=["3m", "10m", "2s3z"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as behaviour runs do
    print(machine())
    print(f"{'map':<10} {'MAPPO env-steps/s':>18} {'greedy episodes written/s':>26}")
    for task in args.maps:
        sps, eps = behaviour(task, args.batch, args.iters)
        print(f"{task:<10} {sps:>18,.0f} {eps:>26,.0f}")
    if ODIS_3M.exists():
        speeds = loading()
        print("ODIS 3m medium, 32-episode batches/s: " + ", ".join(
            f"{k} {v:,.1f}" for k, v in speeds.items()))


if __name__ == "__main__":
    main()
