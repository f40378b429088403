"""Shared CLI helpers: consoles, and turning user errors into one clear line and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from marlbench.data.format import DatasetError
from marlbench.errors import UserError

console = Console()
err_console = Console(stderr=True)


def writable_file(path: Path, option: str) -> Path:
    """An output file option: not a directory, its folder not a file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a directory; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a directory")
            break
    return path


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report UserError (and a missing dataset or file) without a traceback, exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, DatasetError) as exc:
            err_console.print(  # the message is literal text: brackets stay as written
                f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False,
                soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
