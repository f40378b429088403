"""The multi-robot warehouse (RWARE), batched: the PyPI ``rware`` 2.x package's own dynamics.

Each of the B episodes is a real ``rware.warehouse.Warehouse`` built from the package's
registration of ``rware-{size}-{n}ag-easy-v2`` (environments.md §3): its ``step`` moves the
robots, resolves collisions, delivers shelves and draws new requests. Only the observation
is built here, for the whole batch at once from each warehouse's grid (rware builds it one
agent and one cell at a time, 43 % of its step): the same 71 values per agent as rware's
flattened observation (self: x, y, carrying, direction one-hot, on highway; then the 3 x 3
window row by row: has agent, its direction one-hot (an empty cell reads "up"), has shelf,
shelf requested), tested equal to the package's own on random roll-outs.

Conventions behind the vectorised-environment seam:

- observations [B, n, 71], a flat layout (one vector per agent, no entities);
- the global state in the AlberDICE layout (environments.md §6): x, y, direction per agent,
  then the request queue's shelf positions (x, y), ``3 n + 2 q`` values;
- all five actions always available (0 no-op, 1 forward, 2 left, 3 right, 4 toggle load);
- rware's 500-step limit, which it reports as termination, is reported as truncation
  (no battle is ever won or lost: ``terminated`` stays False);
- the team reward, per ``reward``: ``rware`` sums rware's delivery rewards over the agents;
  ``alberdice`` is the evaluation contract behind the published offline numbers: agent 0's
  delivery reward plus AlberDICE's shaping (``marl/env/warehouse/reward_calculator.py``):
  +0.006 while it stands on a requested shelf carrying it, +0.003 on one without carrying
  it, +0.001 when any requested shelf is in its 3 x 3 view.

Finished episodes stay as they ended (reward 0) until the next ``reset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marlbench.envs.maps import Layout
from marlbench.envs.smax import StepResult

RWARE_OBS = 71  # sensor range 1, no message bits
RWARE_ACTIONS = 5
REWARDS = ("rware", "alberdice")
_SIZES = ("tiny", "small")
_QUEUE = {"easy": 2.0, "": 1.0, "hard": 0.5}  # request queue per agent (rware's registration)
# AlberDICE's shaping of agent 0's reward (reward_calculator.py)
SHAPE_CARRYING, SHAPE_UNDER, SHAPE_IN_VIEW = 0.006, 0.003, 0.001


@dataclass(frozen=True)
class RwareSpec:
    """One warehouse task: ``rware-{size}-{n}ag`` on the easy request queue."""

    name: str
    size: str
    n_agents: int
    difficulty: str = "easy"
    episode_limit: int = 500
    unit_type_bits: int = 0
    shield: bool = False
    sampled_from: tuple[str, ...] = ()

    @property
    def env_id(self) -> str:
        diff = f"-{self.difficulty}" if self.difficulty else ""
        return f"rware-{self.size}-{self.n_agents}ag{diff}-v2"

    @property
    def defined_by(self) -> str:
        return f"rware 2.x registration {self.env_id}"

    @property
    def queue(self) -> int:
        return int(self.n_agents * _QUEUE[self.difficulty])

    @property
    def n_enemies(self) -> int:
        return 0

    @property
    def ally_units(self) -> tuple[str, ...]:
        return ("robot",) * self.n_agents

    @property
    def enemy_units(self) -> tuple[str, ...]:
        return ()

    @property
    def layout(self) -> Layout:
        return Layout(
            n_agents=self.n_agents, n_enemies=0, move_feats=0, enemy_feats=0, ally_feats=0,
            own_feats=RWARE_OBS, n_actions=RWARE_ACTIONS,
            state_dim=3 * self.n_agents + 2 * self.queue, episode_limit=self.episode_limit,
            order=("own",), n_no_attack=RWARE_ACTIONS, kind="flat",
        )


RWARE_TASKS: dict[str, RwareSpec] = {
    s.name: s
    for s in (RwareSpec(f"rware-{size}-{n}ag", size, n) for size in _SIZES for n in (2, 4, 6))
}


def _import_rware():
    try:
        import gymnasium
        import rware  # noqa: F401  (registers the rware-* ids)
        from rware.warehouse import Warehouse
    except ImportError as exc:  # a dependency: only a broken install gets here
        raise RuntimeError(f"the rware backend needs the rware package: {exc}") from exc
    return gymnasium, Warehouse


def _warehouse_class():
    """rware's Warehouse with its per-agent observation switched off (built batched here)."""
    global _BATCHED
    if _BATCHED is None:
        _, warehouse = _import_rware()

        class BatchedObsWarehouse(warehouse):
            def _make_obs(self, agent):  # observations are built for the batch in RwareEnv
                return None

        _BATCHED = BatchedObsWarehouse
    return _BATCHED


