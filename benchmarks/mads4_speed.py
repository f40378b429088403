"""MADS4 against MADT at equal parameter count: training on full RWARE episodes (MADS4's S4
convolution over the whole episode, MADT's per-step GPT) and the acting step, per agent count.

    python benchmarks/mads4_speed.py [--tasks rware-tiny-2ag rware-tiny-4ag rware-tiny-6ag]
        [--batch 8] [--rounds 3] [--envs 64] [--threads 1]

MADS4 runs its reference defaults (3 S4 blocks, H = N = 96, K = 500); MADT gets the
embedding width (a multiple of its 2 heads) that brings its parameter count nearest to
MADS4's. Synthetic full-length episodes (501 rows). A and B interleave, each figure the
median of ``--rounds``; one torch thread by default.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import machine

from marlbench.calibrate import full_batch
from marlbench.envs.maps import get_map
from marlbench.learners import get_learner


def params(learner) -> int:
    return sum(p.numel() for p in learner.agent.parameters() if p.requires_grad)


def build(name: str, task: str, **cfg):
    torch.manual_seed(0)
    cls = get_learner(name)
    return cls({task: get_map(task).layout}, cls.Config(**cfg), torch.device("cpu"))


def madt_matching(task: str, target: int):
    """MADT with the embedding width whose parameter count is nearest ``target``."""
    best = None
    for embd in range(32, 1025, 2):
        learner = build("madt", task, n_embd=embd)
        gap = abs(params(learner) - target)
        if best is None or gap < best[0]:
            best = (gap, learner, embd)
        if params(learner) > target:
            break
    return best[1], best[2]


def act_seconds(learner, task: str, envs: int, steps: int = 20) -> float:
    lay = get_map(task).layout
    policy = learner.policy().sampling(0)
    state = policy.initial_state(envs, task)
    rng = np.random.default_rng(0)
    obs = rng.random((envs, lay.n_agents, lay.obs_dim)).astype(np.float32)
    avail = np.ones((envs, lay.n_agents, lay.n_actions), np.int32)
    extra = {}
    if getattr(policy, "uses_reward", False):
        extra["reward"] = np.zeros(envs, np.float32)
    if getattr(policy, "uses_state", False):
        extra["global_state"] = rng.random((envs, lay.state_dim)).astype(np.float32)
    policy.act(obs, avail, state, task, **extra)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        _, state = policy.act(obs, avail, state, task, **extra)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+",
                    default=["rware-tiny-2ag", "rware-tiny-4ag", "rware-tiny-6ag"])
    ap.add_argument("--batch", type=int, default=8, help="full episodes per update")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--envs", type=int, default=64, help="parallel episodes when acting")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine(), f"| {args.threads} torch thread(s)")
    print("task | params MADS4 / MADT (n_embd) | s per update MADS4 / MADT | ratio | "
          "ms per act step MADS4 (aligned / reference) / MADT")
    for task in args.tasks:
        mads4 = build("mads4", task, target_return=1.0)
        quirky = build("mads4", task, target_return=1.0, reference_quirks=True)
        madt, embd = madt_matching(task, params(mads4))
        batch = full_batch(task, args.batch, torch.device("cpu"), t=501)
        for learner in (mads4, madt):
            learner.update(batch, task)  # warm-up (MADS4: the kernel basis)
        train = {"mads4": [], "madt": []}
        act = {"mads4": [], "quirks": [], "madt": []}
        for _ in range(args.rounds):
            for key, learner in (("mads4", mads4), ("madt", madt)):
                t0 = time.perf_counter()
                learner.update(batch, task)
                train[key].append(time.perf_counter() - t0)
            for key, learner in (("mads4", mads4), ("quirks", quirky), ("madt", madt)):
                act[key].append(act_seconds(learner, task, args.envs))
        m = {k: statistics.median(v) for k, v in train.items()}
        a = {k: 1000 * statistics.median(v) for k, v in act.items()}
        print(f"{task} | {params(mads4):,} / {params(madt):,} ({embd}) | {m['mads4']:.3f} / "
              f"{m['madt']:.3f} | {m['mads4'] / m['madt']:.2f}x | {a['mads4']:.1f} / "
              f"{a['quirks']:.1f} / {a['madt']:.1f}")


if __name__ == "__main__":
    main()
