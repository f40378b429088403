"""Importing public offline data into the data directory, with a manifest per run.

- ODIS (``dataset/<map>/<quality>/<run>/part_*.h5``): the files are copied unchanged.
- OG-MARL vaults (flashbax ``Vault``): flat time series are cut into episodes and written in
  the ODIS layout. Needs ``flashbax`` (``pip install 'marlbench[ogmarl]'``) for this only.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from marlbench import __version__
from marlbench.data.collect import MANIFEST, DatasetWriter, existing_dataset
from marlbench.data.dataset import LazyEpisodes, check_layout, part_files
from marlbench.data.format import DatasetError, EpisodeArrays, sha256
from marlbench.data.stats import episode_stats, infer_won
from marlbench.errors import UserError
from marlbench.fileio import write_json

Progress = Callable[[int, int, str], None]


def find_odis_runs(root: Path) -> list[tuple[str, str, Path]]:
    """(map, quality, run folder) for every ODIS run under ``root`` (any level of the tree)."""
    from marlbench.envs.maps import get_map

    root = Path(root)
    if not root.exists():
        raise UserError(f"{root} does not exist")
    folders = sorted({p.parent for p in root.rglob("part_*.h5")})
    if root.is_file():
        folders = [root.parent]
    runs = []
    for folder in folders:
        task, quality = folder.parent.parent.name, folder.parent.name
        try:
            get_map(task)
        except KeyError:
            raise UserError(
                f"{folder}: expected the ODIS layout <map>/<quality>/<run>/part_*.h5, but "
                f"{task!r} is not a known map") from None
        runs.append((task, quality, folder))
    if not runs:
        raise UserError(f"no ODIS part_*.h5 files under {root}")
    return runs


def import_odis(path: Path, data_dir: Path, progress: Progress | None = None) -> list[dict]:
    """Copy every ODIS run under ``path`` to ``<data>/odis/<map>/<quality>/<run>/``."""
    from marlbench.envs import default_backend
    from marlbench.envs.maps import get_map

    out = []
    for task, quality, run in find_odis_runs(path):
        dest = Path(data_dir) / "odis" / task / quality / run.name
        existing = existing_dataset(dest)
        if existing is not None:
            out.append({**existing, "status": "already imported"})
            continue
        start = time.time()
        src = LazyEpisodes(run, last=None)
        check_layout(run, src.shape, get_map(task).layout, task)
        dest.mkdir(parents=True, exist_ok=True)
        parts = []
        for part in part_files(run):
            tmp = dest / (part.name + ".tmp")
            shutil.copyfile(part, tmp)
            os.replace(tmp, dest / part.name)
            parts.append({"file": part.name, "sha256": sha256(dest / part.name)})
        eps = src.load()
        for part, count in zip(parts, np.diff(src.starts), strict=True):
            part["episodes"] = int(count)
        backend = "sc2" if default_backend(task) != "grid" else "grid"
        manifest = {
            "task": task,
            "backend": backend,
            "quality": quality,
            "source": "odis",
            "origin": str(Path(run).resolve()),
            "behaviour_policy": {
                "name": "qmix",
                "description": "pymarl QMIX trained online (LAMDA-RL/ODIS src/data_collect.py)",
                "checkpoint": None,
            },
            **episode_stats(eps, infer_won(eps, task)),
            "win_rate_source": "inferred from the final transition's reward",
            "format": "odis-hdf5",
            "parts": parts,
            "collection_seed": None,
            "marlbench_version": __version__,
            "wall_time_s": round(time.time() - start, 2),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json(dest / MANIFEST, manifest, sort_keys=False)
        out.append({**manifest, "status": "imported"})
        if progress:
            progress(len(out), len(out), f"import {task}/{quality}")
    return out


# -- OG-MARL ------------------------------------------------------------------------------

OG_MARL_KEYS = ("observations", "actions", "rewards", "terminals", "truncations", "infos")


def _vault_experience(path: Path, vault_uid: str | None) -> dict[str, Any]:
    try:
        from flashbax.vault import Vault
    except ImportError:
        raise UserError("importing OG-MARL vaults needs flashbax: pip install "
                        "'marlbench[ogmarl]' (or pip install flashbax)") from None
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path} is not a vault folder")
    with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints what it loads
        vault = Vault(rel_dir=str(path.parent), vault_name=path.name, vault_uid=vault_uid)
        return vault.read().experience


def vault_to_episodes(exp: dict[str, Any], n_actions: int) -> tuple[EpisodeArrays, int]:
    """Cut an OG-MARL experience (leading [1 or B, T] axes) into padded episodes.

    Keys: observations [.., n, obs], actions [.., n], rewards [.., n] (team reward repeated
    per agent), terminals / truncations [.., n], infos.legals [.., n, A], infos.state [.., S].
    Returns the episodes (no padding rows yet beyond the longest) and the longest length.
    """
    missing = [k for k in OG_MARL_KEYS if k not in exp]
    if missing:
        raise DatasetError(f"vault experience lacks key(s) {', '.join(missing)}; has "
                           f"{', '.join(exp)}")
    infos = exp["infos"]
    for key in ("legals", "state"):
        if key not in infos:
            raise DatasetError(f"vault experience lacks infos.{key}")

    def rows(x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x if x.ndim >= 2 else x[None]

    obs = rows(exp["observations"])
    b, t = obs.shape[:2]  # each row of the vault is its own time series

    def flat(x: Any) -> np.ndarray:
        x = rows(x)
        return x.reshape(b * t, *x.shape[2:])

    obs, actions = flat(obs), flat(exp["actions"]).astype(np.int64)
    reward = flat(exp["rewards"])
    reward = reward.reshape(b * t, -1)[:, 0]  # the team reward, repeated per agent
    ends = (flat(exp["terminals"]).reshape(b * t, -1).any(1)
            | flat(exp["truncations"]).reshape(b * t, -1).any(1)).reshape(b, t)
    legals, state = flat(infos["legals"]).astype(np.int32), flat(infos["state"])
    if legals.shape[-1] != n_actions:
        raise DatasetError(f"vault legals have {legals.shape[-1]} actions, the task {n_actions}")
    starts, stops = [], []
    for row in range(b):  # an unfinished tail of a row is not an episode
        row_stops = np.flatnonzero(ends[row])
        starts.extend(row * t + np.concatenate([[0], row_stops[:-1] + 1]).astype(int)
                      if row_stops.size else [])
        stops.extend(row * t + row_stops)
    if not stops:
        raise DatasetError("the vault holds no finished episode (no terminal or truncation)")
    starts, stops = np.asarray(starts), np.asarray(stops)
    return (obs, state, actions, legals, reward, starts, stops), int((stops - starts).max() + 1)


def import_og_marl(path: Path, task: str, quality: str | None, data_dir: Path,
                   vault_uid: str | None = None, progress: Progress | None = None) -> dict:
    """Convert an OG-MARL vault into ``<data>/og-marl/<task>/<quality>/<vault>/``; the
    quality defaults to the vault uid (OG-MARL's Good / Medium / Poor / Replay), lowercased."""
    from marlbench.envs.maps import get_map

    quality = quality or (vault_uid or "replay").lower()

    layout = get_map(task).layout
    exp = _vault_experience(path, vault_uid)
    (obs, state, actions, legals, reward, starts, stops), longest = vault_to_episodes(
        exp, layout.n_actions)
    if obs.shape[-1] != layout.obs_dim or state.shape[-1] != layout.state_dim:
        raise DatasetError(f"vault obs/state widths {obs.shape[-1]}/{state.shape[-1]} do not "
                           f"fit {task} ({layout.obs_dim}/{layout.state_dim})")
    if longest > layout.episode_limit:
        raise DatasetError(f"vault episodes run to {longest} steps, past {task}'s limit "
                           f"{layout.episode_limit}")
    dest = Path(data_dir) / "og-marl" / task / quality / (Path(path).name + (
        f"-{vault_uid}" if vault_uid else ""))
    existing = existing_dataset(dest)
    if existing is not None:
        return {**existing, "status": "already imported"}
    t1 = layout.episode_limit + 1
    writer = DatasetWriter(dest, len(starts), layout)
    batch = 256
    for lo in range(0, len(starts), batch):
        sel = range(lo, min(lo + batch, len(starts)))
        b = len(sel)
        ep = EpisodeArrays(
            obs=np.zeros((b, t1, *obs.shape[1:]), np.float32),
            state=np.zeros((b, t1, state.shape[-1]), np.float32),
            actions=np.zeros((b, t1, layout.n_agents), np.int64),
            avail_actions=np.zeros((b, t1, layout.n_agents, layout.n_actions), np.int32),
            reward=np.zeros((b, t1), np.float32),
            terminated=np.zeros((b, t1), np.uint8),
            filled=np.zeros((b, t1), np.int64),
        )
        for i, e in enumerate(sel):
            s, t = starts[e], stops[e] + 1  # rows s .. t-1 are transitions
            n = t - s
            ep.obs[i, :n], ep.state[i, :n] = obs[s:t], state[s:t]
            ep.actions[i, :n], ep.avail_actions[i, :n] = actions[s:t], legals[s:t]
            ep.reward[i, :n] = reward[s:t]
            ep.terminated[i, n - 1] = 1
            # the vault keeps no post-terminal observation: the terminal row repeats the last
            # one with only no-op available, as a dead agent's row would be
            ep.obs[i, n], ep.state[i, n] = obs[t - 1], state[t - 1]
            ep.avail_actions[i, n, :, 0] = 1
            ep.filled[i, : n + 1] = 1
        writer.add(ep, infer_won(ep, task))
        if progress:
            progress(writer.written, len(starts), f"import {task}/{quality}")
    manifest = writer.finish({
        "task": task, "backend": "sc2", "quality": quality, "source": "og-marl",
        "origin": str(Path(path).resolve()),
        "behaviour_policy": {"name": "og-marl", "description": f"OG-MARL vault {quality}",
                             "checkpoint": None},
        "win_rate_source": "inferred from the final transition's reward",
        "collection_seed": None,
    })
    return {**manifest, "status": "imported"}
