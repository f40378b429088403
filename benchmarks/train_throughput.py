"""Training update speed per learner: seconds per update at batch 32 full-length episodes,
alone and per job in fused groups of K jobs, on CPU and (when present) CUDA.

    python benchmarks/train_throughput.py [--maps 3m 3s5z] [--fused 1 5 20] [--updates 2]
        [--learners bc_t stairs ...] [--threads 1]

Synthetic full-length episodes (episode limit + 1 rows, the worst case; real batches are cut
to their longest episode). A fused group of K trains K jobs at once
(:func:`marlbench.learners.base.fuse`); "per job" is the group's time ÷ K. Timing is
:func:`marlbench.calibrate.time_updates` (one warm-up, device synchronised). Runs unchanged on
a GPU machine and prints the device of every row.
"""

from __future__ import annotations

import argparse

import torch
from common import machine

from marlbench.calibrate import full_batch, time_updates
from marlbench.data.dataset import stack_batches
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS
from marlbench.learners.base import fuse


def build(cls, task: str, device: torch.device, pretrain: bool):
    learner = cls({task: get_map(task).layout}, cls.Config(), device)
    if pretrain:
        learner.set_budget(10**9)  # every update a skill pre-training one
    return learner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", nargs="+", default=["3m", "3s5z"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--updates", type=int, default=2, help="timed updates per figure")
    ap.add_argument("--fused", nargs="+", type=int, default=[1, 5, 20],
                    help="group sizes K to time fused (K = 1: a group of one)")
    ap.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present), cpu, "
                    "cuda")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--learners", nargs="+", help="names to measure (default: all; "
                    "odis-pre = ODIS skill pre-training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "auto":
        devices = [args.device]
    print(machine(), f"| torch threads {torch.get_num_threads()}")
    ks = [k for k in args.fused if k >= 1]
    head = " ".join(f"{'K=' + str(k) + ' s/job':>11}" for k in ks)
    print(f"{'learner':>9} {'device':>6} {'map':>5} {'T':>4} {'s/update':>9} {head}  speed-up")
    runs = [(name, cls, False) for name, cls in LEARNERS.items()]
    if "odis" in LEARNERS:  # two phases with different costs: measure both
        runs.insert(list(LEARNERS).index("odis"), ("odis-pre", LEARNERS["odis"], True))
    wanted = set(args.learners or [r[0] for r in runs])
    for name, cls, pretrain in runs:
        if name not in wanted:
            continue
        for dev in devices:
            device = torch.device(dev)
            for task in args.maps:
                batch = full_batch(task, args.batch, device)
                alone = time_updates(build(cls, task, device, pretrain), batch, task,
                                     args.updates)
                per_job = []
                for k in ks:
                    group = fuse(build(cls, task, device, pretrain), k)
                    per_job.append(time_updates(group, stack_batches([batch] * k), task,
                                                args.updates) / k)
                    del group
                best = min(per_job) if per_job else alone
                cells = " ".join(f"{s:>11.3f}" for s in per_job)
                print(f"{name:>9} {dev:>6} {task:>5} {batch.obs.shape[1]:>4} {alone:>9.3f} "
                      f"{cells}  {alone / best:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
