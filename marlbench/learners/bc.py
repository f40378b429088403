"""BC: AlberDICE's data policy μ as an offline single-task learner (algorithms.md §3.1).

Facts from ``dematsunaga/alberdice`` (``pymarl-master/src``):

- ``controllers/basic_controller.py``: the data policy (``data_policy=True``) is one network
  shared by all agents whose input is the agent's observation with its one-hot id appended
  (``obs_agent_id`` forced on); ``forward_policy`` sets the logits of unavailable actions to
  −1e10 before the softmax (``mask_before_softmax: True`` in ``config/algs/alberdice.yaml``);
  the ε floor there is 0 (``epsilon_start/finish 0.0``).
- ``modules/agents/mlp_agent.py`` (the data policy of the ``sep_mlp`` agent): Linear(in, 128)
  → ReLU → Linear(128, 128) → ReLU → Linear(128, |A|), 128 = ``rnn_hidden_dim``
  (``config/default.yaml``); fc1 and fc2 weights Xavier-uniform, fc3's weights all 1e-3
  (``uniform_(a=1e-3, b=1e-3)``), biases PyTorch's default.
- ``learners/alberdice_learner.py``: loss −log(μ(a|o) + 1e-10) averaged, one Adam step, no
  gradient clipping; lr is the run's ``lr`` (5e-4 in ``default.yaml`` and, per algorithms.md
  §3.8, the RWARE command; 1e-4 in ``alberdice.yaml``): 5e-4 here.

Deviations: the mean runs over the batch's transitions (``batch.mask``: filled rows minus the
post-terminal one) and agents. The reference averages, unmasked, over every row but the
batch's last: padded rows have no available action, so their probabilities are uniform and
add a constant without gradient, while a shorter episode's post-terminal row is trained
towards its placeholder action 0. With the default ``sep_transformer`` agent (the RWARE runs)
μ is a causal transformer over the episode's observation/action history
(``modules/agents/sep_transformer_agent.py``); this learner is the MLP data policy on the
current observation. Observation standardisation (``standardize_obs``) belongs to the
dataset, not here. Built for several tasks, inputs are padded (:mod:`marlbench.nets.flat`).
One update is one Adam step on ``batch_episodes`` episodes of the task (AlberDICE: 32).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from marlbench.data.dataset import Batch
from marlbench.envs.maps import Layout
from marlbench.fields import Positive, Width
from marlbench.learners.base import AgentState, Learner, LearnerConfig, Policy, register
from marlbench.nets.flat import FlatWidths, agent_inputs, masked_logits, task_logits

# (agent inputs [..., in], policy state, task) → (logits [..., A_max], next state)
StepFn = Callable[[torch.Tensor, Any, str], tuple[torch.Tensor, Any]]


def step_mean(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """values [B, T, n] averaged over the batch's transitions (``batch.mask``; 0 on the rows
    that pad episodes or a fused group's batches) and agents."""
    mask = batch.mask
    return (values * mask[..., None]).sum() / (mask.sum().clamp(min=1) * values.shape[-1])


class FlatPolicy(Policy):
    """Actions from masked logits over B episodes of one task: greedy (argmax), or sampled
    from their softmax with the policy's own generator (:meth:`sampling`)."""

    def __init__(self, step: StepFn, layouts: dict[str, Layout], widths: FlatWidths,
                 device: torch.device, dtype: torch.dtype):
        self.step, self.layouts, self.widths = step, layouts, widths
        self.device, self.dtype = device, dtype
        self.generator: torch.Generator | None = None

    def initial_state(self, batch_size: int, task: str) -> Any:
        return None

    @torch.no_grad()
    def act(self, obs, avail, state, task):
        lay = self.layouts[task]
        o = torch.as_tensor(np.asarray(obs), device=self.device, dtype=self.dtype)
        av = torch.as_tensor(np.asarray(avail), device=self.device)
        logits, state = self.step(agent_inputs(o, self.widths), state, task)
        logits = masked_logits(task_logits(logits, lay), av)
        if self.generator is None:
            actions = logits.argmax(-1)
        else:
            probs = F.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
            actions = torch.multinomial(probs, 1, generator=self.generator)
            actions = actions.view(logits.shape[:-1])
        return actions.cpu().numpy().astype(np.int64), state

    def sampling(self, seed: int) -> Policy:
        sampler = copy.copy(self)
        sampler.generator = torch.Generator(device=self.device).manual_seed(seed)
        return sampler


class FlatLearner(AgentState, Learner):
    """A learner with one shared per-agent network ``agent`` on flat inputs (observation and
    one-hot id, :mod:`marlbench.nets.flat`) and one ``optimiser``."""

    policy_class: type[FlatPolicy] = FlatPolicy

    def __init__(self, layouts: dict[str, Layout], config: LearnerConfig, device: torch.device):
        super().__init__(layouts, config, device)
        self.widths = FlatWidths.of(layouts)

    def step(self, inputs: torch.Tensor, state: Any, task: str) -> tuple[torch.Tensor, Any]:
        """The policy's step: agent inputs [B, n, in] → logits [B, n, A_max], next state."""
        return self.agent(inputs), state

    def policy(self) -> Policy:
        self.agent.eval()
        dtype = next(self.agent.parameters()).dtype
        return self.policy_class(self.step, self.layouts, self.widths, self.device, dtype)


class DataPolicyMLP(nn.Module):
    """AlberDICE's MLP agent: inputs → hidden → hidden → action logits (ReLU)."""

    def __init__(self, inputs: int, hidden: int, actions: int):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, actions)
        with torch.no_grad():
            nn.init.xavier_uniform_(self.fc1.weight)
            nn.init.xavier_uniform_(self.fc2.weight)
            self.fc3.weight.fill_(1e-3)  # the reference's uniform_(a=1e-3, b=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BCConfig(LearnerConfig):
    hidden: Width = 128  # rnn_hidden_dim
    grad_norm_clip: Positive = 1e6  # the reference's data-policy step is not clipped


@register
class BC(FlatLearner):
    name = "bc"
    label = "BC"
    title = "BC (AlberDICE data policy, shared MLP with agent id)"
    Config = BCConfig

    def __init__(self, layouts: dict[str, Layout], config: BCConfig, device: torch.device):
        super().__init__(layouts, config, device)
        self.agent = DataPolicyMLP(self.widths.inputs, config.hidden, self.widths.actions)
        self.agent.to(device)
        self.optimiser = torch.optim.Adam(self.agent.parameters(), lr=config.lr)

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        """−log(μ(a|o, id) + 1e-10), μ the softmax of the masked logits, per transition."""
        logits = task_logits(self.agent(agent_inputs(batch.obs, self.widths)), self.layouts[task])
        probs = F.softmax(masked_logits(logits, batch.avail), dim=-1)
        taken = probs.gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1)
        return step_mean(-torch.log(taken + 1e-10), batch)
