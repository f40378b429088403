"""The single-task track's tables (MADS4 Tables 1 and 2), its comparison with the published
numbers, and robust statistics, plots, baseline and check on average returns."""

import json

import pandas as pd
import pytest
from results_fixture import eval_id, single_records, write_eval, write_plan, write_train
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.results import render
from marlbench.results.aggregate import Plan, returns_quality_table, returns_table
from marlbench.results.published import compare

runner = CliRunner()
RW, SM = "rware-tiny-2ag", "5m_vs_6m"


def _frame(*groups):
    return pd.DataFrame([r for g in groups for r in g])


def _rware(**fields):
    """BC 8.0 / 9.0 (→ 8.50 ± 0.50), MADT 10.0 / 12.0 (→ 11.00 ± 1.00) on tiny-2ag, expert."""
    fields = {"backend": "rware", **fields}
    return [single_records("BC", RW, "expert", 1, 8.0, **fields),
            single_records("BC", RW, "expert", 2, 9.0, **fields),
            single_records("MADT", RW, "expert", 1, 10.0, **fields),
            single_records("MADT", RW, "expert", 2, 12.0, **fields)]


def _smac(**fields):
    """MADT on 5m_vs_6m: good 8.0 / 8.4 (→ 8.20 ± 0.20); medium seed 1 only, 7.5."""
    return [single_records("MADT", SM, "good", 1, 8.0, **fields),
            single_records("MADT", SM, "good", 2, 8.4, **fields),
            single_records("MADT", SM, "medium", 1, 7.5, **fields)]


def cell(table, row, col):
    c = table.cells[(row, col)]
    return None if c.missing else (round(c.value, 6), round(c.std, 6), c.n_seeds)


def test_returns_table_one_quality_is_method_by_map():
    t = returns_table(_frame(*_rware()))
    assert (t.rows, t.columns, t.metric) == (["BC", "MADT"], [RW], "return")
    assert cell(t, "BC", RW) == (8.5, 0.5, 2)
    assert cell(t, "MADT", RW) == (11.0, 1.0, 2)
    assert t.title == "Average return per map (expert data)" and t.labels == ["BC", "MADT"]
    md = render.to_markdown(t)
    assert "| Method | rware-tiny-2ag |" in md and "| BC | 8.50 ± 0.50 |" in md
    assert "Average return of the final checkpoint" in md and "never averaged" in md
    assert r"\textbf{11.00}{\small $\pm$ 1.00}" in render.to_latex(t)  # best of the column


def test_both_layouts_with_several_qualities():
    recs = _frame(*_rware(), *_smac())
    t1 = returns_table(recs)
    assert t1.columns == [RW, SM] and t1.row_header == "Method · data"
    assert t1.rows == ["BC · expert", "MADT · expert", "BC · good", "MADT · good",
                       "BC · medium", "MADT · medium"]
    assert t1.sections == [1, 3]
    assert cell(t1, "BC · expert", RW) == (8.5, 0.5, 2)
    assert cell(t1, "MADT · good", SM) == (8.2, 0.2, 2)
    assert cell(t1, "MADT · medium", SM) == (7.5, 0.0, 1)
    assert cell(t1, "MADT · good", RW) is None and cell(t1, "BC · expert", SM) is None
    t2 = returns_quality_table(recs)
    assert t2.rows == [f"{RW} · expert", f"{SM} · good", f"{SM} · medium"]
    assert t2.columns == ["BC", "MADT"] and t2.sections == [0]
    assert cell(t2, f"{RW} · expert", "MADT") == (11.0, 1.0, 2)
    assert cell(t2, f"{SM} · good", "MADT") == (8.2, 0.2, 2)
    assert cell(t2, f"{SM} · good", "BC") is None
    assert "| 5m_vs_6m · good | — | 8.20 ± 0.20 |" in render.to_markdown(t2)


