"""``marlbench doctor``: which backends can run here, and why not."""

from __future__ import annotations

import importlib
import platform
from importlib import metadata

from rich.markup import escape
from rich.table import Table

from marlbench.cli.common import console, user_errors


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _check_import(module: str) -> str | None:
    """None if ``module`` imports, else the reason."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # any import failure is a finding, not a crash
        return f"{type(exc).__name__}: {exc}"
    return None


def sc2_findings() -> list[tuple[str, bool, str]]:
    """(check, ok, detail) for the real StarCraft II backend."""
    from marlbench.envs.sc2 import sc2_path
    from marlbench.envs.tasksets import TASK_SETS

    out = []
    err = _check_import("smac.env")
    hint = ("pip install -e '.[starcraft]' (PyPI's 'smac' is SMAC3, a different project); "
            f"{err}")
    out.append(("oxwhirl SMAC (smac.env)", err is None,
                f"SMAC {_version('SMAC')}" if err is None else hint))
    err = _check_import("pysc2")
    out.append(("pysc2", err is None, _version("pysc2") or "not installed"))
    root = sc2_path()
    out.append(("StarCraft II folder ($SC2PATH)", root.is_dir(), str(root)))
    binaries = sorted((root / "Versions").glob("Base*/SC2_x64")) if root.is_dir() else []
    out.append(("StarCraft II binary", bool(binaries),
                str(binaries[-1]) if binaries else f"no Versions/Base*/SC2_x64 under {root}"))
    maps_dir = root / "Maps" / "SMAC_Maps"
    needed = sorted({t for ts in TASK_SETS.values() if "sc2" in ts.backends for t in ts.test})
    missing = [m for m in needed if not (maps_dir / f"{m}.SC2Map").exists()]
    out.append(("SMAC maps of the task sets", not missing,
                f"all {len(needed)} in {maps_dir}" if not missing else
                f"{len(missing)} of {len(needed)} missing in {maps_dir} (the unseen maps need "
                f"the ODIS map patch): {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"))
    return out


@user_errors
def doctor() -> None:
    """Report whether each backend (embedded SMAX, grid navigation, real StarCraft II) and the
    GPU are usable here, and why not.

    Example: marlbench doctor
    """
    import torch

    rows: list[tuple[str, str, bool, str]] = []
    rows.append(("system", "Python", True, platform.python_version()))
    from marlbench.executors.gpus import gpu_list

    gpus = gpu_list()
    rows.append(("system", "torch", True, f"{torch.__version__}; "
                 f"{len(gpus)} CUDA device(s)" if gpus else f"{torch.__version__}; "
                 "device: CPU (no CUDA device)"))
    for i, (name, memory) in enumerate(gpus):
        rows.append(("system", f"GPU {i}", True, f"{name}, {memory:.1f} GiB"))
    if not gpus:
        rows.append(("system", "GPUs", True, "none found: training runs on CPU"))
    ray_version = _version("ray")
    rows.append(("system", "Ray (--executor ray)", True,
                 ray_version or "not installed: pip install 'marlbench[ray]'"))
    from marlbench.envs.smax import _import_smax

    try:
        _import_smax()
        err = None
    except Exception as exc:  # a finding, not a crash
        err = f"{type(exc).__name__}: {exc}"
    if err is None:
        import jax

        detail = (f"jax {_version('jax')}, jaxmarl {_version('jaxmarl')}; compile cache "
                  f"{jax.config.jax_compilation_cache_dir}")
    rows.append(("smax", "JaxMARL SMAX", err is None, detail if err is None else err))
    err = _check_import("scipy.optimize")
    rows.append(("grid", "numpy + scipy", err is None, err or f"scipy {_version('scipy')}"))
    for check, ok, detail in sc2_findings():
        rows.append(("sc2", check, ok, detail))
    table = Table(title="marlbench doctor")
    for col in ("backend", "check", "status", "detail"):
        table.add_column(col)
    for backend, check, ok, detail in rows:
        status = "[green]ok[/green]" if ok else "[red]missing[/red]"
        table.add_row(backend, check, status, escape(detail))
    console.print(table)
    usable = [b for b in ("smax", "grid", "sc2")
              if all(ok for backend, _, ok, _ in rows if backend == b)]
    console.print(f"usable backends: {', '.join(usable) or 'none'}")

