"""How long `marlbench report` takes on a results directory, phase by phase.

    python benchmarks/report_speed.py RESULTS [RESULTS ...] [--reps 2000]

Times loading (records, plans, job states), the four tables, the robust statistics with
``--reps`` bootstrap replicates, and the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine

from marlbench.cli.report import table_of
from marlbench.results import plots
from marlbench.results.aggregate import BUILDERS, select_checkpoint
from marlbench.results.robust import robust_report
from marlbench.results.store import load_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()
    print(machine())
    t0 = time.perf_counter()
    res = load_results(args.results)
    t1 = time.perf_counter()
    tables = {name: table_of(res, None, None, name) for name in BUILDERS}
    t2 = time.perf_counter()
    main_table = tables["main"]
    rates = select_checkpoint(res.records, main_table.rule)
    rep = robust_report(rates, main_table.columns, args.reps, 0)
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        n = len(plots.learning_curves(res.records, main_table.columns, out)
                + plots.split_bars(main_table, out)
                + plots.performance_profiles(rates, main_table.columns, out, args.reps, 0)
                + plots.improvement_matrix(rep, out))
    t4 = time.perf_counter()
    print(f"{len(res.records)} records, {len(res.states)} eval jobs, "
          f"{len(main_table.columns)} algorithms, {rep.n_common} common tasks")
    print(f"load {t1 - t0:.2f} s · 4 tables {t2 - t1:.2f} s · robust statistics "
          f"({args.reps} replicates) {t3 - t2:.2f} s · {n} figure files {t4 - t3:.2f} s")


if __name__ == "__main__":
    main()
