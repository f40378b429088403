"""The embedded simulator against real StarCraft II, and what its fidelity costs in speed.

    python benchmarks/fidelity.py [--data ../shared/datasets/odis/dataset/3m/medium/...]
                                  [--updates 1000] [--episodes 256] [--fit]

1. The one-step yardstick on a recorded StarCraft II file for both unit profiles (and the
   stand-still scale, each profile's seed spread: its error against itself, and its energy
   score: error - spread / 2), plus the transfer figure: BC-t cloned from the file, played
   on the embedded map with each profile, next to the recording's own win rate and return.
2. Speed side by side: env-steps/s of the two profiles on the same map and batch, with a
   random policy, interleaved A/B/A/B, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import machine

from marlbench import fidelity as F
from marlbench.envs.maps import get_map
from marlbench.envs.smax import SmaxEnv
from marlbench.envs.units import GAME_LOOPS_PER_SECOND, PROFILES
from marlbench.rollout import rollout

ODIS_3M = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "odis" / "dataset"
           / "3m" / "medium" / "qmix_2022-04-03_12-49-45")


def speed(map_name: str, batch: int, rounds: int) -> dict[str, float]:
    envs = {u: SmaxEnv(get_map(map_name), batch, units=u) for u in PROFILES}
    rng = np.random.default_rng(0)

    def act(r):
        return (rng.random(r.avail_actions.shape) * r.avail_actions).argmax(-1)

    for env in envs.values():
        rollout(env, act, 0)  # compile
    times: dict[str, list[float]] = {u: [] for u in envs}
    for k in range(rounds):
        for u, env in envs.items():
            t0 = time.perf_counter()
            r = rollout(env, act, k + 1)
            times[u].append(int(r.lengths.sum()) / (time.perf_counter() - t0))
    return {u: statistics.median(v) for u, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ODIS_3M)
    ap.add_argument("--map", default="3m")
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--episodes", type=int, default=256)
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    spec = get_map(args.map)
    eps = F.load_recording(args.data, spec)
    size = F.playable_size(eps, spec)
    dec = F.decode(eps, spec, size)
    rows = {"stand still": F.stand_still(spec, eps, dec)}
    for name, prof in PROFILES.items():
        t0 = time.perf_counter()
        rows[name] = F.one_step(spec, eps, dec, prof)
        print(f"one-step {name}: {time.perf_counter() - t0:.1f} s")
    for name, prof in PROFILES.items():  # the chance floor: each profile against itself
        rows[f"{name} chance"] = F.seed_spread(spec, eps, dec, prof)
    for name in PROFILES:  # the energy score: error - chance / 2
        rows[f"{name} score"] = F.proper_score(rows[name], rows[f"{name} chance"])
    print(f"\n{args.map}: {eps.n_episodes} recorded episodes, playable size {size:.2f}")
    print(f"{'feature':16s}" + "".join(f"{n:>13s}" for n in rows))
    for f in F.FEATURES:
        if all(f in r for r in rows.values()):
            print(f"{f:16s}" + "".join(f"{r[f]:13.4f}" for r in rows.values()))
    if args.fit:
        best, errs = F.fit_time_scale(spec, eps, dec, [0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2])
        print(f"\nfitted game-time scale {best} (position error by scale "
              f"{json.dumps({str(k): round(v, 4) for k, v in errs.items()})}); "
              f"time per loop {best / GAME_LOOPS_PER_SECOND:.5f} s")
    episode = {"recorded": F.recorded_episodes(spec, eps, dec)}
    if args.updates:
        t0 = time.perf_counter()
        policy = F.clone_bc_t(spec, eps, args.updates, 1)
        print(f"\nBC-t, {args.updates} updates: {time.perf_counter() - t0:.0f} s")
        for name, prof in PROFILES.items():
            episode[f"BC-t on {name}"] = F.transfer(policy, spec, prof, args.episodes, 0)
    print(f"\n{'episodes':16s}{'win rate':>10s}{'return':>9s}{'length':>8s}")
    for name, r in episode.items():
        print(f"{name:16s}{100 * r['win_rate']:9.1f}%{r['mean_return']:9.2f}"
              f"{r['mean_length']:8.1f}")
    s = speed(args.map, args.batch, args.rounds)
    print(f"\nspeed, {args.map}, {args.batch} episodes, random policy, median of "
          f"{args.rounds} interleaved roll-outs: " + ", ".join(
              f"{u} {v:,.0f} env-steps/s" for u, v in s.items())
          + f"; sc2 / smax = {s['sc2'] / s['smax']:.2f}")


if __name__ == "__main__":
    main()
