"""``marlbench calibrate``: measure this machine for the cost model (:mod:`marlbench.cost`).

On each reference map, with one torch thread (a worker's share on a 2-core machine with two
workers): every learner's seconds per update at ``REF_BATCH`` full-length episodes (after one
warm-up update; ODIS's pre-training phase separately), and on CUDA too when present; seconds
per batch step of a greedy policy in the loop at the paper's 32 evaluation episodes and the
fraction of the episode limit its longest episode reaches; the environment's build-and-compile
time; scripted collection's seconds per episode (written as ODIS parts; the fixed cost of a
job separated by collecting twice); MAPPO behaviour training's env-steps/s.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marlbench.cost import (
    COLLECT_BATCH,
    FORMAT,
    REF_BATCH,
    REF_MAPS,
    machine_id,
    machine_info,
    stamp,
)
from marlbench.data.dataset import Batch
from marlbench.envs.maps import get_map

EVAL_EPISODES = 32
Progress = Callable[[str], None]


def full_batch(task: str, b: int, device: torch.device) -> Batch:
    """``b`` synthetic episodes of ``task`` at full length (episode limit + 1 rows)."""
    lay = get_map(task).layout
    t = lay.episode_limit + 1
    g = torch.Generator().manual_seed(0)
    term = torch.zeros(b, t)
    term[:, -2] = 1
    return Batch(
        obs=torch.rand(b, t, lay.n_agents, lay.obs_dim, generator=g),
        state=torch.rand(b, t, lay.state_dim, generator=g),
        actions=torch.randint(0, lay.n_actions, (b, t, lay.n_agents), generator=g),
        avail=torch.ones(b, t, lay.n_agents, lay.n_actions, dtype=torch.int32),
        reward=torch.rand(b, t, generator=g),
        terminated=term,
        filled=torch.ones(b, t),
    ).to(device)


def update_seconds(learner_name: str, task: str, device: torch.device, updates: int = 2,
                   pretrain: bool = False) -> float:
    from marlbench.learners import LEARNERS

    cls = LEARNERS[learner_name]
    learner = cls({task: get_map(task).layout}, cls.Config(), device)
    if pretrain:
        learner.set_budget(10**9)  # every update a skill pre-training one
    batch = full_batch(task, REF_BATCH, device)
    learner.update(batch, task)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(updates):
        learner.update(batch, task)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / updates


def worker_start_seconds() -> float:
    """What a fresh worker pays once before its first environment: importing JAX and jaxmarl
    and building a first (small) environment. Measured in a new process."""
    import subprocess
    import sys

    code = ("import time; t = time.perf_counter(); import torch; from marlbench.envs import "
            "make_env; make_env('3m', 1); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def eval_figures(task: str) -> tuple[float, float, float]:
    """(seconds per batch step, fraction of the limit reached, build + compile seconds) of an
    untrained BC-t policy playing ``EVAL_EPISODES`` episodes (imports already paid)."""
    from marlbench.envs import make_env
    from marlbench.learners import LEARNERS
    from marlbench.rollout import PolicyActor, rollout

    cls = LEARNERS["bc_t"]
    learner = cls({task: get_map(task).layout}, cls.Config(), torch.device("cpu"))
    make_env("3m", 1)  # the imports, once
    t0 = time.perf_counter()
    env = make_env(task, EVAL_EPISODES)
    first = rollout(env, PolicyActor(learner.policy(), task, EVAL_EPISODES), 0)
    cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    r = rollout(env, PolicyActor(learner.policy(), task, EVAL_EPISODES), 1)
    warm = time.perf_counter() - t1
    steps = int(r.lengths.max())
    first_steps = int(first.lengths.max())
    per_step = warm / max(1, steps)
    return per_step, steps / get_map(task).episode_limit, max(0.0, cold - first_steps * per_step)


def collect_seconds_per_episode(task: str, batches: int = 2) -> float:
    """Seconds per collected episode: scripted roll-outs of 128 episodes written as ODIS parts
    (the environment built and compiled beforehand, as the compile is costed apart)."""
    from marlbench.data.behaviour import FocusFirePolicy
    from marlbench.data.collect import DatasetWriter
    from marlbench.envs import make_env
    from marlbench.rollout import rollout

    env = make_env(task, COLLECT_BATCH)
    policy = FocusFirePolicy(env.layout, 0.0, np.random.default_rng(0))

    def act(r):
        return policy.act(r.obs, r.avail_actions)

    rollout(env, act, 0, True)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        writer = DatasetWriter(Path(tmp) / "run", batches * COLLECT_BATCH, env.layout)
        t0 = time.perf_counter()
        for k in range(batches):
            res = rollout(env, act, k + 1, True)
            writer.add(res.episodes, res.won)
        writer.finish({"task": task, "backend": "smax", "quality": "scripted",
                       "behaviour_policy": {"name": "focus-fire"}, "collection_seed": 0})
        return (time.perf_counter() - t0) / (batches * COLLECT_BATCH)


def mappo_steps_per_second(task: str, iterations: int = 2) -> float:
    from marlbench.data.mappo import Mappo, MappoConfig
    from marlbench.envs import make_env

    env = make_env(task, 128)
    learner = Mappo(env.layout, MappoConfig(), 0)
    learner.update(learner.play(env, 0, greedy=False))  # warm-up: compile
    steps, t0 = 0, time.perf_counter()
    for k in range(iterations):
        r = learner.play(env, k + 1, greedy=False)
        learner.update(r)
        steps += int(r.lengths.sum())
    return steps / (time.perf_counter() - t0)


def calibrate(learners: list[str] | None = None, maps: tuple[str, ...] = REF_MAPS,
              progress: Progress | None = None) -> dict[str, Any]:
    """Measure everything the cost model needs on this machine (about a minute or two)."""
    from marlbench.learners import LEARNERS

    say = progress or (lambda _what: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.time()
    try:
        names = learners or list(LEARNERS)
        devices = [torch.device("cpu")] + ([torch.device("cuda")]
                                           if torch.cuda.is_available() else [])
        update_s: dict[str, dict[str, dict[str, float]]] = {}
        for device in devices:
            table = update_s.setdefault(device.type, {})
            for name in names + (["odis-pre"] if "odis" in names else []):
                learner = "odis" if name == "odis-pre" else name
                for task in maps:
                    say(f"{name} update on {task} ({device.type})")
                    table.setdefault(name, {})[task] = update_seconds(
                        learner, task, device, pretrain=name == "odis-pre")
        say("worker start (imports)")
        start_s = worker_start_seconds()
        eval_step, fractions, compiles, collect, mappo = {}, [], [], {}, {}
        for task in maps:
            say(f"evaluation roll-outs on {task}")
            per_step, fraction, compile_s = eval_figures(task)
            eval_step[task] = per_step
            fractions.append(fraction)
            compiles.append(compile_s)
            say(f"scripted collection on {task}")
            collect[task] = collect_seconds_per_episode(task)
            say(f"MAPPO behaviour training on {task}")
            mappo[task] = mappo_steps_per_second(task)
    finally:
        torch.set_num_threads(threads)
    info = machine_info()
    return {
        "format": FORMAT,
        "source": f"calibrated on this machine ({info['cpu']}, {info['cores']} cores) "
                  f"on {stamp()}",
        "machine": info,
        "machine_id": machine_id(info),
        "threads": 1,
        "maps": list(maps),
        "update_s": update_s,
        "eval_step_s": eval_step,
        "eval_length_fraction": float(np.mean(fractions)),
        "eval_overhead_s": 0.018,  # benchmarks/eval_overhead.py: job bookkeeping, not measured here
        "compile_s": float(np.median(compiles)),
        "worker_start_s": start_s,
        "collect_episode_s": collect,
        "mappo_steps_per_s": mappo,
        "wall_time_s": round(time.time() - start, 1),
    }
