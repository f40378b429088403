"""Robust statistics against hand-computed values."""

import numpy as np
import pandas as pd
import pytest
from test_aggregate import _records

from marlbench.results import robust
from marlbench.results.aggregate import select_checkpoint


def test_aggregates_on_known_scores():
    scores = [np.array([0.0, 0.2, 0.4]), np.array([1.0, 0.6]), np.array([0.5])]
    assert robust.mean(scores) == pytest.approx((0.2 + 0.8 + 0.5) / 3)
    assert robust.median(scores) == pytest.approx(0.5)
    # all six scores sorted 0 .2 .4 .5 .6 1 → trim one each end → mean(.2 .4 .5 .6)
    assert robust.iqm(scores) == pytest.approx(0.425)
    assert robust.optimality_gap(scores) == pytest.approx(1 - 2.7 / 6)
    assert robust.optimality_gap([np.array([1.5, 0.5])]) == pytest.approx(0.25)  # capped at γ


def test_probability_of_improvement_with_unequal_runs():
    x = [np.array([0.9, 0.8]), np.array([0.5, 0.5, 0.5])]
    y = [np.array([0.1]), np.array([0.5, 0.7])]
    # task 1: both runs of x beat y → 1; task 2: ties with .5 (½ each), loses to .7 → 3·½/6
    assert robust.probability_of_improvement(x, y) == pytest.approx((1 + 0.25) / 2)
    assert robust.probability_of_improvement(x, x) == pytest.approx(0.5)
    assert robust.probability_of_improvement(y, x) == pytest.approx(1 - (1 + 0.25) / 2)
    with pytest.raises(ValueError):
        robust.probability_of_improvement(x, y[:1])


def test_performance_profile():
    scores = [np.array([0.1, 0.5]), np.array([0.9, 1.0])]
    prof = robust.performance_profile(scores, np.array([0.0, 0.5, 0.95]))
    assert prof.tolist() == [1.0, 0.5, 0.25]


def test_bootstrap_intervals_are_reproducible_and_cover_the_point():
    rng = np.random.default_rng(0)
    scores = [rng.random(5) for _ in range(6)]
    a = robust.aggregate_intervals(scores, reps=300, seed=3)
    b = robust.aggregate_intervals(scores, reps=300, seed=3)
    c = robust.aggregate_intervals(scores, reps=300, seed=4)
    assert a == b and a != c
    for iv in a.values():
        assert iv.low <= iv.point <= iv.high
    constant = robust.aggregate_intervals([np.full(3, 0.4), np.full(2, 0.4)], reps=50)
    assert constant["iqm"].low == constant["iqm"].high == pytest.approx(0.4)
    poi = robust.improvement_interval(scores, [s * 0.0 for s in scores], reps=100)
    assert poi.point == poi.low == poi.high == 1.0
    point, low, high = robust.profile_intervals(scores, np.array([0.0, 2.0]), reps=50)
    assert point.tolist() == [1.0, 0.0] and low.tolist() == [1.0, 0.0]


def test_scores_by_label_keeps_complete_runs_and_common_tasks():
    recs = pd.DataFrame(
        _records("A", "marine_easy", "q", 1, 0.8, 0.4)
        + _records("A", "marine_easy", "q", 2, 0.6, 0.2)
        + _records("A", "marine_hard", "q", 1, 0.5, 0.5)
        + _records("B", "marine_easy", "q", 1, 0.5, 0.5)
        + _records("B", "marine_easy", "q", 2, 0.5, 0.5, drop=("3m",)))  # incomplete
    common, tasks, scores = robust.scores_by_label(select_checkpoint(recs), ["A", "B"])
    assert len(tasks["A"]) == 10 + 12 and len(tasks["B"]) == 10
    assert len(common) == 10 and all(t[0] == "marine_easy" for t in common)
    a = robust.restrict(scores["A"], tasks["A"], common)
    b = robust.restrict(scores["B"], tasks["B"], common)
    assert all(len(s) == 2 for s in a) and all(len(s) == 1 for s in b)
    assert robust.probability_of_improvement(a, b) == pytest.approx(0.3)  # 3 seen of 10 won


def test_report_stats_cli(tmp_path):
    import json

    from test_check import _groups, _results
    from typer.testing import CliRunner

    from marlbench.cli.main import app

    res = _results(tmp_path / "r", _groups())
    out = CliRunner().invoke(app, ["report", str(res), "--stats", "--reps", "200", "-f",
                                   "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["seeds"] == {"A": 2, "B": 1} and doc["reps"] == 200
    assert {"median", "iqm", "mean", "optimality_gap"} <= set(doc["aggregates"]["A"])
    pairs = {(p["x"], p["y"]): p["point"] for p in doc["probability_of_improvement"]}
    assert pairs[("A", "B")] == pytest.approx(1 - pairs[("B", "A")])
    md = CliRunner().invoke(app, ["report", str(res), "--stats", "--reps", "50", "-f", "md"])
    assert md.exit_code == 0 and "| P(row > column) | A | B |" in md.output
