"""Renderers of the main table: rich (terminal), Markdown, CSV and JSON."""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.table import Table

from marlbench.results.aggregate import Cell, MainTable
from marlbench.results.published import Comparison

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


def _num(v: float | None) -> str:
    return MISSING if v is None else f"{v:.1f}"


def _delta(ours: float | None, paper: float | None) -> str:
    return MISSING if ours is None or paper is None else f"{ours - paper:+.1f}"


def comparison_rows(comp: Comparison) -> list[list[str]]:
    rows = []
    for row in comp.table.rows:
        cells = [row]
        for col in comp.table.columns:
            ours, paper = comp.pair(row, col)
            cells += [_num(ours), _num(paper), _delta(ours, paper)]
        rows.append(cells)
    return rows


def comparison_note(comp: Comparison) -> str:
    doc = comp.doc
    return (f"Ours: {rule_text(comp.table)} Paper: {doc['title']}, {doc['source']} "
            f"({doc.get('aggregation', doc.get('metric', ''))}). Δ = ours − paper. "
            f"{comp.backend_note()}")


def comparison_to_rich(comp: Comparison) -> Table:
    out = Table(title=f"Ours vs {comp.doc['title']} — win rate (%)")
    out.add_column("Scenario", style="bold")
    for col in comp.table.columns:
        out.add_column(f"{col}\nours", justify="right")
        out.add_column("paper", justify="right", style="dim")
        out.add_column("Δ", justify="right")
    for row in comparison_rows(comp):
        out.add_row(*row)
    return out


def comparison_to_markdown(comp: Comparison) -> str:
    head = ["Scenario"] + [f"{c} {part}" for c in comp.table.columns
                           for part in ("ours", "paper", "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in comparison_rows(comp)]
    return "\n".join(lines) + "\n\n" + comparison_note(comp) + "\n"


def comparison_to_frame(comp: Comparison) -> pd.DataFrame:
    rows = []
    for row in comp.table.rows:
        for col in comp.table.columns:
            ours, paper = comp.pair(row, col)
            rows.append({"scenario": row, "label": col, "ours": ours, "paper": paper,
                         "delta": None if ours is None or paper is None else ours - paper})
    return pd.DataFrame(rows)
