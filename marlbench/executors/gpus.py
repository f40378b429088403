"""The GPUs of this machine, as the executors and ``marlbench doctor`` see them."""

from __future__ import annotations

import os

from marlbench.errors import UserError

FAKE_GPUS = "MARLBENCH_FAKE_GPUS"  # tests: pretend this machine has N GPUs
MAX_GPUS = 64


def gpu_count() -> int:
    """How many CUDA devices this process sees: ``torch.cuda.device_count()``, or the value of
    ``MARLBENCH_FAKE_GPUS`` (0-64) when set, so that GPU assignment can be tested anywhere."""
    fake = os.environ.get(FAKE_GPUS)
    if fake is not None:
        if not fake.isdigit() or int(fake) > MAX_GPUS:
            raise UserError(f"{FAKE_GPUS}={fake!r}: give a whole number of GPUs from 0 to "
                            f"{MAX_GPUS}")
        return int(fake)
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def visible_device_ids(count: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value that selects each of this process's ``count`` GPUs:
    ``0..count-1``, or the entries of this process's own ``CUDA_VISIBLE_DEVICES`` when it is
    already narrowed (GPU 1 of ``"4,6"`` is ``"6"``)."""
    own = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if len(own) >= count:
        return own[:count]
    return [str(i) for i in range(count)]


def gpu_list() -> list[tuple[str, float]]:
    """(name, memory in GiB) of each CUDA device (faked ones are named so)."""
    fake = os.environ.get(FAKE_GPUS)
    if fake is not None:
        return [("fake GPU (MARLBENCH_FAKE_GPUS)", 0.0)] * gpu_count()
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append((props.name, props.total_memory / 2**30))
    return out
