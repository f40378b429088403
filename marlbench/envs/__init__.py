"""Environments: map registry, task sets, and one module per backend."""

from __future__ import annotations

BACKENDS = ("smax", "sc2", "grid", "rware")


def task_backends(map_name: str) -> tuple[str, ...]:
    """Backends a task runs on, the default first: grid for cn-*, rware for rware-*; for
    StarCraft the map's own (smax and sc2; sc2 alone for maps SMAX cannot play, such as
    2c_vs_64zg and corridor)."""
    from marlbench.envs.cn import CN_TASKS
    from marlbench.envs.maps import MAPS
    from marlbench.envs.rware import RWARE_TASKS

    if map_name in CN_TASKS:
        return ("grid",)
    if map_name in RWARE_TASKS:
        return ("rware",)
    if map_name in MAPS:
        return MAPS[map_name].backends
    return ("smax", "sc2")


def is_starcraft(map_name: str) -> bool:
    """Whether a task is a StarCraft map (the smax or sc2 backend)."""
    return bool({"smax", "sc2"} & set(task_backends(map_name)))


def has_win(map_name: str) -> bool:
    """Whether episodes of a task can be won (battles, navigation); the warehouse has only
    returns."""
    from marlbench.envs.rware import RWARE_TASKS

    return map_name not in RWARE_TASKS


def default_backend(map_name: str) -> str:
    return task_backends(map_name)[0]


def make_env(map_name: str, batch_size: int, backend: str | None = None,
             units: str | None = None, reward: str | None = None):
    """Construct the batched environment of ``backend`` for one task (B parallel episodes);
    ``units`` picks the embedded StarCraft backend's unit profile (default ``smax``),
    ``reward`` the warehouse's reward definition (default ``rware``)."""
    from marlbench.envs.maps import get_map

    spec = get_map(map_name)
    backend = backend or default_backend(map_name)
    if backend not in task_backends(map_name):
        raise ValueError(f"task {map_name} does not run on backend {backend!r}; it runs on: "
                         f"{', '.join(task_backends(map_name))}")
    if units is not None and backend != "smax":
        raise ValueError(f"unit profile {units!r} is for the smax backend, not {backend!r}")
    if reward is not None and backend != "rware":
        raise ValueError(f"reward {reward!r} is for the rware backend, not {backend!r}")
    if backend == "rware":
        from marlbench.envs.rware import RwareEnv

        return RwareEnv(spec, batch_size, reward or "rware")
    if backend == "grid":
        from marlbench.envs.cn import CNEnv

        return CNEnv(spec, batch_size)
    if backend == "smax":
        from marlbench.envs.smax import SmaxEnv
        from marlbench.envs.units import DEFAULT_UNITS

        return SmaxEnv(spec, batch_size, units or DEFAULT_UNITS)
    if backend == "sc2":
        from marlbench.envs.sc2 import Sc2Env

        return Sc2Env(spec, batch_size)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
