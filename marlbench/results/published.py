"""Published result tables as data (``results/published/<name>.json``) and side-by-side
comparison of a main table with them.

Each file states its source, backend, metric and aggregation; its ``tables`` map a table name
to ``cells[row][column]`` (a number, or ``{"mean", "std"}``). Rows and columns use marlbench's
row titles and algorithm labels, so a cell of ``marlbench report`` meets its published
counterpart by name.

The single-task tables (``returns``, ``returns-quality``) meet them by what a cell is instead:
a published row or column naming a map (``tiny-2ag`` is ``rware-tiny-2ag``), optionally with
a data quality (``5m_vs_6m · good``; G / M / P are good / medium / poor), is paired with our
cell of that (label, map, quality), whichever way either table is laid out. Such comparisons
state how our records differ from the paper's evaluation contract (``CONTRACTS``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

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
    differences: list[str] = field(default_factory=list)  # how ours ran vs the paper

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


def compare(table: Table, name: str, backends: list[str],
            records: pd.DataFrame | None = None,
            datasets: dict[str, list[str]] | None = None) -> Comparison:
    """``name`` is a published file, optionally ``name:table`` to use one of its tables only
    (e.g. ``stairs-former:smacv2``). A single-task table (one with cell coordinates) meets the
    published cells by (label, map, quality); then ``records`` (ours) and ``datasets`` (train
    job id → its dataset folders) say how our runs differ from the paper's contract."""
    name, _, only = name.partition(":")
    doc = load_published(name)
    if only:
        if only not in doc["tables"]:
            raise UserError(f"{name} has no table {only!r}; choose one of: "
                            f"{', '.join(doc['tables'])}")
        doc = {**doc, "tables": {only: doc["tables"][only]}}
    if table.coords:
        sources, unpaired = pair_by_coords(table, doc)
    else:
        sources, unpaired = published_sources(doc, table.families), []
    used = list(dict.fromkeys(src for key, (src, _) in sources.items() if key in table.cells))
    result = Comparison(table, {key: value for key, (_, value) in sources.items()}, doc,
                        sorted(set(backends)), used)
    if result.matched == 0:
        hint = ("" if table.coords or not published_entries(doc) else
                f"; {name}'s tables are of single-task maps: use --table returns or "
                "returns-quality")
        raise UserError(f"no cell of this table has a published counterpart in {name!r} "
                        f"(its columns: {', '.join(sorted({c for _, c in result.published}))}); "
                        f"label your algorithms as the paper does{hint}")
    if table.coords:
        maps: dict[str, set[str]] = {}
        for key, (src, _) in sources.items():
            if key in table.coords:
                maps.setdefault(src, set()).add(table.coords[key].task_set)
        result.differences = unpaired + contract_differences(
            name, maps, records if records is not None else pd.DataFrame(), datasets or {})
    return result


# ---- single-task tables: cells met by (label, map, quality) ---------------------------------

QUALITY_ALIASES = {"G": "good", "M": "medium", "P": "poor", "E": "expert"}


def resolve_map(name: str) -> str | None:
    """The single-task set a published map name means: itself, or the one set whose name ends
    with ``-<name>`` (``tiny-2ag`` → ``rware-tiny-2ag``); None when none (or several) fit."""
    from marlbench.envs.tasksets import SINGLE_TASK_SETS

    if name in SINGLE_TASK_SETS:
        return name
    fits = [t for t in SINGLE_TASK_SETS if t.endswith(f"-{name}")]
    return fits[0] if len(fits) == 1 else None


def _place(name: str) -> tuple[str, str | None] | None:
    """(task set, quality or None) of a published ``map`` or ``map · quality`` name."""
    parts = [p.strip() for p in name.split("·")]
    task_set = resolve_map(parts[0])
    if task_set is None or len(parts) > 2:
        return None
    quality = QUALITY_ALIASES.get(parts[1], parts[1]) if len(parts) == 2 else None
    return task_set, quality


