"""``marlbench env``: what an environment looks like, and how fast it runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from marlbench.cli.common import console, user_errors
from marlbench.errors import UserError

env_app = typer.Typer(help="Inspect and benchmark environments.", no_args_is_help=True)

SMAX_NOTES = {
    "smax": (
        "Embedded SMAX backend, units smax: SMAX's own unit table (marine damage 9, range 5 "
        "centre to centre), 0.5 s of game per step, no armour; one health pool per unit, split "
        "back into hit points and shields (no regeneration); SMAX's heuristic enemy. Measured "
        "against real StarCraft II in the README (`marlbench env fidelity`); win rates are not "
        "comparable to StarCraft II numbers."),
    "sc2": (
        "Embedded SMAX backend, units sc2: StarCraft II's unit data and combat rules as SMAC "
        "meets them (8 game loops per step at 22.4 loops/s, edge-to-edge ranges, armour and "
        "bonuses, SMAC's shoot range 6), the recorded 3m start, an attack-move enemy. No shield "
        "regeneration, acceleration or pathing. Measured against real StarCraft II in the "
        "README (`marlbench env fidelity`)."),
}
UNITS_HELP = "Embedded backend's unit profile: smax (SMAX's own) | sc2 (StarCraft II's)"


SC2_NOTE = (
    "Real StarCraft II through oxwhirl SMAC, configured as the ODIS family's sc2_offline.yaml "
    "(difficulty 7, step_mul 8); run `marlbench doctor` to check the installation."
)
RWARE_NOTE = (
    "The multi-robot warehouse of the rware 2.x package (its own dynamics, easy request queue, "
    "500 steps reported as a time-out); observations built for the batch, equal to rware's; "
    "state in the AlberDICE layout; team reward rware (deliveries summed over agents) or "
    "alberdice (agent 0's shaped reward, the published offline numbers' contract)."
)
CN_NOTE = (
    "Grid cooperative navigation with the semantics of ODIS's grid_mpe (landmarks play the "
    "enemy role in the entity layout; 5 actions, none of them attacks)."
)


def _units(units: str) -> str:
    from marlbench.envs.units import UNIT_PROFILES

    if units not in UNIT_PROFILES:
        raise UserError(f"--units: unknown unit profile {units!r}; choose one of: "
                        f"{', '.join(UNIT_PROFILES)}")
    return units


def _spec(map_name: str):
    from marlbench.envs.maps import get_map

    try:
        return get_map(map_name)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


@env_app.command("info")
@user_errors
def info(
    map_name: str = typer.Argument(..., help="Task: a SMAC map (3m, 5m_vs_6m, 2s3z), cn-N "
                                   "or rware-{tiny,small}-{2,4,6}ag"),
    backend: str = typer.Option(None, "--backend",
                                help="smax | sc2 | grid | rware (default: the task's)"),
    units: str = typer.Option("smax", "--units", help=UNITS_HELP),
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
    _units(units)
    lay = spec.layout
    stats = {}
    if backend == "smax":
        from marlbench.envs.units import get_profile

        prof = get_profile(units)
        for u in dict.fromkeys(spec.ally_units + spec.enemy_units + spec.sampled_from):
            if u in prof.units:
                s = prof.units[u]
                stats[u] = {"hit_points": s.hit_points, "shields": s.shields,
                            "armour": s.armour, "damage": f"{s.damage:g} x {s.hits}",
                            "cooldown_s": s.cooldown, "range": s.weapon_range,
                            "speed": s.speed, "radius": s.radius}
    data = {
        "map": spec.name,
        "backend": backend,
        **({"units": units} if backend == "smax" else {}),
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
        **({"entity_layout": {
            "move": lay.move_feats,
            "enemy": [lay.n_enemies, lay.enemy_feats],
            "ally": [lay.n_agents - 1, lay.ally_feats],
            "own": lay.own_feats,
        }} if lay.kind == "entity" else {"layout": "flat: one vector per agent"}),
        **({"unit_stats": stats} if stats else {}),
        "notes": {"smax": SMAX_NOTES[units], "grid": CN_NOTE, "sc2": SC2_NOTE,
                  "rware": RWARE_NOTE}[backend],
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
    map_name: str = typer.Argument(..., help="Task: a SMAC map, cn-N or rware-*"),
    episodes: int = typer.Option(256, "--episodes", "-n", min=1, max=65_536,
                                 help="Parallel episodes"),
    policy: str = typer.Option("random", "--policy", help="random | heuristic"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1),
    units: str = typer.Option("smax", "--units", help=UNITS_HELP),
    reward: str = typer.Option("rware", "--reward",
                               help="Warehouse team reward: rware | alberdice (rware-* only)"),
) -> None:
    """Play one batch of episodes and print env-steps/s and win rate.

    The heuristic is marlbench's focus-fire script (no exploration) on StarCraft maps and the
    scripted shelf-delivery planner in the warehouse.
    Example: marlbench env bench 3m --episodes 512 --policy heuristic
    """
    from marlbench.data.behaviour import FocusFirePolicy
    from marlbench.envs import make_env
    from marlbench.rollout import rollout

    if policy not in ("random", "heuristic"):
        raise UserError(f"unknown policy {policy!r}; choose one of: random, heuristic")
    from marlbench.envs import default_backend, is_starcraft
    from marlbench.envs.rware import REWARDS

    if episodes <= 0:
        raise UserError("--episodes must be positive")
    spec = _spec(map_name)
    if policy == "heuristic" and not is_starcraft(spec.name) and \
            default_backend(spec.name) != "rware":
        raise UserError("the heuristic is a StarCraft focus-fire script or the warehouse's "
                        "shelf-delivery planner; use --policy random")
    _units(units)
    if reward not in REWARDS:
        raise UserError(f"--reward: unknown warehouse reward {reward!r}; choose one of: "
                        f"{', '.join(REWARDS)}")
    rware = default_backend(spec.name) == "rware"
    t0 = time.perf_counter()
    env = make_env(spec.name, episodes, units=units if is_starcraft(spec.name) else None,
                   reward=reward if rware else None)
    rng = np.random.default_rng(seed)
    if policy != "heuristic":
        script = None
    elif rware:
        from marlbench.data.rware_planner import ShelfDeliveryPlanner

        script = ShelfDeliveryPlanner(env, seed=seed)
    else:
        script = FocusFirePolicy(env.layout, 0.0, rng)

    def act(r):
        if policy == "heuristic":
            return script.act(r) if rware else script.act(r.obs, r.avail_actions)
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


def _recorded(map_name: str, data: Path):
    """The map and the recorded episodes of ``data``, checked against the map's layout."""
    from marlbench.data.format import DatasetError
    from marlbench.envs import is_starcraft
    from marlbench.fidelity import load_recording

    spec = _spec(map_name)
    if not is_starcraft(spec.name):
        raise UserError(f"{spec.name} is not a StarCraft map: the fidelity yardstick is for "
                        "StarCraft maps recorded in StarCraft II")
    try:
        return spec, load_recording(data, spec)
    except DatasetError as exc:
        raise UserError(f"--data: {exc}") from None


