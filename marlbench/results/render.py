"""Renderers of report tables: rich (terminal), Markdown, LaTeX (booktabs), CSV and JSON; and
of the side-by-side comparison with published numbers."""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.table import Table as RichTable

from marlbench.results.aggregate import METRICS as TABLE_METRICS
from marlbench.results.aggregate import RETURN_TABLES, Cell, Table
from marlbench.results.published import Comparison
from marlbench.results.robust import RobustReport

FORMATS = ("rich", "md", "latex", "csv", "json")
MISSING = "—"
PARTIAL = "†"
MAX_NOTES = 20

_STAT = {"mean": "mean", "median": "median", "iqm": "IQM (interquartile mean)"}


def _checkpoint_text(table: Table) -> str:
    noun = TABLE_METRICS[table.metric].noun.replace(" (%)", "")
    return {"final": "the final checkpoint", "best": f"the best checkpoint (highest mean {noun} "
            "over all test tasks, per seed)", "last_k": "the mean of the last k "
            "checkpoints"}[table.rule]


def rule_text(table: Table) -> str:
    checkpoint = _checkpoint_text(table)
    metric = TABLE_METRICS[table.metric]
    if table.name in RETURN_TABLES:
        return (
            f"{'Average return' if metric.name == 'return' else metric.title} of {checkpoint}"
            ". Per seed: the mean over the map's evaluation episodes, each data quality apart "
            f"(never averaged over qualities); then {_STAT[table.stat]} ± std (ddof=0) across "
            f"seeds (no ± from one seed). {MISSING} = no complete run; {PARTIAL} = fewer seeds "
            "than planned (see the notes)."
        )
    return (
        f"{metric.title} of {checkpoint}. Per seed: unweighted mean over the seen tasks, over the "
        "unseen tasks and over all test tasks of each task set, averaged over the data "
        "qualities (only seeds complete in every quality); Mean rows average the task sets "
        f"unweighted; then {_STAT[table.stat]} ± std (ddof=0) across seeds (no ± from one "
        f"seed). {MISSING} = no "
        f"complete run; {PARTIAL} = fewer seeds than planned (see the notes)."
    )


