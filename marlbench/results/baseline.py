"""Baselines and the regression gate: per-cell statistics of a results directory, saved to JSON
and compared with a later run (``marlbench baseline save`` / ``marlbench check``).

A cell is one (scenario row, algorithm label) of the main table (win rate, %) or, for a
return baseline, of the ``returns-quality`` table (map · quality, average return): mean and
std across seeds of the per-seed value, the number of seeds and the standard error. A cell
fails when it is missing (not run, failed or still running) or when it dropped below the
baseline by more than the allowed drop: ``tolerance`` (in the metric's units: win-rate points,
or return), or, with ``sigma``, the larger of ``tolerance`` and ``sigma`` combined standard
errors.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from marlbench import __version__
from marlbench.errors import UserError
from marlbench.fileio import read_validated, require_file, write_json
from marlbench.results.aggregate import METRICS, Cell, Table
from marlbench.results.schemas import BaselineFile

FORMAT = "marlbench-baseline/1"
TABLE_OF_METRIC = {"win_rate": "main", "return": "returns-quality"}  # the table a baseline holds
# the default allowed drop per cell: 5 win-rate points; 0.5 of a return (rware returns run
# about 4–18, SMAC's 20-scaled ones up to 20: a few % of a map's return)
DEFAULT_TOLERANCE = {"win_rate": 5.0, "return": 0.5}


def _se(std: float | None, n: int) -> float:
    return 0.0 if std is None or n <= 1 else std / math.sqrt(n)


def baseline_doc(table: Table, suite: str | None, failed: list[str]) -> dict:
    """Every complete cell of ``table`` (scenario = its row, label = its column), with the
    table's metric."""
    cells = []
    for (row, label), cell in table.cells.items():
        if cell.missing:
            continue
        cells.append({"scenario": row, "label": label, "mean": cell.value, "std": cell.std,
                      "n_seeds": cell.n_seeds, "se": _se(cell.std, cell.n_seeds)})
    if not cells:
        raise UserError("no complete cell to save: the results have no finished run")
    return {"format": FORMAT, "suite": suite, "checkpoint": table.rule, "metric": table.metric,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "marlbench": __version__,
            "failed_jobs_at_save": failed, "cells": cells}


def save_baseline(path: Path, doc: dict) -> None:
    write_json(path, doc, sort_keys=False)


def load_baseline(path: Path) -> dict:
    """A baseline file checked against its schema: at least one cell, every value finite
    (a baseline that could pass anything is refused)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"baseline {path} does not exist; make one with "
                        "`marlbench baseline save RESULTS --to FILE`")
    require_file(path, "baseline")
    return read_validated(path, BaselineFile, "baseline").model_dump()


def check_allowance(tolerance: float, sigma: float | None) -> None:
    """The gate's allowance must be a finite, non-negative number of points / standard
    errors (NaN would pass every cell; a negative one fails unchanged cells)."""
    for name, value in (("--tolerance", tolerance), ("--sigma", sigma)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UserError(f"{name} must be a finite number ≥ 0 (got {value})")


@dataclass
class CellCheck:
    scenario: str
    label: str
    baseline: float
    current: float | None
    allowed_drop: float
    reason: str  # "" when it passes

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def delta(self) -> float | None:
        return None if self.current is None else self.current - self.baseline


@dataclass
class CheckResult:
    cells: list[CellCheck]
    failed_jobs: list[str]
    metric: str = "win_rate"

    @property
    def digits(self) -> int:
        return METRICS[self.metric].digits

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cells) and not self.failed_jobs


def check(table: Table, baseline: dict, tolerance: float, sigma: float | None,
          failed_jobs: list[str]) -> CheckResult:
    """Every baseline cell against the table; a cell that cannot be compared (missing, not a
    finite number) fails."""
    check_allowance(tolerance, sigma)
    if baseline.get("metric", "win_rate") != table.metric:
        raise UserError(f"the baseline holds {baseline.get('metric', 'win_rate')} cells, the "
                        f"table {table.metric}: save the baseline again")
    checks = []
    for ref in baseline["cells"]:
        key = (ref["scenario"], ref["label"])
        cell = table.cells.get(key, Cell(None, None, 0))
        allowed = tolerance
        if sigma is not None and not cell.missing:
            se = math.hypot(ref.get("se", 0.0), _se(cell.std, cell.n_seeds))
            allowed = max(tolerance, sigma * se)
        if cell.missing:
            reason = "missing (not run, failed or still running)"
        elif not math.isfinite(cell.value):
            reason = f"cannot be compared (value {cell.value})"
        elif cell.value < ref["mean"] - allowed:
            d = METRICS[table.metric].digits
            reason = f"dropped {ref['mean'] - cell.value:.{d}f} > {allowed:.{d}f} allowed"
        else:
            reason = ""
        checks.append(CellCheck(key[0], key[1], ref["mean"], cell.value, allowed, reason))
    return CheckResult(checks, failed_jobs, table.metric)


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def summary_markdown(result: CheckResult, baseline_path: str) -> str:
    verdict = "passed" if result.ok else "FAILED"
    bad = sum(not c.ok for c in result.cells)
    lines = [f"## marlbench check {verdict}", "",
             f"{len(result.cells)} cells against `{baseline_path}`: {bad} failing; "
             f"{len(result.failed_jobs)} failed jobs.", "",
             "| Scenario | Algorithm | Baseline | Now | Δ | Allowed drop | Result |",
             "|---|---|---|---|---|---|---|"]
    d = result.digits
    for c in result.cells:
        delta = "—" if c.delta is None else f"{c.delta:+.{d}f}"
        lines.append(f"| {c.scenario} | {c.label} | {c.baseline:.{d}f} | "
                     f"{_fmt(c.current, d)} | {delta} | {c.allowed_drop:.{d}f} | "
                     f"{'ok' if c.ok else c.reason} |")
    if result.failed_jobs:
        lines += ["", "Failed jobs:", *[f"- {j}" for j in result.failed_jobs]]
    return "\n".join(lines) + "\n"


def junit_xml(result: CheckResult) -> str:
    failures = sum(not c.ok for c in result.cells) + len(result.failed_jobs)
    suite = ET.Element("testsuite", name="marlbench check",
                       tests=str(len(result.cells) + len(result.failed_jobs)),
                       failures=str(failures), errors="0")
    for c in result.cells:
        case = ET.SubElement(suite, "testcase", classname=c.label, name=c.scenario)
        if not c.ok:
            f = ET.SubElement(case, "failure", message=c.reason)
            d = result.digits
            f.text = (f"baseline {c.baseline:.{d}f}, now {_fmt(c.current, d)}, "
                      f"allowed drop {c.allowed_drop:.{d}f}")
    for job in result.failed_jobs:
        case = ET.SubElement(suite, "testcase", classname="jobs", name=job)
        ET.SubElement(case, "failure", message="job failed")
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode",
                       xml_declaration=True)
