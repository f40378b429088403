"""`report --plots` and `report --html` on hand-made results."""

import base64
from html.parser import HTMLParser

from test_aggregate import _records
from test_check import _results
from typer.testing import CliRunner

from marlbench.cli.main import app


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _curve_results(root):
    groups = []
    for step, bump in ((0, 0.0), (50, 0.2), (100, 0.4)):
        for seed in (1, 2):
            groups.append(_records("A", "marine_easy", "q", seed, 0.3 + bump, 0.1 + bump,
                                   step=step))
            groups.append(_records("B", "marine_easy", "q", seed, 0.2, 0.1, step=step))
    return _results(root, groups)


def test_plots_write_png_and_svg(tmp_path):
    res = _curve_results(tmp_path / "r")
    out = CliRunner().invoke(app, ["report", str(res), "--plots", str(tmp_path / "f"),
                                   "--reps", "50"])
    assert out.exit_code == 0, out.output
    names = {p.name for p in (tmp_path / "f").iterdir()}
    for stem in ("learning_curves", "seen_unseen_total", "performance_profiles",
                 "probability_of_improvement"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
        assert (tmp_path / "f" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"


def test_html_report_is_self_contained_with_tables_and_figures(tmp_path):
    res = _curve_results(tmp_path / "r")
    page = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", str(res), "--html", str(page), "--reps", "50"])
    assert out.exit_code == 0, out.output
    parsed = _Collect()
    parsed.feed(page.read_text())
    text = " ".join(parsed.text)
    assert parsed.tags.count("table") >= 5  # four tables + robust statistics
    for title in ("Average win rate (%)", "Win rate (%) per data quality",
                  "Win rate (%) per test task", "Ablation: average win rate (%)",
                  "Robust statistics", "Suites", "Versions"):
        assert title in text
    assert len(parsed.images) == 4
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert "http" not in "".join(parsed.images)  # nothing fetched from elsewhere
