"""Atomic writes: a temporary file in the same folder, then a rename, so a reader never sees a
half-written file (results records, manifests, behaviour-run state, checkpoints)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_json(path: Path, obj: Any, sort_keys: bool = True) -> None:
    """Write JSON atomically (``sort_keys=False`` keeps the object's own key order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys, default=str))
    os.replace(tmp, path)


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` atomically."""
    import torch

    path = Path(path)
    tmp = _temporary(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)
