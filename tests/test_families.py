"""Tables and comparisons for several task set families (SMAC and SMACv2-style sets)."""

import pytest
from test_aggregate import _frame, _records

from marlbench.results.aggregate import ablation_table, main_table
from marlbench.results.published import compare, load_published

SF = "STAIRS-Former"


def _mixed():
    return _frame(_records(SF, "marine_easy", "q", 1, 0.8, 0.4),
                  _records(SF, "smacv2_protoss", "q", 1, 0.3, 0.1),
                  _records(SF, "smacv2_terran", "q", 1, 0.5, 0.3))


def test_means_never_cross_families():
    t = main_table(_mixed())
    assert t.families == ["smac", "smacv2"]
    assert t.rows == ["Seen · Marine-Easy", "SMAC · Seen · Mean", "SMAC · Unseen · Mean",
                      "SMAC · Total Mean", "Seen · SMACv2-Protoss", "Seen · SMACv2-Terran",
                      "SMACv2 · Seen · Mean", "SMACv2 · Unseen · Mean", "SMACv2 · Total Mean"]
    assert t.sections == [0, 3, 5]
    v = {row: t.cells[(row, SF)].value for row in t.rows}
    assert v["SMAC · Seen · Mean"] == pytest.approx(80.0)
    assert v["SMACv2 · Seen · Mean"] == pytest.approx(40.0)  # (30 + 50) / 2
    assert v["SMACv2 · Unseen · Mean"] == pytest.approx(20.0)
    # SMACv2 sets: 1 seen + 2 unseen tasks → total = (1·s + 2·u) / 3 per set
    assert v["SMACv2 · Total Mean"] == pytest.approx(((30 + 20) + (50 + 60)) / 6)


def test_one_family_keeps_the_papers_row_names():
    t = main_table(_frame(_records(SF, "smacv2_zerg", "q", 1, 0.3, 0.1)))
    assert t.families == ["smacv2"]
    assert t.rows == ["Seen · SMACv2-Zerg", "Seen · Mean", "Unseen · Mean", "Total Mean"]


def test_ablation_columns_per_family():
    t = ablation_table(_mixed())
    assert t.columns == [f"{f} · {c}" for f in ("SMAC", "SMACv2")
                         for c in ("Seen · Mean", "Unseen · Mean", "Total Mean")]
    assert t.cells[(SF, "SMACv2 · Seen · Mean")].value == pytest.approx(40.0)


def test_compare_meets_the_published_table_of_the_same_family():
    paper = load_published("stairs-former")["tables"]
    smacv2 = paper["smacv2"]["cells"]["Seen · Mean"][SF]
    smac = paper["main"]["cells"]["Seen · Mean"][SF]
    assert smacv2 != smac
    only_v2 = compare(main_table(_frame(_records(SF, "smacv2_zerg", "q", 1, 0.3, 0.1))),
                      "stairs-former", ["smax"])
    assert only_v2.pair("Seen · Mean", SF) == (pytest.approx(30.0), smacv2)
    mixed = compare(main_table(_mixed()), "stairs-former", ["smax"])
    assert mixed.pair("SMACv2 · Seen · Mean", SF)[1] == smacv2
    assert mixed.pair("SMAC · Seen · Mean", SF)[1] == smac
    assert mixed.pair("Seen · Marine-Easy", SF)[1] == paper["main"]["cells"][
        "Seen · Marine-Easy"][SF]


def test_comparison_names_the_published_tables_it_used():
    from marlbench.results import render

    only_v2 = compare(main_table(_frame(_records(SF, "smacv2_zerg", "q", 1, 0.3, 0.1))),
                      "stairs-former", ["smax"])
    assert only_v2.tables_used == ["smacv2"]
    assert "compared with its table smacv2." in render.comparison_note(only_v2)
    assert compare(main_table(_mixed()), "stairs-former", ["smax"]).tables_used == \
        ["main", "smacv2"]


def test_comparison_without_counterparts_names_the_published_file():
    from marlbench.errors import UserError

    unlabelled = main_table(_frame(_records("my-method", "marine_easy", "q", 1, 0.5, 0.2)))
    with pytest.raises(UserError, match="counterpart in 'stairs-former'"):
        compare(unlabelled, "stairs-former", ["smax"])
