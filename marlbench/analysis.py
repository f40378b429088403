"""Analyses of trained agents (algorithms.md §5): attention maps and τ-dormant neurons.

Both run one no-grad pass of a checkpoint's agent over a fixed batch of episodes of one task:
the training data of that task when it is a seen task, otherwise greedy roll-outs of the
policy itself on the suite's backend. Padded steps and dead agents are left out.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout, get_map
from marlbench.errors import UserError
from marlbench.nets.transformer import SelfAttention

DORMANT_TAUS = (0.0, 0.025, 0.1)


@dataclass
class Loaded:
    learner: object
    config: dict
    layout: Layout
    task: str


def load_checkpoint(checkpoint: Path, task: str) -> Loaded:
    """A trained learner from ``results/runs/train/<id>/checkpoints/step_N.pt``."""
    from marlbench.jobs import _build_learner

    checkpoint = Path(checkpoint)
    job = checkpoint.parent.parent / "job.json"
    if not checkpoint.is_file() or not job.is_file():
        raise UserError(f"{checkpoint} is not a checkpoint of a marlbench train job (expected "
                        "results/runs/train/<id>/checkpoints/step_N.pt next to its job.json)")
    from marlbench.results.store import read_job_file

    config = read_job_file(job)["config"]
    if config.get("task_set") is None or "test" not in config:
        raise UserError(f"{job} is not a train job's (no task set or test tasks)")
    if task not in config["test"]:
        raise UserError(f"task {task} is not a test task of {config['task_set']}; choose one "
                        f"of: {', '.join(config['test'])}")
    learner = _build_learner(config, torch.device("cpu"))
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        learner.load_state_dict(state["learner"])
    except (RuntimeError, EOFError, KeyError, TypeError, OSError, ValueError,
            pickle.UnpicklingError) as exc:
        raise UserError(f"{checkpoint} is not a readable checkpoint of this {config['label']} "
                        f"run ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); it is "
                        "truncated, corrupt or another run's") from None
    if not hasattr(getattr(learner, "agent", None), "tokenizer"):
        raise UserError(f"{config['algorithm']} has no single entity-transformer agent to "
                        "analyse; analyze supports bc_t, bc_r, updet_m, updet_l and stairs")
    learner.agent.eval()
    return Loaded(learner, config, get_map(task).layout, task)


def fixed_batch(loaded: Loaded, episodes: int, data_dir: Path, seed: int = 0) -> Batch:
    """The task's training data (last ``episodes``) or greedy roll-outs when it is unseen."""
    from marlbench.data.dataset import load_task_data
    from marlbench.evaluate import cached_env
    from marlbench.rollout import PolicyActor, rollout

    sources = loaded.config["datasets"].get(loaded.task)
    if sources:
        data = load_task_data([(Path(data_dir) / sources[0]["dir"], episodes)],
                              loaded.layout, loaded.task)
        idx = np.arange(min(episodes, data.n_episodes))
        t = int(data.lengths[idx].max())
        return Batch.from_episodes(data.take(idx, t), t)
    env = cached_env(loaded.task, episodes, loaded.config["backend"])
    actor = PolicyActor(loaded.learner.policy(), loaded.task, episodes)
    eps = rollout(env, actor, seed, record=True).episodes
    return Batch.from_episodes(eps, int(eps.lengths.max()))


def step_through(loaded: Loaded, batch: Batch,
                 on_step: Callable[[int, torch.Tensor], None]) -> None:
    """Run the agent step by step (teacher-forced last actions); before each step
    ``on_step(t, valid)`` gets the rows (batch × agents) that are real, living agents."""
    agent, lay = loaded.learner.agent, loaded.layout
    b, t, n = batch.obs.shape[:3]
    last = torch.cat([torch.full_like(batch.actions[:, :1], -1), batch.actions[:, :-1]], 1)
    alive = ((batch.avail > 0).sum(-1) > 1) & (batch.mask[..., None] > 0)  # [B, T, n]
    with torch.inference_mode():
        tokens = agent.tokenizer(batch.obs, last, lay)
        if hasattr(agent, "initial_hist"):  # STAIRS-Former
            hist = agent.initial_hist(b * n, batch.obs.device)
        else:
            hist = batch.obs.new_zeros(b * n, 1, agent.emb)
        for k in range(t):
            on_step(k, alive[:, k].reshape(b * n))
            tok = tokens[:, k].reshape(b * n, -1, agent.emb)
            if hasattr(agent, "initial_hist"):
                _, hist = agent.step(tok, hist, k, lay)
            else:
                _, hist = agent.step(tok, hist, lay)


def ffn_relus(agent: nn.Module) -> dict[str, nn.Module]:
    """The ReLU hidden layer of every transformer FFN (UPDeT ``ff``; STAIRS ``ff_obs`` and
    ``ff_hist`` in f_L and f_H)."""
    out = {}
    for name, module in agent.named_modules():
        if name.rsplit(".", 1)[-1] in ("ff", "ff_obs", "ff_hist") and isinstance(
                module, nn.Sequential):
            relus = [m for m in module if isinstance(m, nn.ReLU)]
            if relus:
                out[name] = relus[0]
    return out


