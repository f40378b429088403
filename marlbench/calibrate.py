"""``marlbench calibrate``: measure this machine for the cost model (:mod:`marlbench.cost`).

On each reference map, with one torch thread (a worker's share on a 2-core machine with two
workers): every learner's seconds per update at ``REF_BATCH`` full-length episodes and at one
short episode (after a warm-up update; ODIS's pre-training phase separately), and on CUDA too
when present; seconds per batch step of a greedy policy in the loop at the paper's 32
evaluation episodes and the fraction of the episode limit its longest episode reaches; the
environment's build-and-compile time; scripted collection's seconds per episode (written as
ODIS parts) and its episodes' lengths; MAPPO behaviour training's env-steps/s (replay log
included) and its greedy evaluations' seconds per chunk of 128 episodes.
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
    LENGTH_MAPS,
    REF_BATCH,
    REF_MAPS,
    machine_id,
    machine_info,
    small_rows,
    stamp,
)
from marlbench.data.dataset import Batch
from marlbench.envs.maps import get_map

EVAL_EPISODES = 32
Progress = Callable[[str], None]


def full_batch(task: str, b: int, device: torch.device, t: int | None = None) -> Batch:
    """``b`` synthetic episodes of ``task`` of ``t`` rows (default: full length, the episode
    limit + 1)."""
    lay = get_map(task).layout
    t = t or lay.episode_limit + 1
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
                   pretrain: bool = False) -> tuple[float, float]:
    """Seconds per update at ``REF_BATCH`` full-length episodes, and at one episode of
    ``small_rows(task)`` rows (which separates an update's fixed cost from its cost per
    episode-row)."""
    from marlbench.learners import LEARNERS

    cls = LEARNERS[learner_name]
    learner = cls({task: get_map(task).layout}, cls.Config(), device)
    if pretrain:
        learner.set_budget(10**9)  # every update a skill pre-training one

    full = time_updates(learner, full_batch(task, REF_BATCH, device), task, updates)
    small = time_updates(learner, full_batch(task, 1, device, small_rows(task)), task,
                         4 * updates)
    return full, small


def time_updates(learner, batch: Batch, task: str, n: int) -> float:
    """Seconds per ``learner.update(batch, task)`` over ``n`` updates after one warm-up (the
    device synchronised around the timed ones). A fused learner takes a stacked batch and
    the time is its whole group's."""
    device = batch.obs.device
    learner.update(batch, task)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        learner.update(batch, task)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


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


def collect_figures(task: str, batches: int = 2) -> tuple[float, list[int]]:
    """Seconds per collected episode of the ``scripted`` quality (roll-outs of 128 episodes
    written as ODIS parts, the environment built and compiled beforehand, as the compile is
    costed apart) and the collected episodes' lengths in rows, sorted (what the cost model
    cuts training batches to for scripted data not collected yet)."""
    from marlbench.data.behaviour import FocusFirePolicy
    from marlbench.data.collect import DatasetWriter
    from marlbench.data.qualities import get_quality
    from marlbench.envs import make_env
    from marlbench.rollout import rollout

    env = make_env(task, COLLECT_BATCH)
    eps = get_quality("scripted").epsilon
    policy = FocusFirePolicy(env.layout, eps, np.random.default_rng(0))

    def act(r):
        return policy.act(r.obs, r.avail_actions)

    rollout(env, act, 0, True)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        writer = DatasetWriter(Path(tmp) / "run", batches * COLLECT_BATCH, env.layout)
        lengths: list[int] = []
        t0 = time.perf_counter()
        for k in range(batches):
            res = rollout(env, act, k + 1, True)
            writer.add(res.episodes, res.won)
            lengths += [int(n) for n in res.episodes.lengths]
        writer.finish({"task": task, "backend": "smax", "quality": "scripted",
                       "behaviour_policy": {"name": "focus-fire"}, "collection_seed": 0})
        return (time.perf_counter() - t0) / (batches * COLLECT_BATCH), sorted(lengths)


def behaviour_figures(task: str, iterations: int = 2) -> tuple[float, float]:
    """MAPPO behaviour training as a behaviour job runs it (stochastic roll-outs of 128
    episodes appended to the replay log, then an update): env-steps/s; and the seconds of one
    greedy evaluation chunk of 128 episodes (a behaviour job evaluates every
    ``eval_interval`` env-steps)."""
    from marlbench.data.protocol import ReplayLog
    from marlbench.envs import make_env
    from marlbench.learners.mappo import Mappo, MappoConfig

    env = make_env(task, 128)
    learner = Mappo(env.layout, MappoConfig(), 0)
    learner.update(learner.play(env, 0, greedy=False))  # warm-up: compile
    learner.play(env, 0, greedy=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = ReplayLog(Path(tmp))
        steps, t0 = 0, time.perf_counter()
        for k in range(iterations):
            r = learner.play(env, k + 1, greedy=False)
            log.append(0, r.episodes, r.won)
            learner.update(r)
            steps += int(r.lengths.sum())
        sps = steps / (time.perf_counter() - t0)
        log.close_window()
    t1 = time.perf_counter()
    for k in range(iterations):
        learner.play(env, 100 + k, greedy=True)
    return sps, (time.perf_counter() - t1) / iterations


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
        update_small_s: dict[str, dict[str, dict[str, float]]] = {}
        for device in devices:
            table = update_s.setdefault(device.type, {})
            small = update_small_s.setdefault(device.type, {})
            for name in names + (["odis-pre"] if "odis" in names else []):
                learner = "odis" if name == "odis-pre" else name
                for task in maps:
                    say(f"{name} update on {task} ({device.type})")
                    table.setdefault(name, {})[task], small.setdefault(name, {})[task] = \
                        update_seconds(learner, task, device, pretrain=name == "odis-pre")
        say("worker start (imports)")
        start_s = worker_start_seconds()
        eval_step, fractions, compiles, collect, scripted = {}, [], [], {}, {}
        mappo, mappo_eval = {}, {}
        for task in maps:
            say(f"evaluation roll-outs on {task}")
            per_step, fraction, compile_s = eval_figures(task)
            eval_step[task] = per_step
            fractions.append(fraction)
            compiles.append(compile_s)
            say(f"scripted collection on {task}")
            collect[task], scripted[task] = collect_figures(task)
            say(f"MAPPO behaviour training on {task}")
            mappo[task], mappo_eval[task] = behaviour_figures(task)
        for task in LENGTH_MAPS:
            if task not in scripted:
                say(f"scripted episode lengths on {task}")
                scripted[task] = collect_figures(task, batches=1)[1]
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
        "update_small_s": update_small_s,
        "eval_step_s": eval_step,
        "eval_length_fraction": float(np.mean(fractions)),
        "eval_overhead_s": 0.018,  # benchmarks/eval_overhead.py: job bookkeeping, not measured here
        "compile_s": float(np.median(compiles)),
        "worker_start_s": start_s,
        "collect_episode_s": collect,
        "scripted_rows": scripted,
        "mappo_steps_per_s": mappo,
        "mappo_eval_chunk_s": mappo_eval,
        "wall_time_s": round(time.time() - start, 1),
    }