def notes(table: Table) -> list[str]:
    """Why each missing or partial cell is so, one line per (column, reason) group."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row in table.rows:
        for col in table.columns:
            cell = table.cells[(row, col)]
            if cell.missing or cell.partial:
                who = col if table.best_along == "row" else row
                where = row if table.best_along == "row" else col
                groups.setdefault((who, cell.reason), []).append(where)
    lines = [f"{who}: {reason} — {', '.join(where)}" for (who, reason), where in groups.items()]
    if len(lines) > MAX_NOTES:
        lines = lines[:MAX_NOTES] + [f"… and {len(lines) - MAX_NOTES} more"]
    return lines


def fmt(cell: Cell) -> str:
    if cell.missing:
        return MISSING
    d = cell.digits
    spread = f" ± {cell.std:.{d}f}" if cell.n_seeds > 1 else ""  # one seed has no spread
    return f"{cell.value:.{d}f}{spread}" + (PARTIAL if cell.partial else "")


def to_rich(table: Table) -> RichTable:
    out = RichTable(title=table.title)
    out.add_column(table.row_header, style="bold")
    for label in table.columns:
        out.add_column(label, justify="right")
    for i, row in enumerate(table.rows):
        out.add_row(row, *(fmt(table.cells[(row, c)]) for c in table.columns),
                    end_section=i in table.sections)
    return out


def footer(table: Table) -> str:
    lines = notes(table)
    return rule_text(table) + ("\n\nNotes:\n" + "\n".join(f"- {n}" for n in lines)
                               if lines else "")


def to_markdown(table: Table) -> str:
    lines = [f"| {table.row_header} | " + " | ".join(table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]
    for row in table.rows:
        lines.append(f"| {row} | " + " | ".join(fmt(table.cells[(row, c)])
                                                for c in table.columns) + " |")
    return "\n".join(lines) + "\n\n" + footer(table) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("·", r"$\cdot$"), ("−", "-"), ("†", r"$^\dagger$")):
        text = text.replace(a, b)
    return text


def _best(table: Table) -> set[tuple[str, str]]:
    """Cells to set in bold: the best (at the printed precision) of each row, or of each
    column; none where every cell of the line ties."""
    best = set()
    lines = ([(r, [(r, c) for c in table.columns]) for r in table.rows]
             if table.best_along == "row"
             else [(c, [(r, c) for r in table.rows]) for c in table.columns])
    for _, keys in lines:
        vals = [(round(table.cells[k].value, table.cells[k].digits), k) for k in keys
                if not table.cells[k].missing]
        top = max((v for v, _ in vals), default=None)
        winners = {k for v, k in vals if v == top}
        if len(winners) < len(vals):  # a line where all cells tie (or one cell) has no best
            best |= winners
    return best


def to_latex(table: Table) -> str:
    """booktabs table; the best value of each row (ablation: of each column) in bold, ± std in
    small text."""
    best = _best(table)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(table.title)}}}",
             r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
             " & ".join([_tex(table.row_header)] + [_tex(c) for c in table.columns])
             + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        cells = []
        for col in table.columns:
            cell = table.cells[(row, col)]
            if cell.missing:
                cells.append("--")
                continue
            d = cell.digits
            value = f"{cell.value:.{d}f}"
            value = rf"\textbf{{{value}}}" if (row, col) in best else value
            mark = r"$^\dagger$" if cell.partial else ""
            spread = rf"{{\small $\pm$ {cell.std:.{d}f}}}" if cell.n_seeds > 1 else ""
            cells.append(rf"{value}{spread}{mark}")
        lines.append(" & ".join([_tex(row)] + cells) + r" \\")
        if i in table.sections:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n% " + rule_text(table).replace("\n", " ") + "\n"


def to_frame(table: Table) -> pd.DataFrame:
    rows = []
    for row in table.rows:
        for col in table.columns:
            cell = table.cells[(row, col)]
            rows.append({"row": row, "column": col, "value": cell.value, "std": cell.std,
                         "n_seeds": cell.n_seeds, "expected_seeds": cell.expected,
                         "note": cell.reason})
    return pd.DataFrame(rows)


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    to_frame(table).to_csv(buf, index=False)
    return buf.getvalue()


def to_json(table: Table) -> str:
    return json.dumps({"table": table.name, "metric": table.metric, "statistic": table.stat,
                       "checkpoint": table.rule,
                       "rule": rule_text(table), "notes": notes(table),
                       "cells": to_frame(table).to_dict(orient="records")}, indent=2)


def render(table: Table, fmt_name: str) -> str:
    return {"md": to_markdown, "latex": to_latex, "csv": to_csv,
            "json": lambda t: to_json(t) + "\n"}[fmt_name](table)


# ---- comparison with published numbers ------------------------------------------------------

def _what(metric: str) -> str:
    """"win rate (%)" or "average return"."""
    m = TABLE_METRICS[metric]
    return m.noun if m.bounded else f"average {m.noun}"


def _num(v: float | None, digits: int = 1) -> str:
    return MISSING if v is None else f"{v:.{digits}f}"


def _delta(ours: float | None, paper: float | None, digits: int = 1) -> str:
    return MISSING if ours is None or paper is None else f"{ours - paper:+.{digits}f}"


def comparison_rows(comp: Comparison) -> list[list[str]]:
    d = TABLE_METRICS[comp.table.metric].digits
    rows = []
    for row in comp.table.rows:
        cells = [row]
        for col in comp.table.columns:
            ours, paper = comp.pair(row, col)
            cells += [_num(ours, d), _num(paper, d), _delta(ours, paper, d)]
        rows.append(cells)
    return rows


def comparison_note(comp: Comparison) -> str:
    """The aggregation rules of both sides and how our runs differ from the paper's: the
    backends, or for single-task tables one line per aspect the records tell."""
    doc = comp.doc
    used = f"; compared with its table{'s' if len(comp.tables_used) > 1 else ''} " \
        f"{', '.join(comp.tables_used)}" if comp.tables_used else ""
    head = (f"Ours: {rule_text(comp.table)} Paper: {doc['title']}, {doc['source']} "
            f"({doc.get('aggregation') or doc.get('metric', '')}){used}. Δ = ours − paper.")
    if not comp.differences:
        return f"{head} {comp.backend_note()}"
    return (f"{head}\n\nDifferences from the paper (read from our records):\n"
            + "\n".join(f"- {line}" for line in comp.differences))


def comparison_to_rich(comp: Comparison) -> RichTable:
    out = RichTable(title=f"Ours vs {comp.doc['title']} — {_what(comp.table.metric)}")
    out.add_column(comp.table.row_header, style="bold")
    for col in comp.table.columns:
        out.add_column(f"{col}\nours", justify="right")
        out.add_column("paper", justify="right", style="dim")
        out.add_column("Δ", justify="right")
    for row in comparison_rows(comp):
        out.add_row(*row)
    return out


def comparison_to_markdown(comp: Comparison) -> str:
    head = [comp.table.row_header] + [f"{c} {part}" for c in comp.table.columns
                                      for part in ("ours", "paper", "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in comparison_rows(comp)]
    return "\n".join(lines) + "\n\n" + comparison_note(comp) + "\n"


def comparison_to_frame(comp: Comparison) -> pd.DataFrame:
    rows = []
    for row in comp.table.rows:
        for col in comp.table.columns:
            ours, paper = comp.pair(row, col)
            rows.append({"row": row, "column": col, "ours": ours, "paper": paper,
                         "delta": None if ours is None or paper is None else ours - paper})
    return pd.DataFrame(rows)


# ---- robust statistics -------------------------------------------------------------------

_METRIC_TITLES = {"median": "Median", "iqm": "IQM", "mean": "Mean",
                  "optimality_gap": "Optimality gap"}


def _iv(iv, rep: RobustReport) -> str:
    m = TABLE_METRICS[rep.metric]
    return (f"{m.scale * iv.point:.{m.digits}f} [{m.scale * iv.low:.{m.digits}f}, "
            f"{m.scale * iv.high:.{m.digits}f}]")


def robust_rows(rep: RobustReport) -> list[list[str]]:
    return [[lab, *(_iv(rep.intervals[lab][m], rep) for m in rep.statistics),
             str(rep.n_runs[lab]), str(rep.n_tasks[lab])] for lab in rep.labels]


def _robust_head(rep: RobustReport) -> list[str]:
    return ["Algorithm", *(_METRIC_TITLES[m] for m in rep.statistics), "Seeds", "Tasks"]


def robust_note(rep: RobustReport) -> str:
    m = TABLE_METRICS[rep.metric]
    what = (f"{m.title} over every (task set, quality, test task) of complete runs" if m.bounded
            else "Average return over every (map, quality) of complete runs, not normalised "
            "across maps (a map with larger returns weighs more); no optimality gap (a return "
            "has no optimum)")
    gap = " Optimality gap: lower is better." if "optimality_gap" in rep.statistics else ""
    return (f"{what}; 95 % stratified-bootstrap intervals over seeds per task ({rep.reps} "
            f"replicates, seed {rep.seed}).{gap} P(X > Y): probability that a run "
            f"of X beats a run of Y on a task, averaged over the {rep.n_common} tasks all "
            "algorithms have.")


def robust_to_rich(rep: RobustReport) -> tuple[RichTable, RichTable]:
    agg = RichTable(title=f"Robust aggregates, {_what(rep.metric)} [95% CI]")
    for col in _robust_head(rep):
        agg.add_column(col, justify="left" if col == "Algorithm" else "right")
    for row in robust_rows(rep):
        agg.add_row(*row)
    poi = RichTable(title="Probability of improvement P(row > column) [95% CI]")
    poi.add_column("X \\ Y")
    for y in rep.labels:
        poi.add_column(y, justify="right")
    for x in rep.labels:
        poi.add_row(x, *(MISSING if x == y or (x, y) not in rep.improvement
                         else f"{rep.improvement[(x, y)].point:.2f} "
                              f"[{rep.improvement[(x, y)].low:.2f}, "
                              f"{rep.improvement[(x, y)].high:.2f}]" for y in rep.labels))
    return agg, poi


def robust_to_markdown(rep: RobustReport) -> str:
    head = _robust_head(rep)
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in robust_rows(rep)]
    lines += ["", "| P(row > column) | " + " | ".join(rep.labels) + " |",
              "|---|" + "---|" * len(rep.labels)]
    for x in rep.labels:
        cells = [MISSING if (x, y) not in rep.improvement else
                 f"{rep.improvement[(x, y)].point:.2f} [{rep.improvement[(x, y)].low:.2f}, "
                 f"{rep.improvement[(x, y)].high:.2f}]" for y in rep.labels]
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + robust_note(rep) + "\n"


def robust_to_json(rep: RobustReport) -> str:
    return json.dumps({
        "note": robust_note(rep), "metric": rep.metric, "reps": rep.reps, "seed": rep.seed,
        "aggregates": {lab: {m: vars(iv) for m, iv in rep.intervals[lab].items()}
                       for lab in rep.labels},
        "probability_of_improvement": [{"x": x, "y": y, **vars(iv)}
                                       for (x, y), iv in rep.improvement.items()],
        "seeds": rep.n_runs, "tasks": rep.n_tasks}, indent=2)
