"""``marlbench list``: what can go into a suite."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from marlbench.cli.common import console, user_errors


class What(StrEnum):
    tasksets = "tasksets"
    algorithms = "algorithms"
    qualities = "qualities"
    suites = "suites"


@user_errors
def list_(
    what: What = typer.Argument(..., help="tasksets | algorithms | qualities | suites"),
    suites_dir: Path = typer.Option(Path("suites"), "--suites-dir", help="Where suite files are"),
) -> None:
    """List task sets, algorithms, data qualities or suite files.

    Example: marlbench list tasksets
    """
    notes: list[str] = []
    if what is What.tasksets:
        from marlbench.envs.tasksets import TASK_SETS

        t = Table(title="Task sets")
        t.add_column("name", no_wrap=True)
        for col in ("title", "seen", "unseen", "backends", "source"):
            t.add_column(col)
        for ts in TASK_SETS.values():
            t.add_row(ts.name, ts.title, ", ".join(ts.seen), ", ".join(ts.unseen),
                      ", ".join(ts.backends), ts.source)
    elif what is What.algorithms:
        from marlbench.learners import LEARNERS

        t = Table(title="Algorithms")
        t.add_column("name", no_wrap=True)
        for col in ("label", "description", "parameters (defaults)"):
            t.add_column(col)
        for cls in LEARNERS.values():
            params = ", ".join(f"{k}={v}" for k, v in cls.Config().model_dump().items())
            t.add_row(cls.name, cls.label, cls.title, params)
            if cls.quirks:
                notes.append(f"{cls.name}: reference_quirks=true reproduces {cls.quirks}")
        from dataclasses import asdict

        from marlbench.learners import ONLINE_LEARNERS

        for cls in ONLINE_LEARNERS.values():
            params = ", ".join(f"{k}={v}" for k, v in asdict(cls.Config()).items())
            t.add_row(cls.name, cls.label, cls.title, params)
            notes.append(f"{cls.name}: an online learner; suites use it as "
                         "data.behaviour.algorithm, not under algorithms")
    elif what is What.qualities:
        from marlbench.data.qualities import QUALITIES

        t = Table(title="Data qualities")
        t.add_column("name")
        t.add_column("how the data is made")
        for q in QUALITIES.values():
            t.add_row(q.name, q.description)
    else:
        from marlbench.errors import UserError
        from marlbench.suite import load_suite

        files = sorted(suites_dir.glob("*.yaml"))
        if not files:
            raise UserError(f"no suite files (*.yaml) in {suites_dir}")
        t = Table(title=f"Suites in {suites_dir}")
        for col in ("file", "name", "task sets", "algorithms", "profiles", "description"):
            t.add_column(col)
        for f in files:
            s = load_suite(f)
            t.add_row(str(f), s.name, ", ".join(s.task_sets),
                      ", ".join(a.label for a in s.algorithms), ", ".join(s.profiles),
                      s.description)
    console.print(t)
    for note in notes:  # the reference behaviours a learner copies only when asked
        console.print(note, highlight=False)
