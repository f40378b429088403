"""Renderers of the main table: rich (terminal), Markdown, CSV and JSON."""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.table import Table

from marlbench.results.aggregate import Cell, MainTable

FORMATS = ("rich", "md", "csv", "json")
MISSING = "—"


def rule_text(table: MainTable) -> str:
    checkpoint = {"final": "the final checkpoint", "best": "the best checkpoint (highest mean "
                  "win rate over all test tasks, per seed)", "last_k": "the mean of the last k "
                  "checkpoints"}[table.rule]
    return (
        f"Win rate (%) of {checkpoint}. Per seed: unweighted mean over the seen tasks, over the "
        "unseen tasks and over all test tasks of each task set, averaged over the data "
        "qualities present; Mean rows average the task sets unweighted; then mean ± std "
        f"(ddof=0) across seeds. {MISSING} = no complete run (not run, failed or still running)."
    )


def fmt(cell: Cell) -> str:
    if cell.missing:
        return MISSING
    return f"{cell.mean:.1f} ± {cell.std:.1f}"


def to_rich(table: MainTable) -> Table:
    out = Table(title="Average win rate (%)")
    out.add_column("Scenario", style="bold")
    for label in table.columns:
        out.add_column(label, justify="right")
    for i, row in enumerate(table.rows):
        end = i == len(table.rows) - 4  # rule before the cross-set rows
        out.add_row(row, *(fmt(table.cells[(row, c)]) for c in table.columns), end_section=end)
    return out


def to_markdown(table: MainTable) -> str:
    lines = ["| Scenario | " + " | ".join(table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]
    for row in table.rows:
        lines.append(f"| {row} | " + " | ".join(fmt(table.cells[(row, c)])
                                                for c in table.columns) + " |")
    return "\n".join(lines) + "\n\n" + rule_text(table) + "\n"


def to_frame(table: MainTable) -> pd.DataFrame:
    rows = []
    for row in table.rows:
        for col in table.columns:
            cell = table.cells[(row, col)]
            rows.append({"scenario": row, "label": col, "mean": cell.mean, "std": cell.std,
                         "n_seeds": cell.n_seeds})
    return pd.DataFrame(rows)


def to_csv(table: MainTable) -> str:
    buf = io.StringIO()
    to_frame(table).to_csv(buf, index=False)
    return buf.getvalue()


def to_json(table: MainTable) -> str:
    return json.dumps({"rule": rule_text(table), "checkpoint": table.rule,
                       "cells": to_frame(table).to_dict(orient="records")}, indent=2)
