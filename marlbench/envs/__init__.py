"""Environments: map registry, task sets, and one module per backend."""

from __future__ import annotations

BACKENDS = ("smax",)


def make_env(map_name: str, batch_size: int, backend: str = "smax"):
    """Construct the batched environment of ``backend`` for one map (B parallel episodes)."""
    from marlbench.envs.maps import get_map

    if backend == "smax":
        from marlbench.envs.smax import SmaxEnv

        return SmaxEnv(get_map(map_name), batch_size)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
