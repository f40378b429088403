"""Helpers for benchmarks: the machine they ran on."""

import os
import platform


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}, {gpu}")
