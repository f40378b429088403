"""Files in and out. Out: atomic writes (a temporary file in the same folder, then a rename, so a
reader never sees a half-written file), only under the root a path belongs to. In: every file is
read through :func:`read_text` / :func:`read_json` / :func:`validated`, which turn a missing,
misnamed, non-UTF-8, truncated or off-schema file into one sentence naming the file and field.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from marlbench.errors import FileFormatError, UserError

T = TypeVar("T")

# A name that becomes a file or folder name: starts with a letter or digit, then letters,
# digits, '_', '-', '.'; no path separators, no '..', at most 100 characters.
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and bool(_SAFE.fullmatch(name)) and ".." not in name


def safe_name(name: object, what: str) -> str:
    """``name`` if it can be used as one file or folder name, else a UserError naming ``what``."""
    if not is_safe_name(name):
        raise UserError(f"{what} {name!r} cannot be used as a file name: use letters, digits, "
                        "'_', '-' and '.' (no '/', no '..'), starting with a letter or digit, "
                        "at most 100 characters")
    return str(name)


def inside(root: Path, path: Path) -> Path:
    """``path`` when it lies under ``root`` (after resolving '..' and links); else an error."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise UserError(f"refusing to write {path}: it lies outside {root}")
    return Path(path)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _finite(obj: Any) -> Any:
    """Raise ValueError on NaN or infinity anywhere in ``obj`` (JSON has no such numbers)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write a non-finite number ({obj})")
    if isinstance(obj, dict):
        for v in obj.values():
            _finite(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _finite(v)
    return obj


def write_json(path: Path, obj: Any, sort_keys: bool = True, root: Path | None = None) -> None:
    """Write JSON atomically (``sort_keys=False`` keeps the object's own key order); with
    ``root``, refuse a path outside it. NaN and infinity are refused (strict JSON)."""
    path = Path(path)
    if root is not None:
        inside(root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.write_text(json.dumps(_finite(obj), indent=2, sort_keys=sort_keys, default=str,
                              allow_nan=False))
    os.replace(tmp, path)


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` atomically."""
    import torch

    path = Path(path)
    tmp = _temporary(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


# -- reading at the door ---------------------------------------------------------------------


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` if it is an existing regular file; else a sentence saying what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file")
    return path


def require_dir(path: Path, what: str = "directory", must_exist: bool = True) -> Path:
    """``path`` if it is a directory (or, with ``must_exist=False``, does not exist yet)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a directory")
    if must_exist and not path.exists():
        raise UserError(f"{what} {path} does not exist")
    return path


def read_text(path: Path, what: str = "file", max_bytes: int = 64 << 20) -> str:
    """A UTF-8 text file, at most ``max_bytes`` long."""
    path = require_file(path, what)
    size = path.stat().st_size
    if size > max_bytes:
        raise FileFormatError(f"{path}: {what} of {size} bytes is larger than the "
                              f"{max_bytes >> 20} MiB allowed")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not a UTF-8 text file (byte {exc.start}); is it the "
                              f"{what} it claims to be?") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Strict JSON (no NaN or Infinity) from a UTF-8 file."""
    text = read_text(path, what)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno} "
                              f"({exc.msg}): the {what} is truncated or corrupt") from None
    except ValueError as exc:
        raise FileFormatError(f"{path}: {exc}") from None


def error_field(err: dict) -> str:
    """A pydantic error's location as a dotted field name."""
    loc = [str(x) for x in err["loc"] if not str(x).startswith("function-")]
    return ".".join(loc) or "(top level)"


def error_message(err: dict) -> str:
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "missing"
    return msg


def validated(schema: type[T] | Any, data: Any, path: Path | str, what: str = "file") -> T:
    """``data`` validated against a pydantic model (or any type); the first problem becomes
    ``<path>: <field>: <message>``."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(data)
        return TypeAdapter(schema).validate_python(data)
    except ValidationError as exc:
        errs = exc.errors()
        err = errs[0]
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise FileFormatError(f"{path}: {what} field {error_field(err)}: "
                              f"{error_message(err)}{more}") from None


def read_validated(path: Path, schema: type[T] | Any, what: str) -> T:
    """Read a JSON file and validate it against its schema."""
    return validated(schema, read_json(path, what), path, what)
