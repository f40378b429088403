"""Per-job overhead of evaluation jobs, as one local worker runs them.

    python benchmarks/eval_overhead.py [--task-set marine_easy] [--algorithm bc_t]
                                       [--episodes 32] [--checkpoints 3]

Plans a suite's evaluation jobs (the task set's test tasks × ``--checkpoints`` checkpoint
steps, the paper protocol's 32 episodes), writes one untrained checkpoint per step, then runs
every eval job through the real job function in this process, in the executor's order (grouped
by task, so a worker reuses its compiled environment). For each job it separates:

- overhead: the job's wall time minus its evaluation (status vs record ``wall_time_s``): reading
  job.json, building the learner, loading the checkpoint, writing the record and status;
- environment construction and compilation: the first evaluation of a map in a worker minus the
  median of its later ones;
- roll-outs: the rest.

Untrained policies play episodes of their own lengths, so roll-out times are indicative; the
overhead and compile figures do not depend on the policy. One torch thread (as a worker of a
2-worker pool on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from common import machine

from marlbench.evaluate import _ENV_CACHE
from marlbench.fileio import save_torch, write_json
from marlbench.jobs import _build_learner, run_job
from marlbench.plan import make_plan, topological_order
from marlbench.results.store import Store, read_records, read_status
from marlbench.suite import Suite, load_suite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task-set", default="marine_easy")
    ap.add_argument("--algorithm", default="bc_t")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--checkpoints", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    suite = Suite.model_validate({
        "name": "eval-overhead", "task_sets": [args.task_set], "qualities": ["scripted"],
        "seeds": [0], "algorithms": [{"name": args.algorithm}],
        "training": {"updates": 100 * args.checkpoints},
        "evaluation": {"episodes": args.episodes, "interval": 100}})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "results", Path(tmp) / "data")
        plan = make_plan(suite, store.data_dir)
        train = plan.of_kind("train")[0]
        d = store.job_dir(train)
        write_json(d / "job.json", train.to_dict())
        learner = _build_learner(train.config, torch.device("cpu"))
        (d / "checkpoints").mkdir(parents=True)
        for step in train.config["checkpoint_steps"]:
            save_torch(d / "checkpoints" / f"step_{step}.pt",
                       {"step": step, "learner": learner.state_dict()})
        rows = []
        for jid in topological_order(plan):
            job = plan.jobs[jid]
            if job.kind != "eval":
                continue
            cold = not any(key[0] == job.config["task"] for key in _ENV_CACHE)
            run_job(job.to_dict(), str(store.results_dir), str(store.data_dir),
                    {"device": "cpu", "suite": suite.name})
            out = store.job_dir(job)
            status = read_status(out / "status.json")
            assert status["state"] == "done", status
            rec = read_records(out / "records.json", job.id)[0]
            rows.append((job.config["task"], cold, status["wall_time_s"], rec["wall_time_s"]))
    tasks = list(dict.fromkeys(r[0] for r in rows))
    print(f"{args.algorithm} on {args.task_set}: {len(rows)} eval jobs of {args.episodes} "
          f"episodes, {len(tasks)} maps")
    print(f"{'map':>6} {'first eval s':>12} {'later evals s':>13} {'compile s':>9} "
          f"{'overhead s':>10}")
    total_job = sum(r[2] for r in rows)
    overhead = [r[2] - r[3] for r in rows]
    compile_s = 0.0
    for task in tasks:
        mine = [r for r in rows if r[0] == task]
        first = next(r[3] for r in mine if r[1])
        later = statistics.median(r[3] for r in mine if not r[1])
        compile_s += first - later
        over = statistics.median(r[2] - r[3] for r in mine)
        print(f"{task:>6} {first:>12.2f} {later:>13.2f} {first - later:>9.2f} {over:>10.3f}")
    rollout = total_job - sum(overhead) - compile_s
    print(f"per-job overhead: median {statistics.median(overhead) * 1000:.0f} ms, "
          f"{sum(overhead) / total_job:.1%} of job time")
    print(f"environment construction + compile: {compile_s:.1f} s once per map and worker, "
          f"{compile_s / total_job:.1%} of this run")
    print(f"roll-outs: {rollout:.1f} s of {total_job:.1f} s")
    per_eval = rollout / len(rows)
    paper = load_suite(Path(__file__).resolve().parents[1] / "suites" / "smac_multitask.yaml",
                       "paper")
    evals = make_plan(paper, Path(tempfile.gettempdir())).of_kind("eval")
    maps = len({j.config["task"] for j in evals})
    workers = 2
    est_overhead = len(evals) * statistics.median(overhead)
    est_compile = workers * maps * compile_s / len(tasks)
    print(f"projected for the paper protocol ({len(evals)} eval jobs over {maps} maps, "
          f"{workers} workers, roll-outs at {per_eval:.2f} s/job): overhead + compiles "
          f"{(est_overhead + est_compile) / 3600:.2f} h against "
          f"{len(evals) * per_eval / 3600:.1f} h of roll-outs = "
          f"{(est_overhead + est_compile) / (len(evals) * per_eval):.1%}")

if __name__ == "__main__":
    main()