def test_missing_and_partial_cells_say_why():
    recs = _frame(*_rware(), *_smac())
    states = pd.DataFrame([
        {"label": "BC", "task_set": SM, "quality": "good", "seed": 1, "task": SM,
         "state": "failed"},
        {"label": "MADT", "task_set": SM, "quality": "medium", "seed": 2, "task": SM,
         "state": "running"},
        {"label": "MADT", "task_set": SM, "quality": "poor", "seed": 1, "task": SM,
         "state": "not run"}])
    plan = Plan(["expert", "good", "medium", "poor"], [1, 2], states)
    t = returns_quality_table(recs, plan=plan)
    assert t.rows == [f"{RW} · expert", f"{SM} · good", f"{SM} · medium", f"{SM} · poor"]
    assert t.cells[(f"{SM} · good", "BC")].reason.startswith("failed (1 of 1")
    medium = t.cells[(f"{SM} · medium", "MADT")]
    assert medium.partial and "1 of 2 seeds; still running" in medium.reason
    assert t.cells[(f"{SM} · poor", "MADT")].reason.startswith("not run yet")
    notes = render.notes(t)
    assert any(n.startswith("BC: failed") and "5m_vs_6m · good" in n for n in notes)
    assert any(n.startswith("MADT: not run yet") and "5m_vs_6m · poor" in n for n in notes)
    assert render.fmt(medium) == "7.50" + render.PARTIAL


def test_checkpoint_rules_and_statistics_on_returns():
    recs = _frame(single_records("BC", RW, "expert", 1, 9.5, step=5),
                  single_records("BC", RW, "expert", 1, 8.0, step=10),
                  single_records("BC", RW, "expert", 2, 7.0, step=5),
                  single_records("BC", RW, "expert", 2, 9.0, step=10))
    assert cell(returns_table(recs, "final"), "BC", RW) == (8.5, 0.5, 2)
    assert cell(returns_table(recs, "best"), "BC", RW) == (9.25, 0.25, 2)  # 9.5, 9.0
    assert cell(returns_table(recs, "last_k", k=2), "BC", RW) == (8.375, 0.375, 2)
    five = _frame(*(single_records("BC", RW, "expert", s, v)
                    for s, v in enumerate([1.0, 2.0, 3.0, 4.0, 100.0], start=1)))
    assert cell(returns_table(five, stat="median"), "BC", RW)[0] == 3.0
    assert cell(returns_table(five, stat="iqm"), "BC", RW)[0] == 3.0
    assert cell(returns_table(five), "BC", RW)[0] == 22.0


# ---- compare with MADS4 -------------------------------------------------------------------

COLLECTED = f"rware/{RW}/expert/dataset-0123456789abcdef"


def _compare(recs, datasets=None, table=returns_table):
    return compare(table(recs), "mads4", list(recs["backend"].dropna().unique()), recs,
                   datasets or {})


def test_compare_pairs_the_published_numbers_in_both_layouts():
    recs = _frame(*_rware(reward="rware", action_selection="greedy", episodes=32),
                  *_smac(backend="smax", episodes=32))
    comp = _compare(recs)
    assert comp.tables_used == ["rware", "smac"]
    assert comp.pair("BC · expert", RW) == (pytest.approx(8.5), 8.8)
    assert comp.pair("MADT · good", SM) == (pytest.approx(8.2), 8.15)
    assert comp.pair("MADT · medium", SM) == (pytest.approx(7.5), 7.8)
    assert comp.pair("MADT · expert", RW) == (pytest.approx(11.0), None)  # the paper: MADTKD
    by_quality = _compare(recs, table=returns_quality_table)
    assert by_quality.pair(f"{RW} · expert", "BC") == (pytest.approx(8.5), 8.8)
    assert by_quality.pair(f"{SM} · good", "MADT") == (pytest.approx(8.2), 8.15)
    md = render.comparison_to_markdown(by_quality)
    assert "| rware-tiny-2ag · expert | 8.50 | 8.80 | -0.30 |" in md


