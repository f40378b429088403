"""Aggregation on hand-made records with known answers."""

import pandas as pd
import pytest

from marlbench.envs.tasksets import get_task_set
from marlbench.results import render
from marlbench.results.aggregate import main_table, select_checkpoint


def _records(label, set_name, quality, seed, seen, unseen, step=10, drop=()):
    ts = get_task_set(set_name)
    return [
        {"label": label, "task_set": set_name, "quality": quality, "seed": seed, "task": t,
         "split": ts.split(t), "step": step, "win_rate": seen if t in ts.seen else unseen}
        for t in ts.test if t not in drop
    ]


def _frame(*groups):
    return pd.DataFrame([r for g in groups for r in g])


@pytest.fixture
def records():
    return _frame(
        _records("A", "marine_easy", "q", 1, 0.9, 0.3),
        _records("A", "marine_easy", "q", 2, 0.5, 0.1),
        _records("A", "marine_hard", "q", 1, 0.6, 0.2),
        _records("A", "marine_hard", "q", 2, 0.4, 0.0),
        _records("A", "marine_easy", "q", 1, 1.0, 1.0, step=5),
        _records("A", "marine_hard", "q", 1, 1.0, 1.0, step=5),
        _records("A", "marine_easy", "q", 2, 0.0, 0.0, step=5),
        _records("A", "marine_hard", "q", 2, 0.0, 0.0, step=5),
        _records("B", "marine_easy", "q", 1, 0.5, 0.5, drop=("12m",)),  # incomplete
    )


def cell(table, row, label):
    c = table.cells[(row, label)]
    return None if c.missing else (round(c.value, 6), round(c.std, 6), c.n_seeds)


def test_main_table_final(records):
    t = main_table(records, "final")
    assert t.rows == ["Seen · Marine-Easy", "Seen · Marine-Hard", "Seen · Mean",
                      "Unseen · Mean", "Total Mean"]
    assert cell(t, "Seen · Marine-Easy", "A") == (70.0, 20.0, 2)
    assert cell(t, "Seen · Marine-Hard", "A") == (50.0, 10.0, 2)
    assert cell(t, "Seen · Mean", "A") == (60.0, 15.0, 2)
    assert cell(t, "Unseen · Mean", "A") == (15.0, 10.0, 2)
    # per seed: ME total (3·.9 + 7·.3)/10 = .48, MH (3·.6 + 9·.2)/12 = .30 → .39; seed 2 → .16
    assert cell(t, "Total Mean", "A") == (27.5, 11.5, 2)


def test_incomplete_run_is_missing_not_averaged(records):
    t = main_table(records, "final")
    assert cell(t, "Seen · Marine-Easy", "B") is None
    assert render.fmt(t.cells[("Total Mean", "B")]) == render.MISSING


def test_checkpoint_rules(records):
    best = main_table(records, "best")
    # seed 1 best = step 5 (all 1.0); seed 2 best = step 10 (.5 / .1)
    assert cell(best, "Seen · Marine-Easy", "A") == (75.0, 25.0, 2)
    last2 = main_table(records, "last_k", k=2)
    # seed 1 ME seen (1.0 + .9)/2 = .95; seed 2 (0 + .5)/2 = .25
    assert cell(last2, "Seen · Marine-Easy", "A") == (60.0, 35.0, 2)
    picked = select_checkpoint(records, "final")
    assert len(picked) == 2 * 10 + 2 * 12 + 9  # step-10 rows of A, and B's incomplete run
    assert set(picked["win_rate"]) <= {0.9, 0.3, 0.5, 0.1, 0.6, 0.2, 0.4, 0.0}


def test_qualities_are_averaged_per_seed_first():
    recs = _frame(
        _records("A", "marine_easy", "medium", 1, 0.8, 0.2),
        _records("A", "marine_easy", "expert", 1, 0.4, 0.0),
    )
    t = main_table(recs, "final")
    assert cell(t, "Seen · Marine-Easy", "A") == (60.0, 0.0, 1)
    assert cell(t, "Unseen · Mean", "A") == (10.0, 0.0, 1)


def test_renderers(records):
    t = main_table(records, "final")
    md = render.to_markdown(t)
    assert "| Seen · Marine-Easy | 70.0 ± 20.0 | — |" in md
    assert "mean ± std" in md
    csv = render.to_csv(t)
    assert csv.splitlines()[0] == "row,column,value,std,n_seeds,expected_seeds,note"
    assert '"checkpoint": "final"' in render.to_json(t)


