"""A reference learner's update next to marlbench's, on the same batch shapes, interleaved.

    git clone https://github.com/LAMDA-RL/ODIS            # fetched by you, never vendored
    python benchmarks/reference_side_by_side.py --repo ODIS --alg bc-t --maps 3m
    python benchmarks/reference_side_by_side.py --repo Stairs-Former --alg stairs ...
    python benchmarks/reference_side_by_side.py --repo HiSSD --alg hissd ...

The references are pymarl programs: this script builds their config the way their ``main.py``
does (``default.yaml`` ← ``algs/<alg>.yaml`` ← ``envs/sc2_offline.yaml`` ← overrides), their
controller and learner from their registries for one task, and an ``EpisodeBatch`` holding
the same synthetic full-length batch marlbench trains on. StarCraft II is not needed: the
``smac`` / ``pysc2`` / ``s2clientprotocol`` modules their decomposer imports are stood in for by
stubs, and ``smac``'s map parameters come from marlbench's map table (the same numbers). Each
round times one reference update, one marlbench update and one fused marlbench group of K
(per job); medians over the rounds, one torch thread by default. Prints s/update and ratios.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

import torch
import yaml
from common import machine

from marlbench.calibrate import full_batch
from marlbench.data.dataset import Batch, stack_batches
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS
from marlbench.learners.base import fuse

# reference config name → (marlbench learner, overrides the reference's launch scripts pass)
ALGS = {
    "bc-t": ("bc_t", {}),
    "updet-m": ("updet_m", {}),
    "odis": ("odis", {}),
    "stairs": ("stairs", {}),
    "hissd": ("hissd", {}),
}


class _Stub(types.ModuleType):
    """A module whose every attribute is another stub (enough for import-time references)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Stub(f"{self.__name__}.{name}")
        setattr(self, name, child)
        return child

    def __call__(self, *a, **kw):
        return self


def _smac_map_params(name: str) -> dict:
    from marlbench.envs.maps import PROTOSS

    spec = get_map(name)

    def race(units: tuple[str, ...]) -> str:
        return "P" if any(u in PROTOSS for u in units) else "T"

    return {"n_agents": spec.n_agents, "n_enemies": spec.n_enemies,
            "limit": spec.episode_limit, "a_race": race(spec.ally_units),
            "b_race": race(spec.enemy_units), "unit_type_bits": spec.unit_type_bits,
            "map_type": "MMM" if "medivac" in spec.ally_units else "marines"}


def install_stubs() -> None:
    for name in ("smac", "smac.env", "smac.env.multiagentenv", "smac.env.starcraft2",
                 "smac.env.starcraft2.maps", "pysc2", "pysc2.lib", "pysc2.lib.protocol",
                 "pysc2.maps", "pysc2.run_configs", "s2clientprotocol",
                 "s2clientprotocol.common_pb2", "s2clientprotocol.sc2api_pb2",
                 "s2clientprotocol.raw_pb2", "s2clientprotocol.debug_pb2", "wandb"):
        sys.modules.setdefault(name, _Stub(name))
    sys.modules["smac.env.multiagentenv"].MultiAgentEnv = type("MultiAgentEnv", (), {})
    sys.modules["smac.env.starcraft2.maps"].get_map_params = _smac_map_params


def _merge(d: dict, u: dict) -> dict:
    for k, v in u.items():
        d[k] = _merge(dict(d.get(k) or {}), v) if isinstance(v, dict) else v
    return d


