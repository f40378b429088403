"""Importing public offline data into the data directory, with a manifest per run.

- ODIS (``dataset/<map>/<quality>/<run>/part_*.h5``): the files are copied unchanged.
- OG-MARL vaults (flashbax ``Vault``): flat time series are cut into episodes and written in
  the ODIS layout. Needs ``flashbax`` (``pip install 'marlbench[ogmarl]'``) for this only.
- AlberDICE folders (pymarl EpisodeBatch ``.npy`` arrays and ``meta.json``): written in the
  ODIS layout with the data's standardisation statistics in the manifest.
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
from pydantic import ConfigDict

from marlbench import __version__
from marlbench.data.collect import MANIFEST, DatasetWriter, Manifest, existing_dataset
from marlbench.data.dataset import LazyEpisodes, check_layout
from marlbench.data.format import PART_NAME, DatasetError, EpisodeArrays, sha256
from marlbench.data.stats import episode_stats, infer_won
from marlbench.envs import default_backend, has_win, is_starcraft
from marlbench.errors import UserError
from marlbench.fields import NonNegativeInt, PositiveInt, StrictModel
from marlbench.fileio import inside, read_json, require_dir, safe_name, validated, write_json

Progress = Callable[[int, int, str], None]


def _map(task: str, where: str):
    from marlbench.envs.maps import get_map

    try:
        return get_map(task)
    except KeyError as exc:
        raise UserError(f"{where}: {str(exc).strip(chr(34))}") from None


def find_odis_runs(root: Path) -> list[tuple[str, str, Path]]:
    """(map, quality, run folder) for every ODIS run under ``root`` (any level of the tree)."""
    from marlbench.envs.maps import get_map

    root = Path(root)
    if not root.exists():
        raise UserError(f"ODIS dataset {root} does not exist")
    if root.is_file():
        if not PART_NAME.fullmatch(root.name):
            raise UserError(f"{root} is not an ODIS part file (part_<N>.h5) nor a folder of "
                            "them")
        folders = [root.parent]
    elif not root.is_dir():
        raise UserError(f"ODIS dataset {root} is not a regular file or directory")
    else:
        folders = sorted({p.parent for p in root.rglob("part_*.h5")})
    runs = []
    for folder in folders:
        task, quality = folder.parent.parent.name, folder.parent.name
        try:
            get_map(task)
        except KeyError:
            raise UserError(
                f"{folder}: expected the ODIS layout <map>/<quality>/<run>/part_*.h5, but "
                f"{task!r} is not a known map") from None
        safe_name(quality, f"{folder}: ODIS quality folder")
        safe_name(folder.name, f"{folder}: ODIS run folder")
        runs.append((task, quality, folder))
    if not runs:
        raise UserError(f"no ODIS part_*.h5 files under {root}")
    return runs


def import_odis(path: Path, data_dir: Path, progress: Progress | None = None) -> list[dict]:
    """Copy every ODIS run under ``path`` to ``<data>/odis/<map>/<quality>/<run>/``.

    Every run is checked (structure, values, layout of its map) before anything is copied."""
    from marlbench.envs import default_backend
    from marlbench.envs.maps import get_map

    data_dir = require_dir(data_dir, "--data-dir", must_exist=False)
    runs = find_odis_runs(path)
    checked = []
    for task, quality, run in runs:
        dest = inside(data_dir, Path(data_dir) / "odis" / task / quality / run.name)
        existing = existing_dataset(dest)
        src = None
        if existing is None:
            src = LazyEpisodes(run, last=None)
            check_layout(run, src.shape, get_map(task).layout, task)
        checked.append((task, quality, run, dest, existing, src))
    out = []
    for task, quality, run, dest, existing, src in checked:
        if existing is not None:
            out.append({**existing, "status": "already imported"})
            continue
        start = time.time()
        assert src is not None
        eps = src.load()  # every value checked before anything is written
        dest.mkdir(parents=True, exist_ok=True)
        parts = []
        for part in src.paths:
            tmp = dest / (part.name + ".tmp")
            shutil.copyfile(part, tmp)
            os.replace(tmp, dest / part.name)
            parts.append({"file": part.name, "sha256": sha256(dest / part.name)})
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
        validated(Manifest, manifest, dest / MANIFEST, "dataset manifest")
        write_json(dest / MANIFEST, manifest, sort_keys=False, root=data_dir)
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
    path = require_dir(Path(path), "OG-MARL vault folder")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints what it loads
            vault = Vault(rel_dir=str(path.parent), vault_name=path.name, vault_uid=vault_uid)
            return vault.read().experience
    except Exception as exc:  # flashbax / tensorstore have many ways to fail on a bad vault
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise UserError(f"{path}: cannot read it as an OG-MARL vault"
                        f"{f' (uid {vault_uid})' if vault_uid else ''}: "
                        f"{type(exc).__name__}: {first}") from None


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
    data_dir = require_dir(Path(data_dir), "--data-dir", must_exist=False)
    path = require_dir(Path(path), "OG-MARL vault folder")
    layout = _map(safe_name(task, "--task"), "--task").layout
    if vault_uid is not None:
        safe_name(vault_uid, "--uid")
    quality = safe_name(quality or (vault_uid or "replay").lower(), "--quality")
    run_name = safe_name(path.resolve().name + (f"-{vault_uid}" if vault_uid else ""),
                         "vault folder name")
    dest = inside(data_dir, data_dir / "og-marl" / task / quality / run_name)
    existing = existing_dataset(dest)
    if existing is not None:
        return {**existing, "status": "already imported"}
    exp = _vault_experience(path, vault_uid)
    try:
        (obs, state, actions, legals, reward, starts, stops), longest = vault_to_episodes(
            exp, layout.n_actions)
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: the vault's arrays do not have OG-MARL's shapes "
                           f"({exc})") from None
    if obs.ndim != 3 or obs.shape[1] != layout.n_agents:
        raise DatasetError(f"{path}: vault observations have shape {obs.shape[1:]} per step; "
                           f"{task} has {layout.n_agents} agents")
    if obs.shape[-1] != layout.obs_dim or state.shape[-1] != layout.state_dim:
        raise DatasetError(f"vault obs/state widths {obs.shape[-1]}/{state.shape[-1]} do not "
                           f"fit {task} ({layout.obs_dim}/{layout.state_dim})")
    for key, x in (("observations", obs), ("infos.state", state), ("rewards", reward)):
        if not np.isfinite(np.asarray(x, dtype=np.float64)).all():
            raise DatasetError(f"{path}: vault key {key} holds NaN or infinity")
    if actions.size and (actions.min() < 0 or actions.max() >= layout.n_actions):
        raise DatasetError(f"{path}: vault actions run {actions.min()}..{actions.max()}; "
                           f"{task} has {layout.n_actions} actions")
    if longest > layout.episode_limit:
        raise DatasetError(f"vault episodes run to {longest} steps, past {task}'s limit "
                           f"{layout.episode_limit}")
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
    wins = has_win(task)
    manifest = writer.finish({
        # SMAC vaults were recorded in StarCraft II; others on their task's own backend
        "task": task, "backend": "sc2" if is_starcraft(task) else default_backend(task),
        "quality": quality, "source": "og-marl",
        "origin": str(Path(path).resolve()),
        "behaviour_policy": {"name": "og-marl", "description": f"OG-MARL vault {quality}",
                             "checkpoint": None},
        **({"win_rate_source": "inferred from the final transition's reward"} if wins else {}),
        "collection_seed": None,
        # the vault's own rows (every one a step) for contracts that standardise inputs
        "standardisation": _flat_standardisation(obs, state),
    })
    return {**manifest, "status": "imported"}


def _flat_standardisation(obs: np.ndarray, state: np.ndarray) -> dict:
    """:func:`standardisation` over a vault's flat rows (obs [rows, n, obs], state [rows, S])."""
    o = obs.reshape(-1, obs.shape[-1]).astype(np.float64)
    s = state.astype(np.float64)
    return {"obs_mean": o.mean(0).tolist(), "obs_std": o.std(0).tolist(),
            "state_mean": s.mean(0).tolist(), "state_std": s.std(0).tolist(),
            "over": "every step of the vault (observations pooled over agents)"}


