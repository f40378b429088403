"""The warehouse backend against raw rware, side by side on this machine.

    python benchmarks/rware_speed.py [--tasks rware-tiny-2ag,rware-small-6ag] [--batch 64]
                                     [--steps 500] [--rounds 5]

A: raw rware in one process, as its README runs it: ``gymnasium.make(id).unwrapped``, one
   episode at a time, random actions drawn per step (no policy).
B: marlbench's ``RwareEnv`` with B episodes side by side and a policy in the loop: a
   two-layer MLP (64 units) on the [B, n, 71] observations, sampling actions (torch, one
   thread), as behaviour collection and evaluation run it.
Rounds interleave A and B; the figures are medians of env-steps/s (one env-step = one
joint step of one episode).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import machine

from marlbench.envs.maps import get_map
from marlbench.envs.rware import RwareEnv


def raw_rware(env_id: str, steps: int, seed: int) -> float:
    import gymnasium
    import rware  # noqa: F401

    env = gymnasium.make(env_id, disable_env_checker=True).unwrapped
    env.reset(seed=seed)
    n = env.n_agents
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, 5, n).tolist())
    return steps / (time.perf_counter() - t0)


def batched(env: RwareEnv, policy: torch.nn.Module, steps: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed)
    res = env.reset(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        with torch.no_grad():
            logits = policy(torch.from_numpy(res.obs))
            actions = torch.multinomial(logits.reshape(-1, 5).softmax(-1), 1, generator=gen)
        res = env.step(actions.reshape(env.batch_size, -1).numpy())
    return steps * env.batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="rware-tiny-2ag,rware-tiny-4ag,rware-small-6ag")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    policy = torch.nn.Sequential(torch.nn.Linear(71, 64), torch.nn.ReLU(),
                                 torch.nn.Linear(64, 5))
    for task in args.tasks.split(","):
        spec = get_map(task)
        env = RwareEnv(spec, args.batch)
        a, b = [], []
        for r in range(args.rounds):
            a.append(raw_rware(spec.env_id, args.steps, r))
            b.append(batched(env, policy, args.steps, r))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{task}: raw rware {ma:,.0f} env-steps/s (one process, no policy); marlbench "
              f"B={args.batch} with policy {mb:,.0f} env-steps/s; ratio {mb / ma:.2f} "
              f"(medians of {args.rounds} interleaved rounds of {args.steps} steps)")


if __name__ == "__main__":
    main()
