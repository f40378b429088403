"""Random: uniformly random available actions, the floor every learned policy must clear.

It is a learner without parameters so that a suite lists it next to the methods
(``{name: random}``) and its row is evaluated under the same contract (episodes, reward,
seeds) in the same tables; its training jobs take no step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marlbench.data.dataset import Batch
from marlbench.learners.base import Learner, Metrics, Policy, register


class UniformPolicy(Policy):
    """Each agent draws uniformly among its available actions (numpy, seeded)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def initial_state(self, batch_size: int, task: str) -> Any:
        return None

    def act(self, obs, avail, state, task):
        avail = np.asarray(avail)
        scores = self.rng.random(avail.shape) * (avail > 0)
        return scores.argmax(-1).astype(np.int64), state

    def sampling(self, seed: int) -> Policy:
        return UniformPolicy(seed)


@register
class Random(Learner):
    name = "random"
    label = "Random"
    title = "Random (uniform over available actions; no training)"
    network_names = ()

    def update_round(self, batches: dict[str, Batch]) -> Metrics:
        return {"loss": 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def policy(self) -> Policy:
        return UniformPolicy()
