"""How closely the embedded simulator follows real StarCraft II, measured on recorded episodes.

One-step test: put the simulator into each recorded state (every unit's position, health,
shield and the agents' weapon cooldowns, decoded from SMAC's global state), apply the
recorded joint action, and compare the simulated next state with the recorded one, feature
by feature. What SMAC's state does not record (enemy cooldowns, the enemy's targets) is the
simulator's own, carried along the recorded episode from its start and corrected by the
hits the recording shows (:func:`_enemy_cooldowns`). A stand-still row (the next state
predicted as the current one) gives the scale.

Episode test: the recorded episodes' length, win rate and return next to roll-outs, on the
embedded map, of a BC-t policy cloned from the same episodes (the transfer figure).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from marlbench.data.format import EpisodeArrays
from marlbench.envs.maps import MapSpec
from marlbench.envs.units import (
    GAME_LOOPS_PER_SECOND,
    SC2_PROFILE,
    SMAC_MAX_COOLDOWN_LOOPS,
    SMAC_SIGHT_RANGE,
    UnitProfile,
)

FEATURES = ("ally_position", "enemy_position", "ally_health", "enemy_health", "ally_shield",
            "enemy_shield", "ally_cooldown", "deaths", "reward")
UNITS = {"ally_position": "map units", "enemy_position": "map units",
         "ally_health": "fraction", "enemy_health": "fraction", "ally_shield": "fraction",
         "enemy_shield": "fraction", "ally_cooldown": "game loops",
         "deaths": "fraction of units", "reward": "SMAC reward"}


@dataclasses.dataclass
class Decoded:
    """Unit states decoded from SMAC global states: [E, T, N, ...] with N = allies + enemies.
    Health and shield are fractions; cooldowns in game loops (allies only); positions in map
    units relative to the map centre."""

    positions: np.ndarray
    health: np.ndarray
    shield: np.ndarray
    cooldown_loops: np.ndarray
    alive: np.ndarray


def load_recording(path: Path, spec: MapSpec) -> EpisodeArrays:
    """The recorded episodes of ``path`` (an ODIS part file, or a folder of part_*.h5), each
    part checked against ``spec``'s layout."""
    from marlbench.data.dataset import check_layout
    from marlbench.data.format import DatasetError, open_layout, read_part

    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    parts = sorted(path.glob("part_*.h5")) if path.is_dir() else [path]
    if not parts:
        raise DatasetError(f"{path} holds no part_*.h5 files")
    for p in parts:
        check_layout(p, open_layout(p).shapes, spec.layout, spec.name)
    eps = EpisodeArrays.concat([read_part(p) for p in parts])
    if int((eps.lengths > 1).sum()) == 0:
        raise DatasetError(f"{path} holds no episode with a transition")
    return eps


def _columns(spec: MapSpec) -> tuple[list[int], list[int]]:
    """Offsets of the ally and enemy rows in SMAC's state."""
    lay = spec.layout
    ally_w, enemy_w = lay.ally_state_feats, lay.enemy_state_feats
    allies = [i * ally_w for i in range(spec.n_agents)]
    base = spec.n_agents * ally_w
    return allies, [base + j * enemy_w for j in range(spec.n_enemies)]


def playable_size(eps: EpisodeArrays, spec: MapSpec) -> float:
    """SMAC divides state positions by the map's playable size and observation offsets by
    the sight range 9; the ratio of the two over the recorded ally pairs recovers it."""
    lay = spec.layout
    allies, _ = _columns(spec)
    ally_block = lay.slices()["ally"]
    ratios = []
    for e in range(min(eps.n_episodes, 200)):
        for t in range(int(eps.lengths[e])):
            s, o = eps.state[e, t], eps.obs[e, t, 0]
            for k in range(1, spec.n_agents):
                f = o[ally_block][(k - 1) * lay.ally_feats:][:4]
                for axis in (0, 1):  # x, then y
                    d_state = s[allies[k] + 2 + axis] - s[allies[0] + 2 + axis]
                    if f[0] > 0 and abs(d_state) > 0.02:
                        ratios.append(f[2 + axis] * SMAC_SIGHT_RANGE / d_state)
    if not ratios:
        raise ValueError("no visible ally pairs in the recorded observations; cannot recover "
                         "the map's playable size")
    return float(np.median(ratios))