def test_compare_note_says_how_our_evaluation_differs():
    recs = _frame(*_rware(reward="rware", action_selection="greedy", episodes=32),
                  *_smac(backend="smax", episodes=30))
    train = "train-" + "1" * 16
    recs["config_hash"] = train
    comp = _compare(recs, {train: [COLLECTED]})
    text = "\n".join(comp.differences)
    assert "rware: reward: NOT COMPARABLE — 4 of 4 records used reward 'rware'" in text
    assert "agent 0's shaped reward" in text
    assert "rware: action selection: ours greedy, the paper sampled" in text
    assert "rware: evaluation episodes: ours 32 per map and seed, the paper 30" in text
    assert "smac: evaluation episodes: 30 per run, as the paper" in text
    assert "rware: backend: ours rware 2.x" in text and "rware 1.0.3" in text
    assert "smac: backend: ours the embedded SMAX simulator, the paper StarCraft II" in text
    assert "rware: data: ours collected by marlbench" in text and "AlberDICE" in text
    note = render.comparison_note(comp)
    assert "Differences from the paper (read from our records):\n- rware: backend" in note


def test_compare_note_on_the_papers_contract_and_on_older_records():
    train = "train-" + "0" * 16
    same = _compare(_frame(*_rware(reward="alberdice", action_selection="sampled",
                                   episodes=30, config_hash=train)),
                    {train: [f"alberdice/{RW}/expert/run-1"]})
    text = "\n".join(same.differences)
    assert "reward: agent 0's shaped reward (AlberDICE's contract), the paper's contract" in text
    assert "action selection: sampled, as the paper" in text
    assert "data: the paper's own, imported (alberdice)" in text
    older = "\n".join(_compare(_frame(*_rware())).differences)  # no reward, no selection
    assert "reward: ours not recorded" in older
    assert "action selection: ours not recorded (older records" in older
    assert "data: ours not known here" in older


def test_a_published_map_without_quality_is_not_guessed_among_several():
    recs = _frame(*_rware(), single_records("BC", RW, "medium", 1, 5.0, backend="rware"),
                  *_smac())
    comp = _compare(recs)
    assert comp.pair("BC · expert", RW)[1] is None
    assert comp.pair("MADT · good", SM)[1] == 8.15
    assert any("rware-tiny-2ag: the paper's table names no data quality" in d
               for d in comp.differences)


def test_compare_of_a_multi_task_table_points_to_the_returns_tables():
    from test_aggregate import _records

    from marlbench.errors import UserError
    from marlbench.results.aggregate import main_table

    with pytest.raises(UserError, match="use --table returns"):
        compare(main_table(pd.DataFrame(_records("BC", "marine_easy", "q", 1, 0.5, 0.2))),
                "mads4", ["smax"])


# ---- CLI: report, stats, plots, baseline and check on results directories ----------------

def _results(root, groups, qualities=("expert",), seeds=(1, 2), suite="s"):
    jobs = {}
    for i, group in enumerate(groups):
        jid = eval_id(suite, i)
        write_eval(root, jid, group)
        r = group[0]
        jobs[jid] = {"kind": "eval", "title": f"eval {i}", "label": r["label"],
                     "task_set": r["task_set"], "quality": r["quality"], "seed": r["seed"]}
    labels = list(dict.fromkeys(g[0]["label"] for g in groups))
    sets = list(dict.fromkeys(g[0]["task_set"] for g in groups))
    write_plan(root, jobs, labels, sets, list(qualities), list(seeds), suite)
    return root


def test_report_defaults_to_the_returns_table_on_single_task_results(tmp_path):
    res = _results(tmp_path / "r", _rware(reward="rware"))
    out = runner.invoke(app, ["report", str(res), "-f", "md"])
    assert out.exit_code == 0, out.output
    assert "| Method | rware-tiny-2ag |" in out.output and "| BC | 8.50 ± 0.50 |" in out.output
    quality = runner.invoke(app, ["report", str(res), "--table", "returns-quality", "-f",
                                  "json"])
    doc = json.loads(quality.output)
    assert doc["metric"] == "return" and doc["table"] == "returns-quality"
    assert doc["cells"][0]["row"] == "rware-tiny-2ag · expert" and doc["cells"][0]["value"] == 8.5


