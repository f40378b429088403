"""Embedded-backend throughput with a policy in the loop (SMAC observations included).

    python benchmarks/env_throughput.py [--maps 3m 10m] [--batch 32 256 1024] [--policy scripted]

Prints env-steps/s (one env-step = one step of one episode) after a warm-up batch, so JAX
compilation (cached on disk between processes) is reported separately.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine

from marlbench.data.behaviour import FocusFirePolicy
from marlbench.envs import make_env
from marlbench.rollout import PolicyActor


def make_actor(policy: str, env, name: str, batch: int):
    """The action function of the chosen policy (BC-t is untrained: speed only)."""
    lay = env.layout
    if policy == "bc_t":
        import torch

        from marlbench.learners import get_learner

        cls = get_learner("bc_t")
        learner = cls({name: lay}, cls.Config(), torch.device("cpu"))
        return PolicyActor(learner.policy(), name, batch)
    if policy == "scripted":
        script = FocusFirePolicy(lay, 0.0, np.random.default_rng(0))
        return lambda r: script.act(r.obs, r.avail_actions)
    rng = np.random.default_rng(0)
    return lambda r: (rng.random(r.avail_actions.shape) * r.avail_actions).argmax(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--maps", nargs="+", default=["3m", "10m"])
    ap.add_argument("--batch", nargs="+", type=int, default=[32, 256, 1024])
    ap.add_argument("--policy", choices=["scripted", "random", "bc_t"], default="scripted")
    ap.add_argument("--steps", type=int, default=50, help="batched steps timed")
    args = ap.parse_args()
    print(machine())
    print(f"policy: {args.policy}")
    print(f"{'map':>10} {'batch':>6} {'warm-up s':>10} {'env-steps/s':>12} "
          f"{'ms/batched step':>16}")
    for name in args.maps:
        for b in args.batch:
            t0 = time.perf_counter()
            env = make_env(name, b)
            res = env.reset(0)
            lay = env.layout
            act = make_actor(args.policy, env, name, b)
            for _ in range(lay.episode_limit):  # one warm-up episode (compilation)
                res = env.step(act(res))
                if env.all_done:
                    break
            compile_s = time.perf_counter() - t0
            steps = 0
            t0 = time.perf_counter()
            seed = 1
            while steps < args.steps:
                res = env.reset(seed)
                seed += 1
                for _ in range(lay.episode_limit):
                    # ended episodes stay in the batch (frozen), as in evaluation
                    res = env.step(act(res))
                    steps += 1
                    if env.all_done or steps >= args.steps:
                        break
            dt = time.perf_counter() - t0
            print(f"{name:>10} {b:>6} {compile_s:>10.1f} {steps * b / dt:>12,.0f} "
                  f"{dt / steps * 1e3:>16.2f}")


if __name__ == "__main__":
    main()
