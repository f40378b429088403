"""``marlbench env``: what an environment looks like, and how fast it runs."""

from __future__ import annotations

import json
import time

import numpy as np
import typer
from rich.table import Table

from marlbench.cli.common import console, user_errors
from marlbench.errors import UserError

env_app = typer.Typer(help="Inspect and benchmark environments.", no_args_is_help=True)

SMAX_NOTE = (
    "Embedded SMAX backend: unit statistics, ranges and movement come from SMAX (marine range 5, "
    "not 6); SMAX keeps one health pool per unit, split back into hit points and shields "
    "(shields do not regenerate); the enemy is SMAX's heuristic, not StarCraft II's difficulty-7 "
    "AI. Win rates are not comparable to StarCraft II numbers."
)


SC2_NOTE = (
    "Real StarCraft II through oxwhirl SMAC, configured as the ODIS family's sc2_offline.yaml "
    "(difficulty 7, step_mul 8); run `marlbench doctor` to check the installation."
)
CN_NOTE = (
    "Grid cooperative navigation with the semantics of ODIS's grid_mpe (landmarks play the "
    "enemy role in the entity layout; 5 actions, none of them attacks)."
)


def _spec(map_name: str):
    from marlbench.envs.maps import get_map

    try:
        return get_map(map_name)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


@env_app.command("info")
@user_errors
def info(
    map_name: str = typer.Argument(..., help="SMAC map name, e.g. 3m, 5m_vs_6m, 2s3z"),
    backend: str = typer.Option(None, "--backend", help="smax | grid (default: the task's)"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Agents, enemies, observation / state widths, actions, entity layout and episode limit.

    Example: marlbench env info 3m --json
    """
    from marlbench.envs import BACKENDS, default_backend, task_backends

    spec = _spec(map_name)
    backend = backend or default_backend(spec.name)
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend not in task_backends(spec.name):
        raise UserError(f"{spec.name} runs on backend(s) {', '.join(task_backends(spec.name))}, "
                        f"not {backend!r}")
    lay = spec.layout
    data = {
        "map": spec.name,
        "backend": backend,
        "n_agents": spec.n_agents,
        "n_enemies": spec.n_enemies,
        "ally_units": (f"drawn each episode from {', '.join(spec.sampled_from)}"
                       if spec.sampled_from else list(spec.ally_units)),
        "enemy_units": ("the allies' types, extra enemies drawn likewise"
                        if spec.sampled_from else list(spec.enemy_units)),
        "defined_by": spec.defined_by,
        "obs_dim": lay.obs_dim,
        "state_dim": lay.state_dim,
        "n_actions": lay.n_actions,
        "episode_limit": spec.episode_limit,
        "unit_type_bits": spec.unit_type_bits,
        "entity_layout": {
            "move": lay.move_feats,
            "enemy": [lay.n_enemies, lay.enemy_feats],
            "ally": [lay.n_agents - 1, lay.ally_feats],
            "own": lay.own_feats,
        },
        "notes": {"smax": SMAX_NOTE, "grid": CN_NOTE, "sc2": SC2_NOTE}[backend],
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    t = Table(title=f"{spec.name} on {backend}", show_header=False)
    for key, value in data.items():
        t.add_row(key, str(value))
    console.print(t)


@env_app.command("bench")
@user_errors
def bench(
    map_name: str = typer.Argument(..., help="SMAC map name"),
    episodes: int = typer.Option(256, "--episodes", "-n", min=1, max=65_536,
                                 help="Parallel episodes"),
    policy: str = typer.Option("random", "--policy", help="random | heuristic"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1),
) -> None:
    """Play one batch of episodes and print env-steps/s and win rate.

    The heuristic is marlbench's focus-fire script (no exploration).
    Example: marlbench env bench 3m --episodes 512 --policy heuristic
    """
    from marlbench.data.behaviour import FocusFirePolicy
    from marlbench.envs import make_env
    from marlbench.rollout import rollout

    if policy not in ("random", "heuristic"):
        raise UserError(f"unknown policy {policy!r}; choose one of: random, heuristic")
    if policy == "heuristic" and map_name.startswith("cn-"):
        raise UserError("the heuristic is a StarCraft focus-fire script; use --policy random")
    if episodes <= 0:
        raise UserError("--episodes must be positive")
    spec = _spec(map_name)
    t0 = time.perf_counter()
    env = make_env(spec.name, episodes)
    rng = np.random.default_rng(seed)
    script = FocusFirePolicy(env.layout, 0.0, rng)

    def act(r):
        if policy == "heuristic":
            return script.act(r.obs, r.avail_actions)
        return (rng.random(r.avail_actions.shape) * r.avail_actions).argmax(-1)

    rollout(env, act, seed)  # warm-up: compilation (cached on disk for later processes)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = rollout(env, act, seed + 1)
    dt = time.perf_counter() - t0
    steps = int(res.lengths.sum())
    console.print(
        f"{spec.name}: {episodes} episodes, {policy} policy: win rate {res.won.mean():.3f}, "
        f"mean return {res.returns.mean():.2f}, mean length {res.lengths.mean():.1f}; "
        f"{steps / dt:,.0f} env-steps/s ({steps} steps in {dt:.2f} s; warm-up roll-out "
        f"with start-up and compilation {warm:.1f} s)"
    )