def test_report_compare_mads4_cli(tmp_path):
    train = write_train(tmp_path / "r", [COLLECTED])
    res = _results(tmp_path / "r", _rware(reward="rware", action_selection="greedy",
                                          episodes=32, config_hash=train))
    out = runner.invoke(app, ["report", str(res), "--compare", "mads4", "-f", "md"])
    assert out.exit_code == 0, out.output
    assert "| BC | 8.50 | 8.80 | -0.30 |" in out.output
    assert "rware: reward: NOT COMPARABLE" in out.output
    assert "rware: data: ours collected by marlbench" in out.output
    rich = runner.invoke(app, ["report", str(res), "--compare", "mads4:rware"])
    assert rich.exit_code == 0, rich.output
    assert "Ours vs MADS4" in rich.output and "average return" in rich.output


def test_report_stats_and_plots_on_returns(tmp_path):
    res = _results(tmp_path / "r", _rware())
    out = runner.invoke(app, ["report", str(res), "--stats", "--reps", "50", "-f", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["metric"] == "return" and set(doc["aggregates"]["BC"]) == {"median", "iqm",
                                                                           "mean"}
    assert doc["aggregates"]["BC"]["mean"]["point"] == pytest.approx(8.5)
    md = runner.invoke(app, ["report", str(res), "--stats", "--reps", "50", "-f", "md"])
    assert "| BC | 8.50 [8.00, 9.00] | 8.50" in md.output and "Optimality" not in md.output
    figures = tmp_path / "f"
    drawn = runner.invoke(app, ["report", str(res), "--plots", str(figures), "--reps", "20"])
    assert drawn.exit_code == 0, drawn.output
    names = {p.name for p in figures.iterdir()}
    assert {"returns_per_map.png", "learning_curves.svg", "performance_profiles.png",
            "probability_of_improvement.png"} <= names
    page = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(res), "--html", str(page), "--reps", "20"]
                         ).exit_code == 0
    assert "Average return per map and data quality" in page.read_text()


def test_baseline_and_check_on_returns(tmp_path):
    good = _results(tmp_path / "good", _rware())
    base = tmp_path / "b.json"
    saved = runner.invoke(app, ["baseline", "save", str(good), "--to", str(base)])
    assert saved.exit_code == 0, saved.output
    doc = json.loads(base.read_text())
    assert doc["metric"] == "return"
    bc = next(c for c in doc["cells"] if c["label"] == "BC")
    assert (bc["scenario"], bc["mean"], bc["std"]) == ("rware-tiny-2ag · expert", 8.5, 0.5)
    assert runner.invoke(app, ["check", str(good), "-b", str(base)]).exit_code == 0
    worse = _results(tmp_path / "worse", [
        single_records("BC", RW, "expert", 1, 7.0, backend="rware"),
        single_records("BC", RW, "expert", 2, 7.6, backend="rware"), *_rware()[2:]])
    summary = tmp_path / "summary.md"
    failed = runner.invoke(app, ["check", str(worse), "-b", str(base), "--summary",
                                 str(summary)])
    assert failed.exit_code == 1
    assert ("| rware-tiny-2ag · expert | BC | 8.50 | 7.30 | -1.20 | 0.50 | dropped 1.20 > 0.50 "
            "allowed |") in summary.read_text()
    assert runner.invoke(app, ["check", str(worse), "-b", str(base), "--tolerance", "2"]
                         ).exit_code == 0
    big = tmp_path / "big.json"  # returns beyond 100 are fine in a return baseline
    big.write_text(json.dumps({**doc, "cells": [{**bc, "mean": 150.0}]}))
    assert runner.invoke(app, ["check", str(good), "-b", str(big)]).exit_code == 1
    win = tmp_path / "win.json"
    win.write_text(json.dumps({**doc, "metric": "win_rate", "cells": [{**bc, "mean": 150.0}]}))
    refused = runner.invoke(app, ["check", str(good), "-b", str(win)])
    assert refused.exit_code == 2 and "not a win rate" in refused.output