def published_entries(doc: dict) -> list[tuple[str, str, str, str | None, float]]:
    """Every published cell whose row or column names a map: (table, label, task set,
    quality or None, value). Maps marlbench does not know are left out."""
    out = []
    for table_name, table in doc["tables"].items():
        for row, cols in table["cells"].items():
            for col, v in cols.items():
                by_row, by_col = _place(row), _place(col)
                if (by_row is None) == (by_col is None):
                    continue
                label, (task_set, quality) = (col, by_row) if by_row else (row, by_col)
                out.append((table_name, label, task_set, quality, _value(v)))
    return out


def pair_by_coords(table: Table, doc: dict
                   ) -> tuple[dict[tuple[str, str], tuple[str, float]], list[str]]:
    """Our (row, column) → (published table, value), and a line for each published map that
    names no data quality where ours has several (left unpaired, not guessed)."""
    ours = {coord: key for key, coord in table.coords.items()}
    held: dict[tuple[str, str], set[str]] = {}  # (label, task set) → qualities with data
    rows: dict[tuple[str, str], set[str]] = {}
    for key, (label, task_set, quality) in table.coords.items():
        rows.setdefault((label, task_set), set()).add(quality)
        if not table.cells[key].missing:
            held.setdefault((label, task_set), set()).add(quality)
    pairs: dict[tuple[str, str], tuple[str, float]] = {}
    ambiguous: dict[str, set[str]] = {}
    for table_name, label, task_set, quality, value in published_entries(doc):
        if quality is None:
            options = held.get((label, task_set)) or rows.get((label, task_set), set())
            if len(options) > 1:
                ambiguous.setdefault(task_set, set()).update(options)
                continue
            quality = next(iter(options), None)
        key = ours.get((label, task_set, quality))
        if key is not None:
            pairs.setdefault(key, (table_name, value))
    notes = [f"{t}: the paper's table names no data quality and ours has several "
             f"({', '.join(sorted(q))}); not paired" for t, q in ambiguous.items()]
    return pairs, notes


# ---- how the published numbers were evaluated, and how ours differ ------------------------

@dataclass(frozen=True)
class Contract:
    """A published table's evaluation contract (protocol.md §8.4, environments.md §6)."""

    backend: str  # a BACKEND_NAMES key
    data: str  # the data its methods were trained on
    data_source: str | None  # marlbench's importer of that data (``data import <source>``)
    episodes: int | None  # evaluation episodes per run
    reward: str | None = None  # the warehouse's reward contract (rware | alberdice)
    actions: str | None = None  # greedy | sampled (None: not stated)


CONTRACTS = {
    ("mads4", "rware"): Contract(
        "rware", "AlberDICE's data (1000 trajectories per map collected on rware 1.0.3)",
        "alberdice", 30, reward="alberdice", actions="sampled"),
    ("mads4", "smac"): Contract(
        "sc2", "MADT's MAPPO-collected data (OMIGA's 1000-trajectory subset)", None, 30),
}
REWARDS = {"rware": "rware's delivery rewards summed over the agents",
           "alberdice": "agent 0's shaped reward (AlberDICE's contract)"}


def _col(ours: pd.DataFrame, name: str) -> pd.Series:
    """A record column, all None where the records lack it (older records)."""
    return ours[name] if name in ours else pd.Series([None] * len(ours), dtype=object)


def _counts(values: pd.Series) -> str:
    counts = Counter("not recorded" if pd.isna(v) else str(v) for v in values)
    return ", ".join(f"{v} ({n} records)" if len(counts) > 1 else v
                     for v, n in counts.most_common())


