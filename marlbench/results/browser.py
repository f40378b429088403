"""Open an HTML report in headless Chromium (driven by Playwright) and say what it rendered:
headings, tables with their laid-out size, images as the browser decoded them; optionally a
full-page screenshot. Uses the system's Chromium; nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from marlbench.errors import UserError

# A closed network: no background connections; no sandbox (CI containers run as root).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_PROBE = """() => ({
    title: document.title,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    tables: [...document.querySelectorAll('table')].map(t => ({
        rows: t.rows.length, width: t.getBoundingClientRect().width,
        height: t.getBoundingClientRect().height})),
    images: [...document.images].map(i => ({
        alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
        shownWidth: i.getBoundingClientRect().width})),
    bold: [...document.querySelectorAll('td.best')].map(td => getComputedStyle(td).fontWeight),
    pageWidth: document.documentElement.scrollWidth,
})"""


def find_chromium() -> str | None:
    """``$MARLBENCH_CHROMIUM``, else chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("MARLBENCH_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                               "google-chrome")) if p), None)


def render_report(html: Path, screenshot: Path | None = None, width: int = 1200
                  ) -> dict[str, Any]:
    """Load ``html`` in headless Chromium; return what the browser laid out, and the URLs of
    any requests that failed (a self-contained page makes none)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError("rendering the report needs playwright: pip install playwright "
                        "(it drives the system Chromium; no browser is downloaded)") from None
    exe = find_chromium()
    if exe is None:
        raise UserError("no Chromium found: install it (Debian: apt-get install chromium) or "
                        "set MARLBENCH_CHROMIUM to its path")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            seen = page.evaluate(_PROBE)
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            seen["failed_requests"] = failed
            return seen
        finally:
            browser.close()
