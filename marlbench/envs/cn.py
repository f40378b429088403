"""Grid cooperative navigation (ODIS's ``grid_mpe``, tasks cn-2 … cn-15), batched in numpy.

N agents and N landmarks on a grid. Actions: 0 none, 1 north (row − 1), 2 south, 3 west
(col − 1), 4 east; moves off the grid are masked, and when two or more agents target the same
cell (an agent that stays targets its own) none of them moves. The episode succeeds (reward 1,
``battle_won``) when every agent has a landmark within its reach square and a one-to-one
agent–landmark assignment exists; it also ends at the limit. Observation of agent i:
[own (row, col), other agents', landmarks'], every coordinate + 1, entities outside the sight
square reading (0, 0). State: every position + 1.

One difference from the reference: its reset avoids the previous episode's positions of agents
not yet re-placed; here every episode is placed on an empty grid (the first-episode behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from marlbench.envs.maps import Layout
from marlbench.envs.smax import StepResult

CN_ORDER = ("own", "ally", "enemy")
# row/col change of actions 0 none, 1 north, 2 south, 3 west, 4 east
_DELTA = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
_PLACEMENT_ATTEMPTS = 1000


@dataclass(frozen=True)
class CNSpec:
    """One cooperative-navigation task (ODIS ``map_config``)."""

    name: str
    n_agents: int
    rows: int
    cols: int
    sight: int
    episode_limit: int
    reach_range: int = 2
    unit_type_bits: int = 0
    shield: bool = False
    sampled_from: tuple[str, ...] = ()
    defined_by: str = "ODIS grid_mpe map_config"

    @property
    def n_enemies(self) -> int:
        return self.n_agents  # landmarks play the enemy role in the entity layout

    @property
    def ally_units(self) -> tuple[str, ...]:
        return ("agent",) * self.n_agents

    @property
    def enemy_units(self) -> tuple[str, ...]:
        return ("landmark",) * self.n_agents

    @property
    def layout(self) -> Layout:
        n = self.n_agents
        return Layout(
            n_agents=n, n_enemies=n, move_feats=0, enemy_feats=2, ally_feats=2, own_feats=2,
            n_actions=5, state_dim=4 * n, episode_limit=self.episode_limit, order=CN_ORDER,
            n_no_attack=5,
        )


def _cn(name: str, n: int, size: int, limit: int) -> CNSpec:
    return CNSpec(name, n, size, size, size - 1, limit)


CN_TASKS: dict[str, CNSpec] = {
    t.name: t
    for t in [
        _cn("cn-2", 2, 6, 50), _cn("cn-3", 3, 8, 50), _cn("cn-4", 4, 10, 50),
        _cn("cn-5", 5, 12, 50), _cn("cn-6", 6, 15, 50), _cn("cn-7", 7, 15, 70),
        _cn("cn-8", 8, 15, 70), _cn("cn-9", 9, 15, 70), _cn("cn-10", 10, 15, 70),
        _cn("cn-11", 11, 18, 70), _cn("cn-12", 12, 18, 70), _cn("cn-15", 15, 20, 80),
    ]
}


class CNEnv:
    """B parallel cooperative-navigation episodes with the vectorised environment interface."""

    backend = "grid"

    def __init__(self, spec: CNSpec, batch_size: int):
        self.spec = spec
        self.layout = spec.layout
        self.batch_size = batch_size
        self._rng: np.random.Generator | None = None

    # -- placement ------------------------------------------------------------------------
    def _place(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        while True:
            agents: list[tuple[int, int]] = []
            while len(agents) < s.n_agents:
                cell = (int(rng.integers(s.rows)), int(rng.integers(s.cols)))
                if cell not in agents:
                    agents.append(cell)
            landmarks: list[tuple[int, int]] = []
            for _ in range(_PLACEMENT_ATTEMPTS):
                if len(landmarks) == s.n_agents:
                    break
                cell = (int(rng.integers(s.rows)), int(rng.integers(s.cols)))
                if cell in agents or cell in landmarks:
                    continue
                if any(abs(cell[0] - a[0]) <= s.reach_range and abs(cell[1] - a[1])
                       <= s.reach_range for a in agents):
                    continue
                landmarks.append(cell)
            if len(landmarks) == s.n_agents:
                return np.array(agents), np.array(landmarks)

    # -- views ----------------------------------------------------------------------------
    def _observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, n = self.spec, self.spec.n_agents
        entities = np.concatenate([self._agents, self._landmarks], axis=1)  # [B, 2n, 2]
        own = self._agents[:, :, None, :]  # [B, n, 1, 2]
        visible = (np.abs(entities[:, None] - own) <= s.sight).all(-1)  # [B, n, 2n]
        seen = np.where(visible[..., None], entities[:, None] + 1, 0)  # [B, n, 2n, 2]
        others = np.array([[k for k in range(2 * n) if k != i] for i in range(n)])
        rows = np.arange(n)[:, None]
        obs = np.concatenate([self._agents[:, :, None, :] + 1, seen[:, rows, others]], axis=2)
        obs = obs.reshape(self.batch_size, n, 4 * n).astype(np.float32)
        state = (entities + 1).reshape(self.batch_size, 4 * n).astype(np.float32)
        r, c = self._agents[..., 0], self._agents[..., 1]
        avail = np.stack(
            [np.ones_like(r), r > 0, r < s.rows - 1, c > 0, c < s.cols - 1], axis=-1
        ).astype(np.int32)
        return obs, state, avail

    def _result(self, reward, terminated, truncated, won) -> StepResult:
        obs, state, avail = self._observe()
        zeros = np.zeros(self.batch_size, dtype=np.int64)
        return StepResult(obs, state, avail, reward, terminated, truncated, won, zeros, zeros)

    def _success(self) -> np.ndarray:
        s = self.spec
        diff = np.abs(self._landmarks[:, :, None, :] - self._agents[:, None, :, :])
        reach = (diff <= s.reach_range).all(-1)  # [B, landmark, agent]
        candidate = reach.any(axis=1).all(axis=1)
        ok = np.zeros(self.batch_size, dtype=bool)
        for b in np.flatnonzero(candidate):
            rows, cols = linear_sum_assignment(~reach[b])
            ok[b] = bool(reach[b][rows, cols].all())
        return ok

    # -- API ------------------------------------------------------------------------------
    def reset(self, seed: int) -> StepResult:
        self._rng = np.random.default_rng(seed)
        placed = [self._place(self._rng) for _ in range(self.batch_size)]
        self._agents = np.stack([p[0] for p in placed])
        self._landmarks = np.stack([p[1] for p in placed])
        self._step = 0
        self._done = np.zeros(self.batch_size, dtype=bool)
        zeros = np.zeros(self.batch_size, dtype=bool)
        return self._result(np.zeros(self.batch_size, np.float32), zeros, zeros, zeros)

    def step(self, actions: np.ndarray) -> StepResult:
        if self._rng is None:
            raise RuntimeError("call reset() before step()")
        _, _, avail = self._observe()
        actions = np.asarray(actions, dtype=np.int64)
        actions = np.where(np.take_along_axis(avail, actions[..., None], -1)[..., 0] == 1,
                           actions, 0)
        target = self._agents + _DELTA[actions]
        same = (target[:, :, None, :] == target[:, None, :, :]).all(-1).sum(-1)
        move = (same == 1) & ~self._done[:, None]
        self._agents = np.where(move[..., None], target, self._agents)
        self._step += 1
        running = ~self._done
        won = self._success() & running
        truncated = running & ~won & (self._step >= self.spec.episode_limit)
        self._done |= won | truncated
        return self._result(won.astype(np.float32), won, truncated, won)

    @property
    def all_done(self) -> bool:
        return bool(self._done.all())
