"""Helpers of the malformed-input corpus: invoke the CLI in-process and assert a refusal is a
user error (exit 2, or 1 where the issue says so), says it in one line naming the file or option,
and prints no traceback."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner, Result

from marlbench.cli.main import app, bare_table_flag

runner = CliRunner()


def invoke(*args: object, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, bare_table_flag([str(a) for a in args]), env=env)


def assert_refused(result: Result, *names: str, code: int = 2) -> str:
    """The refusal is an exit ``code`` with a line naming every one of ``names``; returns it."""
    out = result.output
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}\n{out}")
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{out}"
    lines = [ln for ln in out.splitlines() if all(n in ln for n in names)]
    assert lines, f"no line names {names}:\n{out}"
    return lines[0]


def tree(root: Path) -> set[str]:
    """Every path below ``root`` (to assert a refusal wrote nothing)."""
    root = Path(root)
    if not root.exists():
        return set()
    return {os.path.relpath(os.path.join(d, f), root)
            for d, dirs, files in os.walk(root) for f in [*dirs, *files]}
