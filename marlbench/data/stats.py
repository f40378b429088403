"""Statistics of a dataset's episodes, including the win rate of files that do not record it.

ODIS files carry no ``battle_won`` key. On SMAC maps a won episode's last transition holds
SMAC's win bonus (``reward_win`` 200, scaled by ``max_reward / 20``); on grid navigation the
episode ends with reward 1 on success. Both are read back from the rewards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from marlbench.data.format import EpisodeArrays

REWARD_WIN = 200.0
REWARD_DEATH_VALUE = 10.0
REWARD_SCALE_RATE = 20.0


def guess_task(path: Path) -> str | None:
    """The task a file belongs to, read from an ODIS-style path (``<map>/<quality>/<run>``)."""
    from marlbench.envs.maps import get_map

    for part in reversed(Path(path).resolve().parts):
        try:
            get_map(part)
            return part
        except KeyError:
            continue
    return None


def win_bonus(task: str) -> float | None:
    """The scaled reward of winning on a SMAC map; None for tasks without units."""
    from marlbench.envs.maps import MAPS
    from marlbench.envs.units import SC2_PROFILE

    spec = MAPS.get(task)
    if spec is None or spec.sampled_from:
        return None
    units = SC2_PROFILE.units  # StarCraft II's hit points and shields (both profiles use them)
    pool = sum(units[u].hit_points + units[u].shields for u in spec.enemy_units)
    max_reward = spec.n_enemies * REWARD_DEATH_VALUE + REWARD_WIN + pool
    return REWARD_WIN / (max_reward / REWARD_SCALE_RATE)


def infer_won(eps: EpisodeArrays, task: str | None) -> np.ndarray | None:
    """Per-episode outcome read from the final transition's reward (None if unknowable)."""
    if task is None:
        return None
    last = np.clip(eps.lengths - 2, 0, None)  # row of the last real transition
    final = eps.reward[np.arange(eps.n_episodes), last]
    if task.startswith("cn-"):
        return final > 0
    bonus = win_bonus(task)
    return None if bonus is None else final >= bonus * 0.999


def length_stats(lengths: np.ndarray) -> dict:
    """The manifests' ``episode_length`` entry."""
    return {"mean": float(lengths.mean()), "min": int(lengths.min()), "max": int(lengths.max()),
            "unit": "filled rows (transitions + 1)"}


def episode_stats(eps: EpisodeArrays, won: np.ndarray | None) -> dict:
    lengths, returns = eps.lengths, eps.returns
    timeouts = int(((eps.lengths - 1) >= eps.filled.shape[1] - 1).sum())
    return {
        "episodes": int(eps.n_episodes),
        "mean_return": float(returns.mean()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "win_rate": None if won is None else float(np.mean(won)),
        "episode_length": length_stats(lengths),
        "time_outs": timeouts,
    }