def _backend_line(ours: pd.DataFrame, c: Contract) -> str:
    backends = sorted(set(_col(ours, "backend").dropna()))
    if c.backend == "rware" and backends == ["rware"]:
        versions = sorted({v.get("rware") for v in _col(ours, "versions")
                           if isinstance(v, dict) and v.get("rware")})
        ver = f" {', '.join(versions)}" if versions else " 2.x"
        return (f"backend: ours rware{ver} (the PyPI package's dynamics), as MADS4 evaluates "
                "(rware 2.0); the paper's data came from rware 1.0.3 (the same step logic, "
                "not episode-for-episode identical)")
    if backends == [c.backend]:
        return f"backend: {BACKEND_NAMES.get(c.backend, c.backend)}, as the paper"
    names = ", ".join(BACKEND_NAMES.get(b, b) for b in backends) or "not recorded"
    return (f"backend: ours {names}, the paper {BACKEND_NAMES.get(c.backend, c.backend)}; "
            "the differences compare settings, they are not a reproduction check")


def _reward_line(ours: pd.DataFrame, c: Contract) -> str | None:
    if c.reward is None:
        return None
    values = _col(ours, "reward")
    theirs = f"the paper's returns are {REWARDS[c.reward]}: reward {c.reward!r}"
    if len(values) and (values == c.reward).all():
        return f"reward: {REWARDS[c.reward]}, the paper's contract"
    if (values == "rware").any() and c.reward != "rware":
        n = int((values == "rware").sum())
        return (f"reward: NOT COMPARABLE — {n} of {len(values)} records used reward 'rware' "
                f"({REWARDS['rware']}); {theirs}")
    return f"reward: ours {_counts(values)}; {theirs}"


def _actions_line(ours: pd.DataFrame, c: Contract) -> str | None:
    if c.actions is None:
        return None
    values = _col(ours, "action_selection")
    if len(values) and (values == c.actions).all():
        return f"action selection: {c.actions}, as the paper"
    older = " (older records: marlbench evaluated greedily then)" if values.isna().any() else ""
    return f"action selection: ours {_counts(values)}{older}, the paper {c.actions}"


def _episodes_line(ours: pd.DataFrame, c: Contract) -> str | None:
    if c.episodes is None:
        return None
    counts = sorted({int(e) for e in _col(ours, "episodes").dropna()})
    if counts == [c.episodes]:
        return f"evaluation episodes: {c.episodes} per run, as the paper"
    return (f"evaluation episodes: ours {', '.join(map(str, counts)) or 'not recorded'} per "
            f"map and seed, the paper {c.episodes}")


def data_origin(folder: str) -> str:
    """``marlbench`` for a dataset marlbench collected (``<backend>/<task>/<quality>/
    dataset-<id>``), else the importer's source (``alberdice/<task>/<quality>/<run>``)."""
    parts = folder.split("/")
    return "marlbench" if parts[-1].startswith("dataset-") else parts[0]


def _data_line(ours: pd.DataFrame, c: Contract, datasets: dict[str, list[str]]) -> str:
    folders = [f for tid in _col(ours, "config_hash").dropna().unique()
               for f in datasets.get(tid, [])]
    if not folders:
        return (f"data: ours not known here (the train jobs' job.json are not in these results "
                f"directories); the paper's: {c.data}")
    origins = sorted({data_origin(f) for f in folders})
    if origins == [c.data_source]:
        return f"data: the paper's own, imported ({c.data_source}): {c.data}"
    said = ", ".join("collected by marlbench" if o == "marlbench" else f"imported from {o}"
                     for o in origins)
    return f"data: ours {said}; the paper's: {c.data} (different datasets)"


def contract_differences(name: str, maps: dict[str, set[str]], records: pd.DataFrame,
                         datasets: dict[str, list[str]]) -> list[str]:
    """One line per published table used (``maps``: table → our maps that met it) and aspect
    (backend, reward, action selection, evaluation episodes, data), from our records."""
    lines = []
    for table_name, sets in maps.items():
        c = CONTRACTS.get((name, table_name))
        if c is None:
            continue
        ours = records[records["task_set"].isin(sets)] if not records.empty else records
        if ours.empty:
            lines.append(f"{table_name}: no records to compare the evaluation with")
            continue
        for line in (_backend_line(ours, c), _reward_line(ours, c), _actions_line(ours, c),
                     _episodes_line(ours, c), _data_line(ours, c, datasets)):
            if line:
                lines.append(f"{table_name}: {line}")
    return lines


