"""``marlbench analyze``: attention maps and dormant neurons of a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from marlbench.cli.common import console, user_errors
from marlbench.cli.run import DEFAULT_DATA

analyze_app = typer.Typer(
    help="Look inside trained agents: attention maps (PNG) and τ-dormant neuron ratios.",
    no_args_is_help=True,
)
CKPT_HELP = "A train job's checkpoint: results/runs/train/<id>/checkpoints/step_N.pt"


@analyze_app.command("attention")
@user_errors
def attention(
    checkpoint: Path = typer.Argument(..., help=CKPT_HELP),
    task: str = typer.Option(..., "--task", "-t", help="Test task of the checkpoint's set"),
    episodes: int = typer.Option(8, "--episodes", min=1, max=10_000,
                                 help="Fixed episodes to run over"),
    agent: int = typer.Option(0, "--agent", min=0, help="Which agent's attention to draw"),
    out: Path = typer.Option(Path("results/analysis"), "--out", help="Folder for the PNGs"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
) -> None:
    """Token × token attention per pass (UPDeT: one; STAIRS-Former: low 1, low 2, high) at
    ten evenly spaced steps and averaged over time, tokens grouped own / enemies / allies /
    history; prints the attention mass on history tokens and the row entropy.

    Example: marlbench analyze attention results/runs/train/<id>/checkpoints/step_2000.pt
    --task 3m
    """
    from marlbench.analysis import (
        attention_maps,
        fixed_batch,
        load_checkpoint,
        plot_attention,
        summarise_attention,
        token_groups,
    )
    from marlbench.errors import UserError

    loaded = load_checkpoint(checkpoint, task)
    if not 0 <= agent < loaded.layout.n_agents:
        raise UserError(f"--agent must be in 0..{loaded.layout.n_agents - 1} on {task}")
    batch = fixed_batch(loaded, episodes, data_dir)
    maps, alive = attention_maps(loaded, batch, agent)
    labels = token_groups(loaded.layout, next(iter(maps.values())).shape[-1])
    title = f"{loaded.config['label']} {task} agent {agent}"
    folder = out / f"{checkpoint.parent.parent.name}-{checkpoint.stem}-{task}"
    files = plot_attention(maps, alive, labels, folder, title)
    summary = summarise_attention(maps, alive, labels)
    if as_json:
        typer.echo(json.dumps({"files": [str(f) for f in files], "passes": summary}, indent=2))
        return
    t = Table(title=title)
    for col in ("pass", "history mass", "row entropy", "uniform entropy"):
        t.add_column(col)
    for name, row in summary.items():
        t.add_row(name, f"{row['history_mass']:.3f}", f"{row['row_entropy']:.3f}",
                  f"{row['uniform_entropy']:.3f}")
    console.print(t)
    for f in files:
        console.print(f"wrote {f}")


@analyze_app.command("dormant")
@user_errors
def dormant(
    checkpoint: Path = typer.Argument(..., help=CKPT_HELP),
    task: str = typer.Option(..., "--task", "-t", help="Test task of the checkpoint's set"),
    episodes: int = typer.Option(32, "--episodes", min=1, max=10_000,
                                 help="Fixed episodes to run over"),
    data_dir: Path = typer.Option(DEFAULT_DATA, "--data-dir", help="Data directory"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """τ-dormant neuron ratios (τ = 0, 0.025, 0.1) of every FFN hidden layer and overall
    (ReDo's score; padded steps and dead agents excluded).

    Example: marlbench analyze dormant results/runs/train/<id>/checkpoints/step_2000.pt
    --task 3m
    """
    from marlbench.analysis import DORMANT_TAUS, dormant_ratios, fixed_batch, load_checkpoint

    loaded = load_checkpoint(checkpoint, task)
    ratios = dormant_ratios(loaded, fixed_batch(loaded, episodes, data_dir))
    if as_json:
        typer.echo(json.dumps(ratios, indent=2))
        return
    t = Table(title=f"τ-dormant neurons: {loaded.config['label']} on {task}")
    t.add_column("layer")
    for tau in DORMANT_TAUS:
        t.add_column(f"τ={tau}", justify="right")
    t.add_column("neurons", justify="right")
    for name, row in ratios.items():
        t.add_row(name, *(f"{row[f'tau={tau}']:.3f}" for tau in DORMANT_TAUS),
                  str(row["neurons"]))
    console.print(t)
