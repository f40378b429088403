"""One self-contained HTML report: every table, the figures inlined as base64 PNG, the robust
statistics, the suites, versions and the aggregation rules."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from marlbench import __version__
from marlbench.results import render
from marlbench.results.aggregate import Table

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #444}
td.best{font-weight:bold}
.note{color:#555;font-size:13px;max-width:900px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
"""


def table_html(table: Table) -> str:
    best = render._best(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [table.row_header, *table.columns])
    body = []
    for row in table.rows:
        tds = [f"<td>{html.escape(row)}</td>"]
        for col in table.columns:
            cls = ' class="best"' if (row, col) in best else ""
            tds.append(f"<td{cls}>{html.escape(render.fmt(table.cells[(row, col)]))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in render.notes(table))
    return (f"<h2>{html.escape(table.title)}</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            + (f"<ul class='note'>{notes}</ul>" if notes else ""))


def image_html(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def markdown_block(text: str) -> str:
    """A Markdown pipe table (as the renderers write them) as an HTML table."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    rest = "\n".join(ln for ln in text.splitlines() if not ln.startswith("|")).strip()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if "---" not in ln]
    out = []
    for i, r in enumerate(rows):
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r) + "</tr>")
    return f"<table>{''.join(out)}</table><p class='note'>{html.escape(rest)}</p>"


def write_html(path: Path, tables: list[Table], figures: list[Path], robust_md: str | None,
               plans: list[dict], versions: list[str], results_dirs: list[Path],
               merge_note: str | None = None) -> None:
    where = ", ".join(str(d) for d in results_dirs)
    parts = [f"<h1>marlbench report</h1><p class='note'>Results: {html.escape(where)}"
             f" · written {time.strftime('%Y-%m-%d %H:%M')} by marlbench {__version__}</p>"]
    if merge_note:
        parts.append(f"<p class='note'>{html.escape(merge_note)}</p>")
    if tables:
        parts.append(f"<p class='note'>{html.escape(render.rule_text(tables[0]))}</p>")
    parts += [table_html(t) for t in tables]
    if robust_md:
        parts.append("<h2>Robust statistics</h2>" + markdown_block(robust_md))
    if figures:
        parts.append("<h2>Figures</h2>" + "".join(image_html(f) for f in figures
                                                  if f.suffix == ".png"))
    parts.append("<h2>Suites</h2>")
    for plan in plans:
        info = {k: plan.get(k) for k in ("suite", "profile", "task_sets", "qualities", "seeds",
                                         "labels", "checkpoint", "created")}
        parts.append(f"<pre>{html.escape(json.dumps(info, indent=2))}</pre>")
    parts.append("<h2>Versions</h2><pre>" + html.escape("\n".join(versions) or "unknown")
                 + "</pre>")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>marlbench report</title>"
           f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(doc)