def test_published_files_parse_and_use_marlbench_names():
    from marlbench.results.published import available, load_published, published_cells

    assert {"stairs-former", "mads4", "steer"} <= set(available())
    for name in available():
        doc = load_published(name)
        assert doc["source"] and doc["metric"] and doc["tables"]
        assert all(isinstance(v, float) for v in published_cells(doc).values())
    rows = {row for row, _ in published_cells(load_published("stairs-former"))}
    titles = {f"Seen · {get_task_set(s).title}" for s in ("marine_easy", "marine_hard",
                                                          "stalker_zealot")}
    assert titles <= rows


def test_compare_puts_published_numbers_next_to_ours():
    from marlbench.errors import UserError
    from marlbench.results.published import compare

    recs = _frame(_records("STAIRS-Former", "marine_easy", "q", 1, 0.8, 0.5),
                  _records("STAIRS-Former", "marine_easy", "q", 2, 0.6, 0.5),
                  _records("Mine", "marine_easy", "q", 1, 0.1, 0.1))
    comp = compare(main_table(recs), "stairs-former", ["smax"])
    assert comp.pair("Seen · Marine-Easy", "STAIRS-Former") == (pytest.approx(70.0), 91.2)
    assert comp.pair("Seen · Marine-Easy", "Mine") == (pytest.approx(10.0), None)
    assert "Backends differ" in comp.backend_note()
    md = render.comparison_to_markdown(comp)
    assert "| Seen · Marine-Easy | 70.0 | 91.2 | -21.2 |" in md
    ablation = compare(main_table(recs), "stairs-former:ablation", ["sc2"])
    assert ablation.pair("Seen · Mean", "STAIRS-Former")[1] == 77.9
    assert "Same backend" in ablation.backend_note()
    with pytest.raises(UserError, match="no cell"):
        compare(main_table(_frame(_records("Mine", "marine_easy", "q", 1, 0.1, 0.1))),
                "stairs-former", ["smax"])
    with pytest.raises(UserError, match="choose one of"):
        compare(main_table(recs), "nonexistent", ["smax"])


def test_iqm_and_median_across_seeds():
    from marlbench.results.aggregate import iqm, statistic

    assert iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # 1 trimmed from each end
    assert iqm([0, 10, 20, 30, 40, 50, 60, 70]) == pytest.approx(35.0)
    assert iqm([5.0]) == 5.0
    recs = _frame(*(_records("A", "marine_easy", "q", s, v, 0.0)
                    for s, v in enumerate([0.1, 0.2, 0.3, 0.4, 1.0], start=1)))
    assert cell(main_table(recs, stat="median"), "Seen · Marine-Easy", "A")[0] == 30.0
    assert cell(main_table(recs, stat="iqm"), "Seen · Marine-Easy", "A")[0] == 30.0
    assert cell(main_table(recs), "Seen · Marine-Easy", "A")[0] == 40.0
    assert statistic([1.0, 3.0], "mean") == 2.0


def test_quality_task_and_ablation_tables(records):
    from marlbench.results.aggregate import ablation_table, quality_table, task_table

    main = main_table(records)
    abl = ablation_table(records)
    assert abl.rows == ["A", "B"] and abl.columns == ["Seen · Mean", "Unseen · Mean",
                                                      "Total Mean"]
    assert cell(abl, "A", "Total Mean") == cell(main, "Total Mean", "A")
    q = quality_table(records)
    assert "Marine-Hard · q · Unseen" in q.rows
    assert cell(q, "Marine-Easy · q · Seen", "A") == (70.0, 20.0, 2)
    assert cell(q, "Marine-Easy · q · Total", "B") is None
    t = task_table(records)
    assert "Marine-Easy · 4m (unseen)" in t.rows and "Marine-Easy · 3m (seen)" in t.rows
    assert cell(t, "Marine-Easy · 3m (seen)", "A") == (70.0, 20.0, 2)
    assert cell(t, "Marine-Hard · 4m (unseen)", "A") == (10.0, 10.0, 2)


