"""Per-job overhead of the executors: a plan of no-op jobs (the stand-ins of tests/fake_jobs.py)
run in this process, on local worker processes and as Ray tasks on a local Ray cluster.

    python benchmarks/executor_overhead.py [--seeds 8] [--workers 2]

Each figure is wall time ÷ jobs, cluster start excluded (printed apart).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from marlbench.executors.local import execute  # noqa: E402
from marlbench.plan import make_plan  # noqa: E402
from marlbench.results.store import Store  # noqa: E402
from marlbench.suite import Suite  # noqa: E402

FAKE = {"dataset": "fake_jobs:dataset", "train": "fake_jobs:train_env",
        "eval": "fake_jobs:eval"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(machine())
    plan = make_plan(Suite.model_validate({
        "name": "overhead", "task_sets": ["marine_easy"], "qualities": ["scripted"],
        "seeds": list(range(args.seeds)), "algorithms": [{"name": "bc_t"}],
        "training": {"updates": 4}, "evaluation": {"interval": None}}))
    n = len(plan.jobs)
    opts = {"job_functions": FAKE}
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in (("in-process", 0), (f"local, {args.workers} workers", args.workers)):
            store = Store(Path(tmp) / name.replace(" ", "_"), Path(tmp) / "data")
            start = time.time()
            assert execute(plan, store, workers=workers, opts=opts).ok
            wall = time.time() - start
            print(f"{name}: {n} jobs in {wall:.2f} s = {1000 * wall / n:.0f} ms/job")
        try:
            import ray
        except ImportError:
            print("ray: not installed")
            return
        from marlbench.executors.ray_executor import execute as execute_ray

        start = time.time()
        path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 object_store_memory=512 * 2**20, runtime_env={"env_vars": {"PYTHONPATH": path}})
        print(f"ray: local cluster started in {time.time() - start:.1f} s")
        try:
            for run in ("cold", "warm"):
                store = Store(Path(tmp) / f"ray_{run}", Path(tmp) / "data")
                start = time.time()
                assert execute_ray(plan, store, opts=opts).ok
                wall = time.time() - start
                print(f"ray ({run} workers): {n} jobs in {wall:.2f} s = "
                      f"{1000 * wall / n:.0f} ms/job")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