def reference_learner(repo: Path, alg: str, tasks: list[str], batch_size: int):
    """The reference's learner over ``tasks``, and a function turning a marlbench batch of a
    task into the reference's ``EpisodeBatch``."""
    src = repo / "src"
    sys.path.insert(0, str(src))
    install_stubs()
    cfg: dict = {}
    for part in ("default.yaml", f"algs/{alg}.yaml", "envs/sc2_offline.yaml"):
        path = src / "config" / part
        if path.exists():
            _merge(cfg, yaml.safe_load(path.read_text()) or {})
    cfg.update(use_cuda=False, device="cpu", buffer_cpu_only=True, batch_size=batch_size,
               train_tasks=tasks, test_tasks=tasks, n_tasks=len(tasks))
    cfg.setdefault("env_args", {})
    main_args = types.SimpleNamespace(**copy.deepcopy(cfg))
    task2args = {}
    for task in tasks:  # as the reference's init_tasks: the task's env info on its args
        lay = get_map(task).layout
        args = types.SimpleNamespace(**copy.deepcopy(cfg))
        args.env_args["map_name"] = task
        args.n_agents, args.n_actions = lay.n_agents, lay.n_actions
        args.state_shape, args.obs_shape = lay.state_dim, lay.obs_dim
        args.episode_limit = lay.episode_limit
        args.unit_dim = 4 + lay.shield + lay.unit_type_bits
        task2args[task] = args
    from components.episode_buffer import EpisodeBatch  # the reference's own modules
    from components.transforms import OneHot
    from controllers.multi_task import REGISTRY as mac_registry
    from learners.multi_task import REGISTRY as learner_registry

    def scheme_of(task: str):
        lay = get_map(task).layout
        scheme = {
            "state": {"vshape": lay.state_dim},
            "obs": {"vshape": lay.obs_dim, "group": "agents"},
            "actions": {"vshape": (1,), "group": "agents", "dtype": torch.long},
            "avail_actions": {"vshape": (lay.n_actions,), "group": "agents",
                              "dtype": torch.int},
            "reward": {"vshape": (1,)},
            "terminated": {"vshape": (1,), "dtype": torch.uint8},
        }
        preprocess = {"actions": ("actions_onehot", [OneHot(out_dim=lay.n_actions)])}
        return scheme, {"agents": lay.n_agents}, preprocess

    task2scheme = {}
    for task in tasks:
        scheme, groups, preprocess = scheme_of(task)
        task2scheme[task] = EpisodeBatch(scheme, groups, 1, get_map(task).episode_limit + 1,
                                         preprocess=preprocess, device="cpu").scheme
    mac = mac_registry[main_args.mac](train_tasks=tasks, task2scheme=task2scheme,
                                      task2args=task2args, main_args=main_args)
    logger = types.SimpleNamespace(log_stat=lambda *a, **k: None,
                                   console_logger=types.SimpleNamespace(info=print))
    learner = learner_registry[main_args.learner](mac, logger, main_args)

    def episode_batch(b: Batch, task: str):
        t = b.obs.shape[1]
        scheme, groups, preprocess = scheme_of(task)
        ep = EpisodeBatch(scheme, groups, b.obs.shape[0], t, preprocess=preprocess,
                          device="cpu")
        ep.update({"obs": b.obs, "state": b.state, "actions": b.actions[..., None],
                   "avail_actions": b.avail, "reward": b.reward[..., None],
                   "terminated": b.terminated[..., None].to(torch.uint8)}, ts=slice(0, t))
        return ep

    return learner, episode_batch


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True, help="a checkout of the reference")
    ap.add_argument("--alg", required=True, choices=sorted(ALGS))
    ap.add_argument("--maps", nargs="+", default=["3m"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--fused", nargs="*", type=int, default=[5], help="group sizes K")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # the references' deprecation warnings, every update
    torch.set_num_threads(args.threads)
    name, _ = ALGS[args.alg]
    print(machine(), f"| torch threads {torch.get_num_threads()} | reference {args.repo}")
    print(f"{'alg':>8} {'map':>5} {'T':>4} {'reference':>10} {'marlbench':>10} "  # s/update
          + " ".join(f"{'K=' + str(k) + '/job':>9}" for k in args.fused) + "  ratios")
    # HiSSD's InfoNCE needs another task's batch: its maps form one task set, timed per
    # task batch over rounds of every map; the others time each map alone
    sets = [args.maps] if args.alg == "hissd" else [[m] for m in args.maps]
    for tasks in sets:
        time_set(args, name, tasks)


def time_set(args: argparse.Namespace, name: str, tasks: list[str]) -> None:
    """One row: the reference and marlbench interleaved on ``tasks``."""
    batches = {t: full_batch(t, args.batch, torch.device("cpu")) for t in tasks}
    ref, to_episodes = reference_learner(args.repo, args.alg, tasks, args.batch)
    episodes = {t: to_episodes(b, t) for t, b in batches.items()}
    cls = LEARNERS[name]
    layouts = {t: get_map(t).layout for t in tasks}
    ours = cls(layouts, cls.Config(), torch.device("cpu"))
    groups = {k: fuse(cls(layouts, cls.Config(), torch.device("cpu")), k)
              for k in args.fused}
    stacked = {k: {t: stack_batches([b] * k) for t, b in batches.items()}
               for k in args.fused}
    t_env = [0]

    def ref_round():
        for t in tasks:
            t_env[0] += 1
            ref.train(episodes[t], t_env[0], t_env[0], t)

    def our_round(learner, data):
        if learner.config.update_discipline == "per_round":
            learner.update_round(data)
        else:
            for t in tasks:
                learner.update(data[t], t)

    rounds = {"ref": ref_round, "ours": lambda: our_round(ours, batches),
              **{k: (lambda k=k: our_round(groups[k], stacked[k])) for k in args.fused}}
    for fn in rounds.values():  # warm-up (HiSSD: every task's batch seen once)
        fn()
    times: dict = {k: [] for k in rounds}
    for _ in range(args.rounds):  # interleaved
        for k, fn in rounds.items():
            per = len(tasks) * (k if isinstance(k, int) else 1)
            times[k].append(timed(fn) / per)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [med["ref"] / med["ours"]] + [med["ref"] / med[k] for k in args.fused]
    t_rows = max(b.obs.shape[1] for b in batches.values())
    print(f"{args.alg:>8} {'+'.join(tasks):>5} {t_rows:>4} {med['ref']:>10.3f} "
          f"{med['ours']:>10.3f} " + " ".join(f"{med[k]:>9.3f}" for k in args.fused)
          + "  " + " ".join(f"{r:.2f}x" for r in ratios), flush=True)


if __name__ == "__main__":
    main()
