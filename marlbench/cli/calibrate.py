"""``marlbench calibrate``: measure this machine so that ``run --dry-run`` can say what a run
will cost."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from marlbench.cli.common import console, err_console, user_errors


@user_errors
def calibrate(
    learners: list[str] = typer.Option(None, "--learner", "-l", help="Only these learners "
                                       "(repeatable; default: all)"),
    as_json: bool = typer.Option(False, "--json", help="Print the calibration as JSON"),
) -> None:
    """Measure this machine for the cost projection of `run --dry-run` (a minute or two, one
    torch thread): each learner's seconds per update at 8 full-length episodes and at one
    short episode on 3m and 3s5z (and on CUDA when present), greedy roll-outs and environment
    compilation, scripted collection (and its episodes' lengths, which training batches of
    scripted data not collected yet are costed at) and MAPPO behaviour training with its
    evaluations. Stored per machine under the
    cache directory
    ($MARLBENCH_CACHE, default ~/.cache/marlbench/calibration/).

    Example: marlbench calibrate && marlbench run suites/smac_multitask.yaml -p paper --dry-run
    """
    from marlbench.calibrate import calibrate as measure
    from marlbench.cost import save_calibration
    from marlbench.errors import UserError
    from marlbench.learners import LEARNERS

    unknown = [name for name in learners or [] if name not in LEARNERS]
    if unknown:
        raise UserError(f"--learner {unknown[0]!r}: unknown; choose from {', '.join(LEARNERS)}")
    if learners and "bc_t" not in learners:
        learners = ["bc_t", *learners]  # the fallback of the cost model
    with err_console.status("calibrating") as status:
        doc = measure(learners or None, progress=lambda what: status.update(what))
    path = save_calibration(doc)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    t = Table(title=f"Calibration of {doc['machine']['cpu']} ({doc['machine']['cores']} cores), "
                    f"1 torch thread")
    t.add_column("learner")
    for device in doc["update_s"]:
        for task in doc["maps"]:
            t.add_column(f"s/update {task} {device}", justify="right")
    rows: dict[str, list[str]] = {}
    for table in doc["update_s"].values():
        for name, per in table.items():
            rows.setdefault(name, []).extend(f"{per[m]:.3f}" for m in doc["maps"])
    for name, cells in rows.items():
        t.add_row(name, *cells)
    console.print(t)
    for task in doc["maps"]:
        console.print(f"{task}: greedy roll-out {doc['eval_step_s'][task] * 1000:.1f} ms per "
                      f"batch step of 32 episodes; scripted collection "
                      f"{doc['collect_episode_s'][task] * 1000:.1f} ms per episode "
                      f"({_mean(doc['scripted_rows'][task]):.0f} rows on average); MAPPO "
                      f"{doc['mappo_steps_per_s'][task]:,.0f} env-steps/s")
    console.print(f"environment build + compile {doc['compile_s']:.1f} s per map (median), a "
                  f"fresh worker's imports {doc['worker_start_s']:.1f} s; longest greedy "
                  f"episode at {doc['eval_length_fraction']:.0%} of the limit; measured in "
                  f"{doc['wall_time_s']:.0f} s; saved to {path}")


def _mean(xs: list[int]) -> float:
    return sum(xs) / len(xs)