@env_app.command("fidelity")
@user_errors
def fidelity(
    map_name: str = typer.Argument(..., help="SMAC map the recording was made on, e.g. 3m"),
    data: Path = typer.Option(..., "--data", help="Recorded StarCraft II episodes: an ODIS "
                              "part file (.h5) or a folder of part_*.h5"),
    units: str = typer.Option("smax,sc2", "--units",
                              help="Unit profiles to measure, comma-separated"),
    updates: int = typer.Option(1000, "--updates", min=0, max=1_000_000,
                                help="BC-t task batches for the transfer test (0: skip it)"),
    episodes: int = typer.Option(256, "--episodes", min=1, max=65_536,
                                 help="Roll-outs of the cloned policy per profile"),
    fit: bool = typer.Option(False, "--fit", help="Also fit the sc2 profile's game-time "
                             "scale to the one-step position error"),
    seed: int = typer.Option(1, "--seed", min=0, max=2**31 - 1),
    out: Path = typer.Option(Path("results/fidelity"), "--out",
                             help="Folder for <map>.json and <map>.png"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Measure the embedded simulator against real StarCraft II episodes.

    One-step test: every recorded state is put into the simulator, the recorded joint action
    applied, and the next state compared feature by feature (positions in map units, health
    and shields as fractions, the agents' cooldowns in game loops, deaths, reward), next to
    each profile's seed spread (its error against itself: what chance alone gives) and
    score (error - spread / 2, the energy score: fair to a simulator that draws). Episode
    test: a BC-t policy cloned from the recording plays the embedded map with each profile,
    next to the recording's own win rate and return.

    Example: marlbench env fidelity 3m --data dataset/3m/medium/qmix_2022-04-03_12-49-45
    """
    import torch
    from rich.progress import Progress

    from marlbench import fidelity as fid
    from marlbench.envs.units import GAME_LOOPS_PER_SECOND, get_profile
    from marlbench.fileio import write_json

    names = [u.strip() for u in units.split(",") if u.strip()]
    if not names:
        raise UserError("--units: name at least one unit profile")
    for u in names:
        _units(u)
    spec, eps = _recorded(map_name, data)
    out.mkdir(parents=True, exist_ok=True)
    try:
        size = fid.playable_size(eps, spec)
    except ValueError as exc:
        raise UserError(f"--data {data}: {exc}") from None
    dec = fid.decode(eps, spec, size)
    e, _ = fid.transitions(eps)
    report: dict = {"map": spec.name, "data": str(data), "episodes": eps.n_episodes,
                    "transitions": int(e.size), "playable_size": size,
                    "one_step": {"stand still": fid.stand_still(spec, eps, dec)},
                    "episode": {"recorded": fid.recorded_episodes(spec, eps, dec)}}
    profiles = {u: get_profile(u) for u in names}
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task("one-step", total=len(profiles))
        report["seed_spread"] = {}
        for u, prof in profiles.items():
            report["one_step"][u] = fid.one_step(spec, eps, dec, prof, seed)
            report["seed_spread"][u] = fid.seed_spread(spec, eps, dec, prof, (seed, seed + 1))
            report.setdefault("score", {})[u] = fid.proper_score(report["one_step"][u],
                                                                 report["seed_spread"][u])
            bar.advance(job)
        if fit:
            scales = [0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2]
            best, errs = fid.fit_time_scale(spec, eps, dec, scales)
            report["fit"] = {"time_scale": best, "position_error_by_scale": errs,
                             "time_per_loop": best / GAME_LOOPS_PER_SECOND}
        if updates:
            torch.set_num_threads(1)
            job = bar.add_task("BC-t on the recording", total=updates)
            policy = fid.clone_bc_t(spec, eps, updates, seed,
                                    progress=lambda i, n, _d: bar.update(job, completed=i))
            report["transfer_updates"] = updates
            for u, prof in profiles.items():
                report["episode"][f"BC-t on {u}"] = fid.transfer(policy, spec, prof, episodes,
                                                                 seed)
    write_json(out / f"{spec.name}.json", report)
    fid.plot(report, out / f"{spec.name}.png")
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_fidelity(report, list(profiles))
    console.print(f"wrote {out / (spec.name + '.json')} and {out / (spec.name + '.png')}")


def _print_fidelity(report: dict, names: list[str]) -> None:
    from marlbench.fidelity import FEATURES, UNITS

    rows = report["one_step"]
    t = Table(title=f"{report['map']}: one-step error against recorded StarCraft II "
                    f"({report['transitions']} transitions)")
    t.add_column("feature")
    t.add_column("unit")
    spread = report.get("seed_spread", {})
    for col in rows:
        t.add_column(col, justify="right")
    score = report.get("score", {})
    for col in spread:
        t.add_column(f"{col}: chance", justify="right")
    for col in score:
        t.add_column(f"{col}: score", justify="right")
    for f in FEATURES:
        if all(f in r for r in rows.values()):
            t.add_row(f.replace("_", " "), UNITS[f], *(f"{r[f]:.3f}" for r in rows.values()),
                      *(f"{r[f]:.3f}" for r in spread.values()),
                      *(f"{r[f]:.3f}" for r in score.values()))
    console.print(t)
    if spread:
        console.print("chance: the profile against itself with another seed (its enemy's "
                      "random targets and weapon jitter); the error a simulator drawing as "
                      "StarCraft II does would still have. score: error - chance / 2, the "
                      "energy score (CRPS), which equals the error for a deterministic "
                      "simulator; lower is better")
    ep = Table(title="episodes: the recording, and BC-t cloned from it on the embedded map")
    for col in ("", "win rate", "mean return", "mean length", "episodes"):
        ep.add_column(col, justify="right" if col else "left")
    for name, r in report["episode"].items():
        ep.add_row(name, f"{100 * r['win_rate']:.1f} %", f"{r['mean_return']:.2f}",
                   f"{r['mean_length']:.1f}", str(r["episodes"]))
    console.print(ep)
    if "fit" in report:
        console.print(f"fitted game-time scale: {report['fit']['time_scale']} "
                      f"(position error by scale: {report['fit']['position_error_by_scale']})")