# -- AlberDICE (pymarl EpisodeBatch arrays) ------------------------------------------------

ALBERDICE_KEYS = ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled")


class AlberdiceMeta(StrictModel):
    """``meta.json`` of an AlberDICE dataset folder (pymarl's replay buffer bookkeeping)."""

    model_config = ConfigDict(extra="allow")
    buffer_index: NonNegativeInt
    episodes_in_buffer: PositiveInt
    buffer_size: PositiveInt


def _npy(path: Path, key: str) -> np.ndarray:
    file = path / f"{key}.npy"
    if not file.is_file():
        raise DatasetError(f"{path}: no {key}.npy (an AlberDICE dataset folder holds "
                           f"{', '.join(k + '.npy' for k in ALBERDICE_KEYS)} and meta.json)")
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{file}: not a readable .npy array ({exc})") from None


def read_alberdice(path: Path, layout) -> EpisodeArrays:
    """The episodes of an AlberDICE dataset folder (environments.md §6), every array's shape
    checked against ``layout``: obs [E, T+1, n, obs], state [E, T+1, S], actions
    [E, T+1, n(, 1)], avail_actions [E, T+1, n, A], reward / terminated / filled [E, T+1(, 1)],
    with T + 1 = the task's episode limit + 1; the first ``episodes_in_buffer`` are read."""
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DatasetError(f"{path}: no meta.json (pymarl's buffer_index, episodes_in_buffer, "
                           "buffer_size)")
    meta = validated(AlberdiceMeta, read_json(meta_file, "AlberDICE meta.json"), meta_file,
                     "AlberDICE meta.json")
    if meta.episodes_in_buffer > meta.buffer_size:
        raise DatasetError(f"{meta_file}: episodes_in_buffer {meta.episodes_in_buffer} exceeds "
                           f"buffer_size {meta.buffer_size}")
    e, t1 = meta.episodes_in_buffer, layout.episode_limit + 1
    n, a = layout.n_agents, layout.n_actions
    want = {"obs": (n, layout.obs_dim), "state": (layout.state_dim,), "actions": (n,),
            "avail_actions": (n, a), "reward": (), "terminated": (), "filled": ()}
    arrays = {}
    for key, tail in want.items():
        x = _npy(path, key)
        if key in ("actions", "reward", "terminated", "filled") and x.ndim == 3 + len(tail) \
                and x.shape[-1] == 1:
            x = x[..., 0]  # pymarl keeps a trailing axis of 1
        shape = (e, t1, *tail)
        if x.ndim != len(shape) or x.shape[0] < e or x.shape[1:] != shape[1:]:
            dims = ", ".join(["E", str(t1), *map(str, tail)])
            raise DatasetError(f"{path / (key + '.npy')}: shape {list(x.shape)}; the task "
                               f"needs [{dims}] with E >= {e} (episodes_in_buffer)")
        x = np.asarray(x[:e])
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DatasetError(f"{path / (key + '.npy')}: holds NaN or infinity")
        arrays[key] = x
    actions = arrays["actions"].astype(np.int64)
    filled = arrays["filled"].astype(np.int64)
    if actions.size and (actions.min() < 0 or actions.max() >= a):
        raise DatasetError(f"{path / 'actions.npy'}: actions run {actions.min()}.."
                           f"{actions.max()}; the task has {a}")
    if not set(np.unique(filled)) <= {0, 1} or not filled[:, 0].all():
        raise DatasetError(f"{path / 'filled.npy'}: must be 0 or 1 with every episode's first "
                           "row filled")
    return EpisodeArrays(
        obs=arrays["obs"].astype(np.float32), state=arrays["state"].astype(np.float32),
        actions=actions, avail_actions=arrays["avail_actions"].astype(np.int32),
        reward=arrays["reward"].astype(np.float32),
        terminated=arrays["terminated"].astype(np.uint8), filled=filled)


