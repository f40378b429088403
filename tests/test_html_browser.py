"""The HTML report opened in a real headless browser (Chromium driven by Playwright): its
tables are laid out and every figure decodes and has a size. Skipped where no Chromium is
installed (`.ci/run` installs Debian's chromium; elsewhere set MARLBENCH_CHROMIUM)."""

import pytest
from test_figures import _curve_results
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.results.browser import find_chromium, render_report

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")


def test_html_report_renders_tables_and_figures_in_chromium(tmp_path):
    res = _curve_results(tmp_path / "r")
    html = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", str(res), "--html", str(html), "--reps", "50"])
    assert out.exit_code == 0, out.output
    shot = tmp_path / "report.png"
    seen = render_report(html, screenshot=shot)
    assert seen["title"] == "marlbench report"
    for heading in ("Average win rate (%)", "Win rate (%) per data quality",
                    "Win rate (%) per test task", "Ablation: average win rate (%)",
                    "Robust statistics", "Figures", "Suites", "Versions"):
        assert heading in seen["headings"]
    assert len(seen["tables"]) >= 5
    assert all(t["rows"] >= 2 and t["width"] > 100 and t["height"] > 20 for t in seen["tables"])
    assert len(seen["images"]) == 4
    for img in seen["images"]:  # decoded by the browser, laid out at a visible size
        assert img["complete"] and img["w"] > 200 and img["h"] > 100, img
        assert img["shownWidth"] > 200, img
    assert seen["bold"] and all(int(w) >= 600 for w in seen["bold"])
    assert seen["pageWidth"] <= 1200  # fits the window: no horizontal scrolling
    assert seen["failed_requests"] == []  # self-contained: nothing fetched
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000


def test_report_screenshot_option(tmp_path):
    res = _curve_results(tmp_path / "r")
    html, shot = tmp_path / "report.html", tmp_path / "shot" / "report.png"
    out = CliRunner().invoke(app, ["report", str(res), "--html", str(html), "--reps", "50",
                                   "--screenshot", str(shot)])
    assert out.exit_code == 0, out.output
    assert "4 figures" in out.output and "5 tables" in out.output
    assert shot.read_bytes()[:4] == b"\x89PNG"