def dormant_ratios(loaded: Loaded, batch: Batch,
                   taus: tuple[float, ...] = DORMANT_TAUS) -> dict[str, dict[str, float]]:
    """τ-dormant ratio per FFN layer and overall (ReDo's score: mean |h_i| over valid inputs
    divided by the layer's mean)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    valid: list[torch.Tensor] = []

    def hook(name):
        def fn(module, inputs, out):
            rows = out[valid[0]]  # [rows, tokens, hidden] of living agents on real steps
            flat = rows.reshape(-1, rows.shape[-1]).abs()
            sums[name] = sums.get(name, 0) + flat.sum(0)
            counts[name] = counts.get(name, 0) + flat.shape[0]
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in ffn_relus(loaded.learner.agent)
               .items()]
    def on_step(k: int, v: torch.Tensor) -> None:
        valid[:] = [v]

    try:
        step_through(loaded, batch, on_step)
    finally:
        for h in handles:
            h.remove()
    out: dict[str, dict[str, float]] = {}
    totals = {tau: 0 for tau in taus}
    neurons = 0
    for name, s in sums.items():
        mean = s / max(counts[name], 1)
        score = mean / (mean.mean() + 1e-9)
        row = {}
        for tau in taus:
            dormant = (torch.isclose(score, torch.zeros_like(score)) if tau == 0
                       else score <= tau)
            row[f"tau={tau}"] = float(dormant.float().mean())
            totals[tau] += int(dormant.sum())
        row["neurons"] = int(score.numel())
        neurons += score.numel()
        out[name] = row
    out["all"] = {f"tau={tau}": totals[tau] / max(neurons, 1) for tau in taus}
    out["all"]["neurons"] = neurons
    return out


def attention_maps(loaded: Loaded, batch: Batch, agent_index: int = 0
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Post-softmax attention per pass (UPDeT: one; STAIRS: low 1, low 2, high), for one agent
    of every episode: {pass: [T, tokens, tokens]} averaged over the episodes alive at t, and
    the number of such episodes per step."""
    modules = [m for m in loaded.learner.agent.modules() if isinstance(m, SelfAttention)]
    names = {id(m): n for n, m in loaded.learner.agent.named_modules()
             if isinstance(m, SelfAttention)}
    b, n = batch.obs.shape[0], batch.obs.shape[2]
    rows = torch.arange(b) * n + agent_index
    per_step: dict[str, list[np.ndarray]] = {}
    alive_counts = []
    calls: list[tuple[str, torch.Tensor]] = []
    current: list[torch.Tensor] = []

    def on_step(k, valid):
        flush()
        current[:] = [valid[rows]]

    def flush():
        if not calls:
            return
        seen: dict[str, int] = {}
        keep = current[0]
        for name, w in calls:
            seen[name] = seen.get(name, 0) + 1
            label = f"{name} pass {seen[name]}"
            mean = w[rows][keep].mean(dim=(0, 1)) if keep.any() else torch.zeros_like(w[0, 0])
            per_step.setdefault(label, []).append(mean.numpy())
        alive_counts.append(int(keep.sum()))
        calls.clear()

    def hook(module, inputs, out):
        calls.append((names[id(module)], module.last_attention))

    handles = [m.register_forward_hook(hook) for m in modules]
    for m in modules:
        m.keep_attention = True
    try:
        step_through(loaded, batch, on_step)
        flush()
    finally:
        for m in modules:
            m.keep_attention = False
            m.last_attention = None
        for h in handles:
            h.remove()
    return {k: np.stack(v) for k, v in per_step.items()}, np.array(alive_counts)


def token_groups(layout: Layout, n_tokens: int) -> list[str]:
    """Token labels in order: own, e0…, a0…, then history tokens."""
    labels = ["own"] + [f"e{j}" for j in range(layout.n_enemies)]
    labels += [f"a{k}" for k in range(layout.n_agents - 1)]
    labels += ["hist"] if n_tokens - len(labels) == 1 else ["low", "high"]
    return labels


def summarise_attention(maps: dict[str, np.ndarray], alive: np.ndarray, labels: list[str]
                        ) -> dict[str, dict[str, float]]:
    """Per pass: mean attention mass on history tokens and mean row entropy (alive steps)."""
    hist = [i for i, lab in enumerate(labels) if lab in ("hist", "low", "high")]
    out = {}
    steps = alive > 0
    for name, m in maps.items():
        m = m[steps]
        entropy = -(m * np.log(np.clip(m, 1e-12, None))).sum(-1).mean()
        out[name] = {"history_mass": float(m[..., hist].sum(-1).mean()),
                     "row_entropy": float(entropy),
                     "uniform_entropy": float(np.log(m.shape[-1]))}
    return out


def plot_attention(maps: dict[str, np.ndarray], alive: np.ndarray, labels: list[str],
                   out: Path, title: str, snapshots: int = 10) -> list[Path]:
    """One PNG per pass: the token × token matrix at evenly spaced alive steps plus the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    steps = np.flatnonzero(alive > 0)
    if steps.size == 0:
        raise UserError("no step of the batch has the chosen agent alive")
    picks = np.unique(steps[np.linspace(0, steps.size - 1, min(snapshots, steps.size))
                            .round().astype(int)])
    files = []
    for name, m in maps.items():
        cols = len(picks) + 1
        fig, axes = plt.subplots(1, cols, figsize=(2.2 * cols, 2.6), squeeze=False)
        panels = [(f"t={t}", m[t]) for t in picks] + [("mean", m[steps].mean(0))]
        for ax, (head, mat) in zip(axes[0], panels, strict=True):
            ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
            ax.set_title(head, fontsize=8)
            ax.set_xticks(range(len(labels)), labels, fontsize=5, rotation=90)
            ax.set_yticks(range(len(labels)), labels, fontsize=5)
        fig.suptitle(f"{title} — {name}", fontsize=9)
        fig.tight_layout()
        path = out / f"attention_{name.replace('.', '_').replace(' ', '_')}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        files.append(path)
    return files
