"""`marlbench baseline save` / `marlbench check`: the regression gate on hand-made results."""

import xml.etree.ElementTree as ET

import pytest
from results_fixture import eval_id, write_eval, write_plan
from test_aggregate import _records
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.results.aggregate import main_table
from marlbench.results.baseline import baseline_doc, check

runner = CliRunner()


def _results(root, groups, failed=()):
    """A results directory with one eval job per group of records (and a plan naming them)."""
    jobs = {}
    for i, group in enumerate(groups):
        jid = eval_id(i)
        write_eval(root, jid, group)
        jobs[jid] = {"kind": "eval", "title": f"eval {i}"}
    for j, title in enumerate(failed):
        jid = eval_id("failed", j)
        write_eval(root, jid, None, state="failed")
        jobs[jid] = {"kind": "eval", "title": title}
    write_plan(root, jobs, ["A", "B"], ["marine_easy"], ["q"], [1, 2])
    return root


def _groups(a_seen=0.8, b_seen=0.4):
    return [_records("A", "marine_easy", "q", 1, a_seen, 0.5),
            _records("A", "marine_easy", "q", 2, a_seen - 0.2, 0.3),
            _records("B", "marine_easy", "q", 1, b_seen, 0.2)]


def _table(groups):
    import pandas as pd

    return main_table(pd.DataFrame([r for g in groups for r in g]))


def test_baseline_cells_carry_mean_std_seeds_and_standard_error():
    doc = baseline_doc(_table(_groups()), "s", [])
    cell = next(c for c in doc["cells"] if (c["scenario"], c["label"])
                == ("Seen · Marine-Easy", "A"))
    assert cell["mean"] == pytest.approx(70.0) and cell["std"] == pytest.approx(10.0)
    assert cell["n_seeds"] == 2 and cell["se"] == pytest.approx(10.0 / 2**0.5)


def test_tolerance_and_sigma_allowances():
    base = baseline_doc(_table(_groups()), "s", [])
    same = check(_table(_groups()), base, tolerance=5.0, sigma=None, failed_jobs=[])
    assert same.ok
    worse = check(_table(_groups(a_seen=0.7)), base, tolerance=5.0, sigma=None, failed_jobs=[])
    bad = [(c.scenario, c.label) for c in worse.cells if not c.ok]
    assert ("Seen · Marine-Easy", "A") in bad and not worse.ok
    # the same 10-point drop is within 2 combined standard errors of A's two seeds
    lenient = check(_table(_groups(a_seen=0.7)), base, tolerance=5.0, sigma=2.0, failed_jobs=[])
    assert all(c.ok for c in lenient.cells if c.label == "A")
    missing = check(_table(_groups()[:2]), base, tolerance=5.0, sigma=None, failed_jobs=[])
    assert any("missing" in c.reason for c in missing.cells if c.label == "B")
    assert not check(_table(_groups()), base, 5.0, None, ["eval x (failed)"]).ok


def test_check_cli_exit_codes_junit_and_summary(tmp_path):
    good = _results(tmp_path / "good", _groups())
    base = tmp_path / "baselines" / "s.json"
    saved = runner.invoke(app, ["baseline", "save", str(good), "--to", str(base)])
    assert saved.exit_code == 0, saved.output
    ok = runner.invoke(app, ["check", str(good), "--baseline", str(base)])
    assert ok.exit_code == 0, ok.output
    degraded = _results(tmp_path / "bad", _groups(a_seen=0.3), failed=["eval B 3m (failed)"])
    junit, summary = tmp_path / "j.xml", tmp_path / "s.md"
    res = runner.invoke(app, ["check", str(degraded), "--baseline", str(base), "--junit",
                              str(junit), "--summary", str(summary)])
    assert res.exit_code == 1, res.output
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and int(suite.get("failures")) >= 2
    assert "## marlbench check FAILED" in summary.read_text()
    missing = runner.invoke(app, ["check", str(good), "--baseline", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