_BATCHED = None


class RwareEnv:
    """B parallel warehouse episodes of one task with the vectorised environment interface."""

    backend = "rware"

    def __init__(self, spec: RwareSpec, batch_size: int, reward: str = "rware"):
        if reward not in REWARDS:
            raise ValueError(f"unknown rware reward {reward!r}; choose one of: "
                             f"{', '.join(REWARDS)}")
        gymnasium, _ = _import_rware()
        self.spec = spec
        self.layout = spec.layout
        self.batch_size = batch_size
        self.reward = reward
        kwargs = dict(gymnasium.spec(spec.env_id).kwargs)
        kwargs["max_steps"] = spec.episode_limit
        cls = _warehouse_class()
        self.envs = [cls(**kwargs) for _ in range(batch_size)]
        w = self.envs[0]
        self.rows, self.cols = w.grid_size
        self._highway = np.asarray(w.highways, dtype=np.float32)
        n = spec.n_agents
        self._pos = np.zeros((batch_size, n, 2), np.int64)  # x, y
        self._dir = np.zeros((batch_size, n + 1), np.int64)  # by agent id; 0: empty ("up")
        self._carry = np.zeros((batch_size, n), np.float32)
        self._grid = np.zeros((batch_size, 2, self.rows + 2, self.cols + 2), np.int64)
        self._queue = np.zeros((batch_size, spec.queue, 2), np.float32)
        self._requested: np.ndarray | None = None  # [B, shelves + 1] bool, by shelf id
        self._done = np.ones(batch_size, dtype=bool)
        self._obs = np.zeros((batch_size, n, RWARE_OBS), np.float32)
        self._window = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])

    # -- reading the warehouses ---------------------------------------------------------
    def _read(self, b: int) -> None:
        """Copy warehouse b's robots, grid and request queue into the batch arrays."""
        from rware.warehouse import _LAYER_AGENTS, _LAYER_SHELFS

        w = self.envs[b]
        for i, a in enumerate(w.agents):
            self._pos[b, i] = a.x, a.y
            self._dir[b, i + 1] = a.dir.value
            self._carry[b, i] = a.carrying_shelf is not None
        self._grid[b, 0, 1:-1, 1:-1] = w.grid[_LAYER_AGENTS]
        self._grid[b, 1, 1:-1, 1:-1] = w.grid[_LAYER_SHELFS]
        self._requested[b] = False
        for k, s in enumerate(w.request_queue):
            self._queue[b, k] = s.x, s.y
            self._requested[b, s.id] = True

    def _observe(self) -> np.ndarray:
        """rware's flattened observation of every agent of every episode: [B, n, 71]."""
        b_idx = np.arange(self.batch_size)[:, None, None]
        x, y = self._pos[..., 0], self._pos[..., 1]
        cy = y[..., None] + 1 + self._window[:, 0]  # [B, n, 9] in the padded grid
        cx = x[..., None] + 1 + self._window[:, 1]
        agent_id = self._grid[b_idx, 0, cy, cx]
        shelf_id = self._grid[b_idx, 1, cy, cx]
        eye = np.eye(4, dtype=np.float32)
        cells = np.concatenate([
            (agent_id > 0)[..., None],
            eye[np.take_along_axis(self._dir[:, None, :], agent_id.reshape(
                self.batch_size, 1, -1), axis=2).reshape(agent_id.shape)],
            (shelf_id > 0)[..., None],
            np.take_along_axis(self._requested[:, None, :], shelf_id.reshape(
                self.batch_size, 1, -1), axis=2).reshape(shelf_id.shape)[..., None],
        ], axis=-1).astype(np.float32)  # [B, n, 9, 7]
        own = np.concatenate([
            self._pos.astype(np.float32), self._carry[..., None],
            eye[self._dir[:, 1:]], self._highway[y, x][..., None],
        ], axis=-1)  # [B, n, 8]
        return np.concatenate([own, cells.reshape(*cells.shape[:2], -1)], axis=-1)

    def _state(self) -> np.ndarray:
        agents = np.concatenate([self._pos, self._dir[:, 1:, None]], axis=-1)
        return np.concatenate([agents.reshape(self.batch_size, -1).astype(np.float32),
                               self._queue.reshape(self.batch_size, -1)], axis=1)

    def _shaped(self, delivered: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """AlberDICE's team reward: agent 0's delivery reward and shaping, from its new
        observation (centre cell 4 of the window; per cell 7 values, has shelf at 5 and
        requested at 6)."""
        cells = obs[:, 0, 8:].reshape(self.batch_size, 9, 7)
        requested = (cells[..., 5] == 1) & (cells[..., 6] == 1)
        carrying = obs[:, 0, 2] == 1
        under = requested[:, 4]
        bonus = np.where(under, np.where(carrying, SHAPE_CARRYING, SHAPE_UNDER), 0.0)
        bonus += np.where(requested.any(-1), SHAPE_IN_VIEW, 0.0)
        return (delivered + bonus).astype(np.float32)

    def _result(self, reward, truncated) -> StepResult:
        zeros = np.zeros(self.batch_size, dtype=bool)
        none = np.zeros(self.batch_size, dtype=np.int64)
        avail = np.ones((self.batch_size, self.spec.n_agents, RWARE_ACTIONS), np.int32)
        return StepResult(self._obs.copy(), self._state(), avail, reward, zeros, truncated,
                          zeros, none, none)

    # -- API ----------------------------------------------------------------------------
    def reset(self, seed: int) -> StepResult:
        """Start every episode; episode b is seeded from ``seed`` and b (reproducible)."""
        seeds = np.random.SeedSequence(seed).generate_state(self.batch_size)
        for b, w in enumerate(self.envs):
            w.reset(seed=int(seeds[b]))
            if self._requested is None:
                self._requested = np.zeros((self.batch_size, len(w.shelfs) + 1), bool)
            self._read(b)
        self._done[:] = False
        self._obs = self._observe()
        return self._result(np.zeros(self.batch_size, np.float32),
                            np.zeros(self.batch_size, dtype=bool))

    def step(self, actions: np.ndarray) -> StepResult:
        if self._requested is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (self.batch_size, self.spec.n_agents):
            raise ValueError(f"actions must be [{self.batch_size}, {self.spec.n_agents}], "
                             f"not {list(actions.shape)}")
        if ((actions < 0) | (actions >= RWARE_ACTIONS)).any():
            raise ValueError("rware actions are 0-4")
        rewards = np.zeros((self.batch_size, self.spec.n_agents), np.float32)
        ended = np.zeros(self.batch_size, dtype=bool)
        running = np.flatnonzero(~self._done)
        for b in running:
            _, r, done, _, _ = self.envs[b].step(actions[b].tolist())
            rewards[b] = r
            ended[b] = done
            self._read(b)
        obs = self._observe()
        self._obs[running] = obs[running]
        if self.reward == "rware":
            team = rewards.sum(-1)
        else:
            team = self._shaped(rewards[:, 0], self._obs)
        team = np.where(self._done, 0.0, team).astype(np.float32)
        self._done |= ended
        return self._result(team, ended)

    @property
    def all_done(self) -> bool:
        return bool(self._done.all())