def decode(eps: EpisodeArrays, spec: MapSpec, size: float) -> Decoded:
    s = eps.state
    lay = spec.layout
    allies, enemies = _columns(spec)
    pos, health, shield, cd = [], [], [], []
    for c in allies:
        health.append(s[..., c])
        cd.append(s[..., c + 1] * SMAC_MAX_COOLDOWN_LOOPS[spec.ally_units[len(cd)]])
        pos.append(s[..., c + 2:c + 4] * size)
        shield.append(s[..., c + 4] if lay.shield_ally else np.zeros_like(s[..., c]))
    for c in enemies:
        health.append(s[..., c])
        cd.append(np.zeros_like(s[..., c]))
        pos.append(s[..., c + 1:c + 3] * size)
        shield.append(s[..., c + 3] if lay.shield_enemy else np.zeros_like(s[..., c]))
    health = np.stack(health, -1)
    return Decoded(np.stack(pos, -2), health, np.stack(shield, -1), np.stack(cd, -1),
                   health > 0)


def transitions(eps: EpisodeArrays) -> tuple[np.ndarray, np.ndarray]:
    """(episode, step) of every recorded transition t -> t + 1 inside an episode."""
    e, t = [], []
    for i, n in enumerate(eps.lengths):
        for k in range(int(n) - 1):
            e.append(i)
            t.append(k)
    return np.asarray(e), np.asarray(t)


def _errors(spec: MapSpec, dec: Decoded, e, t, pos1, health1, shield1, cd1, alive1,
            reward1, reward_rec) -> dict[str, float]:
    """Mean absolute error of predicted next unit states against the recorded ones."""
    n = spec.n_agents
    a0, a1 = dec.alive[e, t], dec.alive[e, t + 1]
    both = a0 & a1
    out = {}
    dist = np.linalg.norm(pos1 - dec.positions[e, t + 1], axis=-1)
    out["ally_position"] = float(dist[:, :n][both[:, :n]].mean())
    out["enemy_position"] = float(dist[:, n:][both[:, n:]].mean())
    dh = np.abs(health1 - dec.health[e, t + 1])
    out["ally_health"] = float(dh[:, :n][a0[:, :n]].mean())
    out["enemy_health"] = float(dh[:, n:][a0[:, n:]].mean())
    ds = np.abs(shield1 - dec.shield[e, t + 1])
    if spec.shield_ally:
        out["ally_shield"] = float(ds[:, :n][a0[:, :n]].mean())
    if spec.shield_enemy:
        out["enemy_shield"] = float(ds[:, n:][a0[:, n:]].mean())
    dc = np.abs(cd1 - dec.cooldown_loops[e, t + 1])[:, :n]
    out["ally_cooldown"] = float(dc[both[:, :n]].mean())
    out["deaths"] = float((alive1 != a1)[a0].mean())
    out["reward"] = float(np.abs(reward1 - reward_rec).mean())
    return out


def stand_still(spec: MapSpec, eps: EpisodeArrays, dec: Decoded) -> dict[str, float]:
    """The errors of predicting that nothing changes (and no reward)."""
    e, t = transitions(eps)
    return _errors(spec, dec, e, t, dec.positions[e, t], dec.health[e, t], dec.shield[e, t],
                   dec.cooldown_loops[e, t], dec.alive[e, t], 0.0, eps.reward[e, t])