def standardisation(eps: EpisodeArrays) -> dict:
    """The manifest's ``standardisation``: mean and std per observation and state feature
    over the filled rows (a constant feature gets std 0; users divide by max(std, eps))."""
    rows = eps.filled.astype(bool)
    obs = eps.obs[rows].reshape(-1, eps.obs.shape[-1]).astype(np.float64)
    state = eps.state[rows].astype(np.float64)
    return {"obs_mean": obs.mean(0).tolist(), "obs_std": obs.std(0).tolist(),
            "state_mean": state.mean(0).tolist(), "state_std": state.std(0).tolist(),
            "over": "filled rows of every episode (observations pooled over agents)"}


def import_alberdice(path: Path, task: str, quality: str, data_dir: Path,
                     progress: Progress | None = None) -> dict:
    """Convert an AlberDICE dataset folder into ``<data>/alberdice/<task>/<quality>/<name>/``
    in the ODIS layout, with the data's own standardisation statistics in the manifest."""
    data_dir = require_dir(Path(data_dir), "--data-dir", must_exist=False)
    path = require_dir(Path(path), "AlberDICE dataset folder")
    spec = _map(safe_name(task, "--task"), "--task")
    quality = safe_name(quality, "--quality")
    run_name = safe_name(path.resolve().name, "dataset folder name")
    dest = inside(data_dir, data_dir / "alberdice" / task / quality / run_name)
    existing = existing_dataset(dest)
    if existing is not None:
        return {**existing, "status": "already imported"}
    eps = read_alberdice(path, spec.layout)
    writer = DatasetWriter(dest, eps.n_episodes, spec.layout)
    batch = 256
    for lo in range(0, eps.n_episodes, batch):
        part = eps.select(slice(lo, min(lo + batch, eps.n_episodes)))
        writer.add(part, infer_won(part, task))
        if progress:
            progress(writer.written, eps.n_episodes, f"import {task}/{quality}")
    manifest = writer.finish({
        "task": task, "backend": default_backend(task), "quality": quality,
        "source": "alberdice", "origin": str(path.resolve()),
        "behaviour_policy": {"name": "alberdice", "description": f"AlberDICE {quality} data "
                             "(pymarl EpisodeBatch arrays)", "checkpoint": None},
        "win_rate_source": None if infer_won(eps, task) is None
        else "inferred from the final transition's reward",
        "collection_seed": None,
        "standardisation": standardisation(eps),
    })
    return {**manifest, "status": "imported"}
