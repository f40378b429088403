"""Published result tables as data (``results/published/<name>.json``) and side-by-side
comparison of a main table with them.

Each file states its source, backend, metric and aggregation; its ``tables`` map a table name
to ``cells[row][column]`` (a number, or ``{"mean", "std"}``). Rows and columns use marlbench's
row titles and algorithm labels, so a cell of ``marlbench report`` meets its published
counterpart by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from marlbench.errors import UserError
from marlbench.results.aggregate import CROSS_ROWS, Table, family_prefix

BACKEND_NAMES = {"smax": "the embedded SMAX simulator", "sc2": "StarCraft II",
                 "smacv2": "StarCraft II (SMACv2)"}


def published_dir() -> Path:
    """``$MARLBENCH_PUBLISHED``, else ``results/published`` here, else the one shipped with
    the source tree."""
    env = os.environ.get("MARLBENCH_PUBLISHED")
    if env:
        return Path(env)
    local = Path("results/published")
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "results" / "published"


def available() -> list[str]:
    return sorted(p.stem for p in published_dir().glob("*.json"))


def load_published(name: str) -> dict:
    """A published file, checked against its schema (every value a finite number)."""
    from marlbench.fileio import is_safe_name, read_validated
    from marlbench.results.schemas import PublishedFile

    path = published_dir() / f"{name}.json"
    if not is_safe_name(name) or not path.is_file():
        choices = ", ".join(available()) or f"(none found in {published_dir()})"
        raise UserError(f"no published numbers named {name!r}; choose one of: {choices}")
    return read_validated(path, PublishedFile, "published table").model_dump(exclude_none=True)


def _value(v: float | dict) -> float:
    return float(v["mean"]) if isinstance(v, dict) else float(v)


def published_sources(doc: dict, families: list[str] | None = None
                      ) -> dict[tuple[str, str], tuple[str, float]]:
    """Every (row, column) of every table of a published file with the table that gave it and
    its value, first table winning. A table tagged with a task set family (``"family":
    "smacv2"``) meets only that family's cells: it is skipped when our table lacks the family,
    and its Mean rows (or columns) take the family prefix our table gives them when it holds
    several families."""
    several = bool(families) and len(families) > 1
    cross = {r for _, r in CROSS_ROWS}
    cells: dict[tuple[str, str], tuple[str, float]] = {}
    for table_name, table in doc["tables"].items():
        fam = table.get("family")
        if fam and families and fam not in families:
            continue
        prefix = family_prefix(fam, several) if fam else ""

        def name(x: str, prefix: str = prefix) -> str:
            return prefix + x if x in cross else x

        for row, cols in table["cells"].items():
            for col, v in cols.items():
                cells.setdefault((name(row), name(col)), (table_name, _value(v)))
    return cells


def published_cells(doc: dict, families: list[str] | None = None
                    ) -> dict[tuple[str, str], float]:
    """``published_sources`` without the table names: (row, column) → value."""
    return {key: value for key, (_, value) in published_sources(doc, families).items()}


@dataclass
class Comparison:
    table: Table
    published: dict[tuple[str, str], float]
    doc: dict
    backends: list[str]
    tables_used: list[str] = field(default_factory=list)  # published tables that met ours

    def pair(self, row: str, col: str) -> tuple[float | None, float | None]:
        cell = self.table.cells[(row, col)]
        return cell.value, self.published.get((row, col))

    @property
    def matched(self) -> int:
        return sum(1 for key in self.table.cells if key in self.published)

    def backend_note(self) -> str:
        theirs = self.doc.get("backend", "?")
        ours = ", ".join(BACKEND_NAMES.get(b, b) for b in self.backends) or "?"
        if set(self.backends) == {theirs}:
            return f"Same backend as the paper ({BACKEND_NAMES.get(theirs, theirs)})."
        return (f"Backends differ: these results ran on {ours}, the published numbers on "
                f"{BACKEND_NAMES.get(theirs, theirs)}. Differences compare settings; they are "
                "not a reproduction check.")


def compare(table: Table, name: str, backends: list[str]) -> Comparison:
    """``name`` is a published file, optionally ``name:table`` to use one of its tables only
    (e.g. ``stairs-former:smacv2``)."""
    name, _, only = name.partition(":")
    doc = load_published(name)
    if only:
        if only not in doc["tables"]:
            raise UserError(f"{name} has no table {only!r}; choose one of: "
                            f"{', '.join(doc['tables'])}")
        doc = {**doc, "tables": {only: doc["tables"][only]}}
    sources = published_sources(doc, table.families)
    used = list(dict.fromkeys(src for key, (src, _) in sources.items() if key in table.cells))
    result = Comparison(table, {key: value for key, (_, value) in sources.items()}, doc,
                        sorted(set(backends)), used)
    if result.matched == 0:
        raise UserError(f"no cell of this table has a published counterpart in {name!r} "
                        f"(its columns: {', '.join(sorted({c for _, c in result.published}))}); "
                        "label your algorithms as the paper does")
    return result
