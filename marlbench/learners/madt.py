"""MADT: the multi-agent decision transformer's offline actor as published (algorithms.md §3.2).

Facts from ``ReinholdM/Offline-Pre-trained-Multi-Agent-Decision-Transformer`` (the files are
under ``sc2/``, not ``madt/``):

- ``sc2/run_madt_sc2.py``: actor GPT with ``n_layer 2``, ``n_head 2``, ``n_embd 32``,
  ``model_type state_only``, ``context_length 1``, ``max_timestep 400``; the actor reads the
  local observation (``o``), the critic the global state; offline: 10 epochs of mini-batches
  of 128, lr 5e-4.
- ``sc2/models/gpt_model.py``: pre-LN causal blocks, MLP 2×embd with GELU, biased Q/K/V and
  output projections; learned context-position and global-timestep (``max_timestep + 1``
  rows) embeddings, both initialised at 0, added to the tokens; final LayerNorm; actor head
  Linear(embd, |A|) without bias. State encoder Linear + Tanh (built after the N(0, 0.02)
  initialisation pass, so it keeps PyTorch's default initialisation); state_only: the tokens
  are the state embeddings alone. ``configure_optimizers``: AdamW, weight decay on the
  weights of Linear layers only; biases, LayerNorm weights, embeddings and the two position
  tables undecayed.
- ``sc2/framework/trainer.py``: betas (0.9, 0.95), weight decay 0.1, grad-norm clip 0.5;
  offline loss plain cross-entropy of the logits on the dataset actions (no availability
  mask; the mask is used online and at evaluation, ``framework/utils.py``'s ``sample``:
  greedy top-1 of the masked logits in evaluation, multinomial in online roll-outs).
- ``sc2/framework/buffer.py``: a sample is one agent's step; its timestep is the step's index
  in the episode (from 0). ``sc2/envs/starcraft2/StarCraft2_Env.py``: ``obs_agent_id=True``
  appends the agent's one-hot id to its observation (``add_agent_id`` in
  ``sc2/envs/config.py`` does the same for the critic's state).

One marlbench update is one AdamW step on ``batch_episodes`` episodes of the task: the mean
cross-entropy over every (transition, agent) of those episodes (``batch.mask``), the same
objective as MADT's mean over 128 uniformly drawn agent-steps with a larger, episode-grouped
sample; the step counts differ (MADT: 10 epochs of ⌊agent-steps / 128⌋ updates).

Deviations: observations are zero-padded to the widest task and ids appended after them (MADT
pads [obs, id] to 79 values; for one task both are [obs, id]); logits are cut to the task's
actions. The global-timestep table has max(``max_timestep``, longest episode limit) + 1 rows,
so RWARE's 500-step episodes index it (MADT's gather fails beyond ``max_timestep``). Only the
published state_only / context-1 actor is built: no critic (it serves online fine-tuning
only), none of the return, mask and action embeddings MADT builds but state_only never reads,
and a context-position table of ``context_length`` rows (MADT's has 3·context + 1, of which
state_only reads the first). MADT's SMAC observations (MAPPO's wrapper) also carry last
actions; marlbench's are the task's own (SMAC / ODIS layout, or RWARE's 71 values).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import model_validator
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Count, NonNegative, Positive, Probability, Rate, Width
from marlbench.learners.base import LearnerConfig, register
from marlbench.learners.bc import FlatLearner, FlatPolicy, step_mean
from marlbench.nets.flat import agent_inputs, task_logits
from marlbench.nets.gpt import GPT, gpt_init


class MADTConfig(LearnerConfig):
    lr: Rate = 5e-4
    grad_norm_clip: Positive = 0.5
    n_layer: Width = 2
    n_head: Width = 2
    n_embd: Width = 32
    max_timestep: Count = 400
    model_type: Literal["state_only"] = "state_only"
    context_length: Literal[1] = 1
    betas: tuple[Probability, Probability] = (0.9, 0.95)
    weight_decay: NonNegative = 0.1

    @model_validator(mode="after")
    def _heads_divide_width(self) -> MADTConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} must be a multiple of n_head {self.n_head}")
        return self


class MADTActor(nn.Module):
    """States [N, K, in] and their episode timesteps [N, K] → action logits [N, K, A]."""

    def __init__(self, inputs: int, actions: int, config: MADTConfig, max_timestep: int):
        super().__init__()
        self.state_encoder = nn.Sequential(nn.Linear(inputs, config.n_embd), nn.Tanh())
        self.gpt = GPT(config.n_embd, config.n_head, config.n_layer, config.context_length,
                       max_timestep)
        self.head = nn.Linear(config.n_embd, actions, bias=False)
        gpt_init(self.head)

    def forward(self, states: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.head(self.gpt(self.state_encoder(states), timesteps))


def decay_split(module: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(decayed, undecayed) parameters by name: Linear weights are decayed; biases, LayerNorm
    parameters and free parameters (the position tables) are not."""
    decay: dict[str, nn.Parameter] = {}
    no_decay: dict[str, nn.Parameter] = {}
    for prefix, mod in module.named_modules():
        for name, p in mod.named_parameters(recurse=False):
            full = f"{prefix}.{name}" if prefix else name
            target = decay if isinstance(mod, nn.Linear) and name == "weight" else no_decay
            target[full] = p
    return dict(sorted(decay.items())), dict(sorted(no_decay.items()))


class MADTPolicy(FlatPolicy):
    """State: each episode's timestep [B] (from 0), for the global-timestep embedding."""

    def initial_state(self, batch_size: int, task: str) -> Any:
        return torch.zeros(batch_size, dtype=torch.long, device=self.device)


@register
class MADT(FlatLearner):
    name = "madt"
    label = "MADT"
    title = "MADT (decision transformer, state_only, context 1)"
    Config = MADTConfig
    policy_class = MADTPolicy

    def __init__(self, layouts: dict[str, Layout], config: MADTConfig, device: torch.device):
        super().__init__(layouts, config, device)
        longest = max(lay.episode_limit for lay in layouts.values())
        self.agent = MADTActor(self.widths.inputs, self.widths.actions, config,
                               max(config.max_timestep, longest))
        self.agent.to(device)
        decay, no_decay = decay_split(self.agent)
        self.optimiser = torch.optim.AdamW(
            [{"params": list(decay.values()), "weight_decay": config.weight_decay},
             {"params": list(no_decay.values()), "weight_decay": 0.0}],
            lr=config.lr, betas=config.betas)

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        """Cross-entropy of each agent's per-step logits (a context of one step, its row index
        as timestep) on the dataset action, no availability mask, per transition."""
        x = agent_inputs(batch.obs, self.widths)  # [B, T, n, in]
        b, t, n, d = x.shape
        steps = torch.arange(t, device=x.device).view(1, t, 1).expand(b, t, n)
        logits = self.agent(x.reshape(-1, 1, d), steps.reshape(-1, 1)).view(b, t, n, -1)
        logits = task_logits(logits, self.layouts[task])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                             batch.actions.long().reshape(-1), reduction="none")
        return step_mean(ce.view(b, t, n), batch)

    def step(self, inputs: torch.Tensor, state: Any, task: str) -> tuple[torch.Tensor, Any]:
        b, n, d = inputs.shape
        steps = state[:, None].expand(b, n).reshape(-1, 1)
        return self.agent(inputs.reshape(-1, 1, d), steps).view(b, n, -1), state + 1