def test_win_rate_baselines_stay_main_table_and_win_rate(tmp_path):
    from test_check import _groups
    from test_check import _results as multi_results

    res = multi_results(tmp_path / "m", _groups())
    base = tmp_path / "b.json"
    assert runner.invoke(app, ["baseline", "save", str(res), "--to", str(base)]).exit_code == 0
    doc = json.loads(base.read_text())
    assert doc["metric"] == "win_rate" and doc["cells"][0]["scenario"].startswith("Seen ·")
    refused = runner.invoke(app, ["baseline", "save", str(res), "--to", str(base), "--metric",
                                  "return"])
    assert refused.exit_code == 2 and "--metric return" in refused.output


@pytest.mark.parametrize("args,names", [
    (["--table", "returns"], "--table returns"),
    (["--metric", "speed"], "--metric"),
])
def test_user_errors_on_multi_task_results(tmp_path, args, names):
    from test_check import _groups
    from test_check import _results as multi_results

    res = multi_results(tmp_path / "m", _groups())
    out = runner.invoke(app, ["report", str(res), *args])
    assert out.exit_code == 2 and names in out.output and "Traceback" not in out.output


def test_win_rate_on_the_warehouse_is_refused(tmp_path):
    res = _results(tmp_path / "r", _rware())
    out = runner.invoke(app, ["report", str(res), "--metric", "win-rate"])
    assert out.exit_code == 2 and "have no win" in out.output


def test_records_carry_reward_and_action_selection_when_given(tmp_path):
    from marlbench.results.store import load_results

    res = _results(tmp_path / "r", [single_records("BC", RW, "expert", 1, 8.0, backend="rware",
                                                   reward="alberdice",
                                                   action_selection="sampled"),
                                    single_records("BC", RW, "expert", 2, 9.0,
                                                   backend="rware")])
    recs = load_results(tmp_path / "r").records.sort_values("seed")
    assert recs["reward"].tolist()[0] == "alberdice" and pd.isna(recs["reward"].tolist()[1])
    assert recs["action_selection"].tolist()[0] == "sampled"
    assert res.exists()


def test_help_teaches_the_returns_tables_and_the_metric():
    out = runner.invoke(app, ["report", "--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    for phrase in ("returns-quality", "MADS4 Table 1", "MADS4 Table 2", "--metric",
                   "5m_vs_6m · good / medium / poor", "--compare mads4"):
        assert phrase in text, phrase
    save = " ".join(runner.invoke(app, ["baseline", "save", "--help"],
                                  terminal_width=200).output.split())
    assert "--metric" in save and "returns-quality" in save
    check = " ".join(runner.invoke(app, ["check", "--help"], terminal_width=200).output.split())
    assert "return (default 0.5)" in check


def test_report_returns_shows_one_family_of_maps_and_names_the_others(tmp_path):
    res = _results(tmp_path / "r", [*_rware(reward="alberdice"), *_smac()],
                   qualities=("expert", "good", "medium"))
    out = runner.invoke(app, ["report", str(res), "--table", "returns"])
    assert out.exit_code == 0, out.output
    assert "rware-tiny-2ag" in out.output and "5m_vs_6m" not in out.output
    assert "also hold SMAC single-task (smac_single)" in out.output
    smac = runner.invoke(app, ["report", str(res), "--table", "returns", "--family",
                               "smac_single", "-f", "md"])
    assert smac.exit_code == 0, smac.output
    assert "| Method · data | 5m_vs_6m |" in smac.output and "rware" not in smac.output
    both = runner.invoke(app, ["report", str(res), "--table", "returns-quality", "-f", "md"])
    assert "rware-tiny-2ag · expert" in both.output and "5m_vs_6m · good" in both.output
    bad = runner.invoke(app, ["report", str(res), "--family", "cn"])
    assert bad.exit_code == 2 and "--family 'cn'" in bad.output