def _enemy_cooldowns(spec: MapSpec, profile: UnitProfile, dec: Decoded, idx: np.ndarray,
                     t: int, simulated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Enemy cooldowns at ``t`` estimated from the recording: each hit an agent took during the
    last step is put on the closest living enemy not yet credited, whose weapon then fired
    half a step ago (its cooldown less half a step) at that agent, which becomes its target;
    other enemies keep the simulator's cooldown and target (``target`` -1)."""
    n = spec.n_agents
    out = simulated.copy()
    target = np.full(out.shape, -1, dtype=np.int32)
    enemy = [profile.units[u] for u in spec.enemy_units]
    per_hit = np.array([max(u.damage * u.hits, 1e-6) for u in enemy])
    half_step = profile.loops_per_step * profile.time_per_loop / 2
    hp = np.array([profile.units[u].hit_points for u in spec.ally_units])
    lost = (dec.health[idx, t - 1, :n] - dec.health[idx, t, :n]) * hp  # [B, n] hit points
    pos = dec.positions[idx, t - 1]
    alive_e = dec.alive[idx, t - 1, n:]
    step_s = 2 * half_step
    cd_max = np.array([u.cooldown for u in enemy])
    # an enemy with an agent in reach that hit nobody did not fire for a whole step: its
    # weapon is still cooling, with at most its cooldown less a step to go
    reach = np.array([u.weapon_range + u.radius for u in enemy])
    radius_a = np.array([profile.units[u].radius for u in spec.ally_units])
    gap = np.linalg.norm(pos[:, n:, None] - pos[:, None, :n], axis=-1) - radius_a
    engaged = alive_e & ((gap <= reach[:, None]) & dec.alive[idx, t - 1, None, :n]).any(-1)
    bound = np.maximum(cd_max - step_s, 0.0)
    cooling = np.where(out > 0, np.minimum(out, bound), bound / 2)
    out = np.where(engaged, cooling, out)
    for b in np.flatnonzero((lost > 1e-3).any(-1)):
        free = alive_e[b].copy()
        for i in np.flatnonzero(lost[b] > 1e-3):
            dist = np.linalg.norm(pos[b, n:] - pos[b, i], axis=-1)
            hits = max(1, int(round(lost[b, i] / per_hit[free].mean()))) if free.any() else 0
            for _ in range(hits):
                if not free.any():
                    break
                j = int(np.argmin(np.where(free, dist, np.inf)))
                free[j] = False
                out[b, j] = enemy[j].cooldown - half_step
                target[b, j] = i
    return out, target


def _simulate(spec: MapSpec, eps: EpisodeArrays, dec: Decoded, profile: UnitProfile,
              seed: int, batch: int, track_enemy: bool) -> dict[str, np.ndarray]:
    """The simulator's next state after every recorded transition (see :func:`one_step`):
    arrays [E, T, ...] whose step t + 1 holds the prediction from recorded step t."""
    from marlbench.envs.smax import MAP_SIZE, SmaxEnv

    n = spec.n_agents
    units = list(spec.ally_units) + list(spec.enemy_units)
    hp = np.array([profile.units[u].hit_points for u in units], dtype=np.float32)
    sh = np.array([profile.units[u].shields for u in units], dtype=np.float32)
    smac_cd = np.array([SMAC_MAX_COOLDOWN_LOOPS[u] for u in units], dtype=np.float32)
    batch = min(batch, eps.n_episodes)
    env = SmaxEnv(spec, batch, units=profile)
    shape = eps.state.shape[:2]
    pred = {"pos": np.zeros(shape + (len(units), 2), np.float32),
            "health": np.zeros(shape + (len(units),), np.float32),
            "alive": np.zeros(shape + (len(units),), bool),
            "reward": np.zeros(shape, np.float32)}
    pred["shield"] = np.zeros_like(pred["health"])
    pred["cd"] = np.zeros_like(pred["health"])
    for start in range(0, eps.n_episodes, batch):
        idx = np.arange(start, start + batch) % eps.n_episodes  # the last chunk wraps round
        env.reset(seed + start)
        for t in range(int(eps.lengths[idx].max()) - 1):
            health, shield = dec.health[idx, t], dec.shield[idx, t]
            pool = np.where(health > 0, health * hp + shield * sh, 0.0)
            cd = dec.cooldown_loops[idx, t, :n] * profile.time_per_loop
            enemy_cd = enemy_target = None
            if t > 0 and track_enemy:
                enemy_cd, enemy_target = _enemy_cooldowns(
                    spec, profile, dec, idx, t, env.unit_state()["cooldown"][:, n:])
            env.inject(dec.positions[idx, t] + MAP_SIZE / 2, pool, cd, np.full(batch, t),
                       enemy_cd, enemy_target)
            res = env.step(eps.actions[idx, t])
            u = env.unit_state()
            pool1 = np.where(u["alive"], u["pool"], 0.0)
            pred["pos"][idx, t + 1] = u["positions"] - MAP_SIZE / 2
            pred["health"][idx, t + 1] = np.minimum(pool1, hp) / hp
            pred["shield"][idx, t + 1] = np.where(sh > 0, np.clip(pool1 - hp, 0, None)
                                                  / np.maximum(sh, 1), 0.0)
            pred["cd"][idx, t + 1] = (np.clip(u["cooldown"], 0, None)
                                      / profile.time_per_loop).clip(0, smac_cd)
            pred["alive"][idx, t + 1] = u["alive"]
            pred["reward"][idx, t] = res.reward
    return pred


def _predicted(pred: dict[str, np.ndarray], e, t):
    return (pred["pos"][e, t + 1], pred["health"][e, t + 1], pred["shield"][e, t + 1],
            pred["cd"][e, t + 1], pred["alive"][e, t + 1], pred["reward"][e, t])


def one_step(spec: MapSpec, eps: EpisodeArrays, dec: Decoded, profile: UnitProfile,
             seed: int = 0, batch: int = 1024, track_enemy: bool = True) -> dict[str, float]:
    """One-step errors of the embedded simulator with ``profile`` on every recorded
    transition. Episodes advance side by side along their recordings: each step the recorded
    state is put in and the recorded joint action applied; what SMAC's state does not record
    (enemy cooldowns, the enemy's targets) is the simulator's own, carried from step to step
    from the episode's start."""
    pred = _simulate(spec, eps, dec, profile, seed, batch, track_enemy)
    e, t = transitions(eps)
    return _errors(spec, dec, e, t, *_predicted(pred, e, t), eps.reward[e, t])


def seed_spread(spec: MapSpec, eps: EpisodeArrays, dec: Decoded, profile: UnitProfile,
                seeds: tuple[int, int] = (0, 1), batch: int = 1024) -> dict[str, float]:
    """The one-step "errors" of the simulator against itself run with another seed: the
    mean absolute difference between two draws of its random choices (the enemy's targets,
    weapon jitter) on the same recorded transitions. If StarCraft II drew from the same
    distributions, this is the error the simulator would have against the recording; the
    part of ``one_step``'s error above it is the model's, the rest is chance."""
    a = _simulate(spec, eps, dec, profile, seeds[0], batch, True)
    b = _simulate(spec, eps, dec, profile, seeds[1], batch, True)
    e, t = transitions(eps)
    k = np.arange(len(e))
    pos_b, health_b, shield_b, cd_b, alive_b, reward_b = _predicted(b, e, t)
    pair = Decoded(  # slot 0: the recorded state at t; slot 1: draw b's next state
        positions=np.stack([dec.positions[e, t], pos_b], 1),
        health=np.stack([dec.health[e, t], health_b], 1),
        shield=np.stack([dec.shield[e, t], shield_b], 1),
        cooldown_loops=np.stack([dec.cooldown_loops[e, t], cd_b], 1),
        alive=np.stack([dec.alive[e, t], alive_b], 1),
    )
    return _errors(spec, pair, k, np.zeros_like(k), *_predicted(a, e, t), reward_b)


def proper_score(error: dict[str, float], spread: dict[str, float]) -> dict[str, float]:
    """The energy score (the CRPS for a scalar feature) of a random simulator, per feature:
    E|X - y| - E|X - X'| / 2 for draws X, X' and the recorded y (Gneiting & Raftery 2007),
    estimated from :func:`one_step`'s error and :func:`seed_spread`. For a deterministic
    simulator it equals the error; unlike the error of one draw, it does not charge a
    simulator that draws as the game does for the game's own chance. Lower is better."""
    return {k: error[k] - spread[k] / 2 for k in error if k in spread}


def recorded_episodes(spec: MapSpec, eps: EpisodeArrays, dec: Decoded) -> dict[str, float]:
    """Length, win rate and return of the recorded episodes (won: every enemy dead and an
    agent alive in the last recorded state)."""
    n = spec.n_agents
    last = np.maximum(eps.lengths.astype(int) - 1, 0)
    alive = dec.alive[np.arange(eps.n_episodes), last]
    won = ~alive[:, n:].any(-1) & alive[:, :n].any(-1)
    return {"win_rate": float(won.mean()), "mean_return": float(eps.returns.mean()),
            "mean_length": float(last.mean()), "episodes": int(eps.n_episodes)}


def clone_bc_t(spec: MapSpec, eps: EpisodeArrays, updates: int, seed: int,
               batch_episodes: int = 32,
               progress: Callable[[int, int, str], None] | None = None):
    """A BC-t policy trained on the recorded episodes (BC-t's defaults, ``updates`` batches
    of ``batch_episodes``, as a suite's training section does)."""
    import torch

    from marlbench.data.dataset import TaskData
    from marlbench.learners import get_learner
    from marlbench.train import order_stream, seed_everything, train

    cls = get_learner("bc_t")
    rng = seed_everything(seed)
    learner = cls({spec.name: spec.layout}, cls.Config(), torch.device("cpu"))
    learner.set_budget(updates)
    train(learner, {spec.name: TaskData(eps)}, updates, batch_episodes, rng, [],
          lambda _s: None, lambda _r: None, progress, order_rng=order_stream(seed))
    return learner.policy()


def transfer(policy, spec: MapSpec, profile: UnitProfile, episodes: int, seed: int) -> dict:
    """The cloned policy's greedy roll-outs on the embedded map with ``profile``."""
    from marlbench.envs.smax import SmaxEnv
    from marlbench.rollout import PolicyActor, rollout

    env = SmaxEnv(spec, episodes, units=profile)
    r = rollout(env, PolicyActor(policy, spec.name, episodes), seed)
    return {"win_rate": float(r.won.mean()), "mean_return": float(r.returns.mean()),
            "mean_length": float(r.lengths.mean()), "episodes": int(episodes)}


def fit_time_scale(spec: MapSpec, eps: EpisodeArrays, dec: Decoded, scales: list[float],
                   base: UnitProfile = SC2_PROFILE) -> tuple[float, dict[float, float]]:
    """The game-time scale (simulator seconds per game second) that minimises the one-step
    position error (allies + enemies) of ``base``; returns it and the error of each scale."""
    errs = {}
    for s in scales:
        prof = dataclasses.replace(base, time_per_loop=s / GAME_LOOPS_PER_SECOND)
        r = one_step(spec, eps, dec, prof)
        errs[s] = r["ally_position"] + r["enemy_position"]
    return min(errs, key=errs.get), errs


def plot(report: dict, path: Path) -> None:
    """Bars of each feature's one-step error, per profile and for standing still; a dashed
    line on a profile's bar marks its seed spread (the error chance alone gives)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["one_step"]
    feats = [f for f in FEATURES if all(f in r for r in rows.values())]
    fig, axes = plt.subplots(1, len(feats), figsize=(2.1 * len(feats), 3.2))
    names = list(rows)
    colours = ["#999999", "#d62728", "#1f77b4", "#2ca02c"][: len(names)]
    spread = report.get("seed_spread", {})
    for ax, f in zip(np.atleast_1d(axes), feats, strict=True):
        ax.bar(range(len(names)), [rows[n][f] for n in names], color=colours)
        for i, n in enumerate(names):  # the chance floor: the simulator against itself
            if n in spread and f in spread[n]:
                ax.hlines(spread[n][f], i - 0.4, i + 0.4, colors="black", linestyles="--",
                          linewidth=1)
        ax.set_title(f.replace("_", " "), fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_ylabel(UNITS[f], fontsize=8)
    fig.suptitle(f"{report['map']}: one-step error against recorded StarCraft II "
                 f"({report['transitions']} transitions)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
