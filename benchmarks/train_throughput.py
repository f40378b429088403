"""Training updates per second per learner (batch of 32 episodes at the map's full length).

    python benchmarks/train_throughput.py [--maps 3m 5m 10m] [--batch 32] [--updates 20]

Uses synthetic full-length episodes so every update sees T = episode limit + 1 steps, the worst
case; real batches are cut to their longest episode and are faster.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine

from marlbench.calibrate import full_batch
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--maps", nargs="+", default=["3m", "5m", "10m"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--learners", nargs="+", help="names to measure (default: all; "
                    "odis-pre = ODIS skill pre-training)")
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "auto":
        devices = [args.device]
    print(machine())
    print(f"{'learner':>8} {'device':>6} {'map':>5} {'T':>4} {'updates/s':>10} {'s/update':>9}")
    # ODIS has two phases with different costs: measure both
    runs = [(name, cls, None) for name, cls in LEARNERS.items()]
    if "odis" in LEARNERS:
        runs.insert(list(LEARNERS).index("odis"), ("odis-pre", LEARNERS["odis"], 10**9))
    wanted = set(args.learners or [r[0] for r in runs])
    for name, cls, budget in runs:
        if name not in wanted:
            continue
        for dev in devices:
            device = torch.device(dev)
            for task in args.maps:
                learner = cls({task: get_map(task).layout}, cls.Config(), device)
                if budget is not None:
                    learner.set_budget(budget)  # every update a skill pre-training one
                batch = full_batch(task, args.batch, device)
                learner.update(batch, task)  # warm-up
                if dev == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(args.updates):
                    learner.update(batch, task)
                if dev == "cuda":
                    torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / args.updates
                print(f"{name:>8} {dev:>6} {task:>5} {batch.obs.shape[1]:>4} {1 / dt:>10.2f} "
                      f"{dt:>9.3f}")


if __name__ == "__main__":
    main()
