"""Several results directories merged into one report (seeds run on different machines)."""

import json

import pytest
from results_fixture import eval_id, status, write_eval, write_plan
from test_aggregate import _records
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.cli.report import table_of
from marlbench.errors import UserError
from marlbench.results.store import load_results

runner = CliRunner()
SEEDS = [1, 2]


def _run_dir(root, done, failed=(), config="c"):
    """A results directory whose plan names every (label, seed) of SEEDS × {A, B}; only the
    runs in ``done`` (label, seed, seen, unseen) were evaluated there, ``failed`` ones failed.
    ``config`` enters the job ids: equal configs give equal ids, as the real planner does."""
    jobs = {}
    for label in ("A", "B"):
        for seed in SEEDS:
            jid = eval_id(label, seed, config)
            jobs[jid] = {"kind": "eval", "title": f"eval {label} s{seed}", "label": label,
                         "task_set": "marine_easy", "quality": "q", "seed": seed}
    for label, seed, seen, unseen in done:
        write_eval(root, eval_id(label, seed, config),
                   _records(label, "marine_easy", "q", seed, seen, unseen))
    for label, seed in failed:
        write_eval(root, eval_id(label, seed, config), None, state="failed")
    write_plan(root, jobs, ["A", "B"], ["marine_easy"], ["q"], SEEDS)
    return root


RUNS = [("A", 1, 0.8, 0.5), ("A", 2, 0.6, 0.3), ("B", 1, 0.4, 0.2), ("B", 2, 0.2, 0.0)]


def _cell(table, row, col):
    return table.cells[(row, col)]


def test_seeds_from_two_machines_add_up(tmp_path):
    whole = table_of(load_results(_run_dir(tmp_path / "all", RUNS)), None, None)
    a = _run_dir(tmp_path / "a", [r for r in RUNS if r[1] == 1])
    b = _run_dir(tmp_path / "b", [r for r in RUNS if r[1] == 2])
    alone = table_of(load_results(a), None, None)
    assert _cell(alone, "Seen · Mean", "A").n_seeds == 1  # partial: seed 2 not run here
    assert _cell(alone, "Seen · Mean", "A").expected == 2
    res = load_results([a, b])
    merged = table_of(res, None, None)
    assert res.duplicates == 0
    for key, cell in whole.cells.items():
        got = merged.cells[key]
        assert got.value == pytest.approx(cell.value) and got.n_seeds == cell.n_seeds == 2
    assert _cell(merged, "Seen · Mean", "A").value == pytest.approx(70.0)
    # the seed-2 jobs are "not run" in a but done in b: merged, nothing is missing
    assert set(res.states["state"]) == {"done"} and len(res.states) == 4


def test_a_copied_directory_counts_once(tmp_path):
    a = _run_dir(tmp_path / "a", RUNS)
    b = _run_dir(tmp_path / "b", RUNS[:2])
    res = load_results([a, b])
    assert res.duplicates == 2 * len(_records("A", "marine_easy", "q", 1, 0, 0))
    merged, single = table_of(res, None, None), table_of(load_results(a), None, None)
    assert {k: c.value for k, c in merged.cells.items()} == \
        {k: c.value for k, c in single.cells.items()}


def test_different_configurations_under_one_label_are_refused(tmp_path):
    a = _run_dir(tmp_path / "a", RUNS, config="lr1e-4")
    b = _run_dir(tmp_path / "b", RUNS[:1], config="lr3e-4")
    with pytest.raises(UserError, match="different configurations"):
        load_results([a, b])


def test_failed_here_done_there_is_done(tmp_path):
    a = _run_dir(tmp_path / "a", [r for r in RUNS if r[:2] != ("B", 2)], failed=[("B", 2)])
    b = _run_dir(tmp_path / "b", [r for r in RUNS if r[:2] == ("B", 2)])
    res = load_results([a, b])
    assert "failed" not in set(res.states["state"])
    alone = load_results(a)
    assert "failed" in set(alone.states["state"])


def test_report_and_check_take_several_directories(tmp_path):
    a = _run_dir(tmp_path / "a", [r for r in RUNS if r[1] == 1])
    b = _run_dir(tmp_path / "b", [r for r in RUNS if r[1] == 2])
    out = runner.invoke(app, ["report", str(a), str(b), "-f", "md"])
    assert out.exit_code == 0, out.output
    assert "Merged from 2 results directories" in out.output
    assert "70.0 ± 10.0†" not in out.output and "Notes:" not in out.output
    assert "| Seen · Mean | 70.0 ± 10.0 | 30.0 ± 10.0 |" in out.output
    base = tmp_path / "base.json"
    assert runner.invoke(app, ["baseline", "save", str(a), str(b), "--to", str(base)]
                         ).exit_code == 0
    assert runner.invoke(app, ["check", str(a), str(b), "--baseline", str(base)]).exit_code == 0
    # one machine's half alone misses seeds: its cells differ from the merged baseline
    bad = runner.invoke(app, ["check", str(b), "--baseline", str(base), "--tolerance", "1"])
    assert bad.exit_code == 1
    missing = runner.invoke(app, ["report", str(a), str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_a_started_job_is_said_to_be_running(tmp_path):
    a = _run_dir(tmp_path / "a", [r for r in RUNS if r[:2] != ("B", 2)])
    started = a / "runs" / "eval" / eval_id("B", 2, "c")
    started.mkdir(parents=True)
    (started / "job.json").write_text("{}")  # what run_job writes first
    res = load_results(a)
    assert sorted(res.states["state"]) == ["done", "done", "done", "running"]
    cell = _cell(table_of(res, None, None), "Seen · Mean", "B")
    assert cell.partial and "still running, or interrupted (1 of 2 eval jobs)" in cell.reason
    (started / "status.json").write_text(json.dumps(status(started.name, "failed")))
    b = _run_dir(tmp_path / "b", [])
    rerun = b / "runs" / "eval" / eval_id("B", 2, "c")
    rerun.mkdir(parents=True)
    (rerun / "job.json").write_text("{}")
    merged = load_results([a, b])  # failed there, rerunning here: running
    assert "failed" not in set(merged.states["state"])
