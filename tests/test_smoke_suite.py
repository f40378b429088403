"""End to end: the shipped smoke suite through run → results → report, then a resume."""

import json
import re

import pytest
from typer.testing import CliRunner

from marlbench.cli.main import app, bare_table_flag
from marlbench.results.store import load_records

runner = CliRunner()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, root):
    work = tmp_path_factory.mktemp("smoke")
    results, data = work / "results", work / "data"
    args = ["run", str(root / "suites" / "smoke.yaml"), "--results", str(results),
            "--data-dir", str(data), "--workers", "2"]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    return results, data, first, second


def test_smoke_runs_every_job(smoke):
    results, data, first, _ = smoke
    assert first.exit_code == 0, first.output
    assert re.search(r"ran 45 job\(s\)", first.output)
    records = load_records(results)
    assert len(records) == 40  # 2 seeds × 2 checkpoints × 10 test tasks
    assert set(records["split"]) == {"seen", "unseen"}
    manifests = [json.loads(p.read_text()) for p in data.glob("smax/*/scripted/*/manifest.json")]
    assert sorted(m["task"] for m in manifests) == ["10m", "3m", "5m"]


def test_second_run_does_no_work(smoke):
    _, _, _, second = smoke
    assert second.exit_code == 0, second.output
    assert "ran 0 job(s)" in second.output and "45 already done" in second.output


def test_report_table_has_real_numbers(smoke):
    results = smoke[0]
    out = runner.invoke(app, bare_table_flag(["report", str(results), "--table", "--format",
                                              "md"]))
    assert out.exit_code == 0, out.output
    cells = re.findall(r"\| (Seen · Marine-Easy|Seen · Mean|Unseen · Mean|Total Mean) \| "
                       r"([\d.]+) ± ([\d.]+) \|", out.output)
    assert len(cells) == 4
    records = load_records(results)
    final = records[records["step"] == records["step"].max()]
    assert final["win_rate"].nunique() > 1  # not a constant table
    assert final["win_rate"].max() > 0.1  # BC of the scripted data wins somewhere
    for fmt in ("rich", "csv", "json", "latex"):
        for table in ("main", "quality", "task", "ablation"):
            res = runner.invoke(app, ["report", str(results), "--table", table, "-f", fmt])
            assert res.exit_code == 0, res.output


def test_report_on_empty_dir_is_a_clear_error(tmp_path):
    out = runner.invoke(app, bare_table_flag(["report", str(tmp_path), "--table"]))
    assert out.exit_code == 2 and "no evaluation records" in out.output


def test_smoke_passes_the_committed_baseline(smoke, root, tmp_path):
    """The CI regression gate: a change that breaks learning drops a cell below the committed
    baseline by more than CPU noise (10 points; same machine, same numbers) and fails here."""
    import xml.etree.ElementTree as ET

    results = smoke[0]
    junit = tmp_path / "check.xml"
    out = runner.invoke(app, ["check", str(results), "--baseline",
                              str(root / "results" / "baselines" / "smoke.json"),
                              "--tolerance", "10", "--junit", str(junit)])
    assert out.exit_code == 0, out.output
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 4