def test_unequal_seeds_and_failed_runs_are_said_not_hidden():
    from marlbench.results.aggregate import Plan

    recs = _frame(_records("A", "marine_easy", "q", 1, 0.8, 0.4),
                  _records("A", "marine_easy", "q", 2, 0.6, 0.2),
                  _records("B", "marine_easy", "q", 1, 0.5, 0.5, drop=("3m",)))
    states = pd.DataFrame([
        {"label": "A", "task_set": "marine_easy", "quality": "q", "seed": 3, "task": "3m",
         "state": "not run"},
        {"label": "B", "task_set": "marine_easy", "quality": "q", "seed": 1, "task": "3m",
         "state": "failed"}])
    t = main_table(recs, plan=Plan(["q"], [1, 2, 3], states))
    a = t.cells[("Seen · Marine-Easy", "A")]
    assert a.partial and a.n_seeds == 2 and "2 of 3 seeds" in a.reason
    assert render.fmt(a).endswith(render.PARTIAL)
    b = t.cells[("Seen · Marine-Easy", "B")]
    assert b.missing and b.reason.startswith("failed")
    notes = render.notes(t)
    assert any(n.startswith("B: failed") for n in notes)
    assert any("2 of 3 seeds" in n for n in notes)
    # a seed missing one planned quality is dropped, not averaged over the other
    two_q = _frame(_records("A", "marine_easy", "expert", 1, 0.8, 0.4),
                   _records("A", "marine_easy", "medium", 1, 0.4, 0.0),
                   _records("A", "marine_easy", "expert", 2, 1.0, 1.0))
    t2 = main_table(two_q, plan=Plan(["expert", "medium"], [1, 2]))
    assert cell(t2, "Seen · Marine-Easy", "A") == (60.0, 0.0, 1)


def _golden_records():
    return _frame(
        _records("BC-t", "marine_easy", "expert", 1, 0.9, 0.5),
        _records("BC-t", "marine_easy", "expert", 2, 0.7, 0.3),
        _records("STAIRS-Former", "marine_easy", "expert", 1, 0.95, 0.6),
        _records("STAIRS-Former", "marine_easy", "expert", 2, 0.85, 0.4),
        _records("BC-t", "marine_hard", "expert", 1, 0.4, 0.1),
        _records("BC-t", "marine_hard", "expert", 2, 0.2, 0.1),
    )


@pytest.mark.parametrize("fmt,suffix", [("md", "md"), ("latex", "tex")])
@pytest.mark.parametrize("name", ["main", "ablation"])
def test_golden_markdown_and_latex(name, fmt, suffix, request):
    """Regenerate with: MARLBENCH_GOLDEN=1 pytest tests/test_aggregate.py -k golden"""
    import os
    from pathlib import Path

    from marlbench.results.aggregate import BUILDERS

    text = render.render(BUILDERS[name](_golden_records()), fmt)
    path = Path(__file__).parent / "golden" / f"{name}.{suffix}"
    if os.environ.get("MARLBENCH_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_bold_marks_a_best_only_where_some_cell_is_beaten():
    recs = _frame(_records("A", "marine_easy", "q", 1, 0.5, 0.0),
                  _records("B", "marine_easy", "q", 1, 0.3, 0.0),
                  _records("C", "marine_easy", "q", 1, 0.5, 0.0))
    best = render._best(main_table(recs))
    assert ("Seen · Marine-Easy", "A") in best and ("Seen · Marine-Easy", "C") in best
    assert ("Seen · Marine-Easy", "B") not in best
    assert not any(row == "Unseen · Mean" for row, _ in best)  # 0.0 everywhere: no best
    tex = render.to_latex(main_table(recs))
    assert r"\textbf{50.0}" in tex and r"\textbf{0.0}" not in tex


def test_one_seed_cells_carry_no_spread():
    recs = _frame(_records("A", "marine_easy", "q", 1, 0.5, 0.0),
                  _records("B", "marine_easy", "q", 1, 0.3, 0.0),
                  _records("B", "marine_easy", "q", 2, 0.1, 0.0))
    t = main_table(recs)
    assert "| Seen · Marine-Easy | 50.0 | 20.0 ± 10.0 |" in render.to_markdown(t)
    assert r"Seen $\cdot$ Marine-Easy & \textbf{50.0} & 20.0{\small $\pm$ 10.0} \\" \
        in render.to_latex(t)
