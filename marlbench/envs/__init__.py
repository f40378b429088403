"""Environments: map registry, task sets, and one module per backend."""

from __future__ import annotations

BACKENDS = ("smax", "grid")


def default_backend(map_name: str) -> str:
    """The backend a task runs on when none is named: grid for cn-*, smax for StarCraft maps."""
    from marlbench.envs.cn import CN_TASKS

    return "grid" if map_name in CN_TASKS else "smax"


def make_env(map_name: str, batch_size: int, backend: str | None = None):
    """Construct the batched environment of ``backend`` for one task (B parallel episodes)."""
    from marlbench.envs.maps import get_map

    spec = get_map(map_name)
    backend = backend or default_backend(map_name)
    if backend != default_backend(map_name):
        raise ValueError(f"task {map_name} does not run on backend {backend!r}; it runs on "
                         f"{default_backend(map_name)!r}")
    if backend == "grid":
        from marlbench.envs.cn import CNEnv

        return CNEnv(spec, batch_size)
    if backend == "smax":
        from marlbench.envs.smax import SmaxEnv

        return SmaxEnv(spec, batch_size)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
