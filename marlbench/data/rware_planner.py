"""A scripted warehouse crew: the quick behaviour policy where a learner cannot yet deliver.

Each robot, every step: without a shelf, it heads for the nearest requested shelf and loads
it; carrying a requested shelf, it heads for the nearest goal (arriving delivers it); carrying
a delivered one, it heads for the nearest free shelf cell (off the highways) and unloads. Paths
are shortest in rware's own moves (forward, turn left, turn right) over (x, y, direction),
found by a breadth-first search backward from the targets; a laden robot cannot enter a cell
holding a standing shelf, an unladen one passes under shelves (rware's rules). Robots do not
coordinate: rware resolves their collisions; a robot whose forward move failed turns aside
at random, and ``epsilon`` random actions break the remaining jams.

The planner reads each warehouse's state directly (privileged information, as a script
may): it is a data-collection policy, not a learner.
"""

from __future__ import annotations

from collections import deque

import numpy as np

NOOP, FORWARD, LEFT, RIGHT, TOGGLE = range(5)
# rware's Direction values: UP 0 (y - 1), DOWN 1 (y + 1), LEFT 2 (x - 1), RIGHT 3 (x + 1)
_STEP = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}
_CLOCKWISE = (0, 3, 1, 2)  # up, right, down, left: rware's turn order


def _turn(d: int, action: int) -> int:
    i = _CLOCKWISE.index(d)
    return _CLOCKWISE[(i + (1 if action == RIGHT else -1)) % 4]


def distance_field(rows: int, cols: int, targets: list[tuple[int, int]],
                   blocked: np.ndarray | None) -> np.ndarray:
    """Moves from every (y, x, direction) to the nearest target cell, any direction
    (-1: unreachable); ``blocked`` [rows, cols] marks cells a robot may not enter."""
    dist = np.full((rows, cols, 4), -1, np.int32)
    queue: deque[tuple[int, int, int]] = deque()
    for x, y in targets:
        for d in range(4):
            dist[y, x, d] = 0
            queue.append((y, x, d))
    while queue:
        y, x, d = queue.popleft()
        k = dist[y, x, d] + 1
        # a turn into d: from the direction one turn either way
        for prev in (_turn(d, LEFT), _turn(d, RIGHT)):
            if dist[y, x, prev] < 0:
                dist[y, x, prev] = k
                queue.append((y, x, prev))
        # a forward move into (x, y) facing d, from the cell behind
        if blocked is not None and blocked[y, x]:
            continue
        dx, dy = _STEP[d]
        px, py = x - dx, y - dy
        if 0 <= px < cols and 0 <= py < rows and dist[py, px, d] < 0:
            dist[py, px, d] = k
            queue.append((py, px, d))
    return dist


def _next_action(dist: np.ndarray, x: int, y: int, d: int,
                 blocked: np.ndarray | None) -> int:
    """The move that brings a robot at (x, y) facing d one step nearer (NOOP if stuck)."""
    here = dist[y, x, d]
    if here <= 0:
        return NOOP
    rows, cols = dist.shape[:2]
    dx, dy = _STEP[d]
    nx, ny = x + dx, y + dy
    if (0 <= nx < cols and 0 <= ny < rows and dist[ny, nx, d] == here - 1
            and (blocked is None or not blocked[ny, nx])):
        return FORWARD
    for action in (LEFT, RIGHT):
        if dist[y, x, _turn(d, action)] == here - 1:
            return action
    return NOOP


PLANNER_EPSILON = 0.05  # random actions in collected data (as the focus-fire script's)


class ShelfDeliveryPlanner:
    """Scripted robots for every episode of a :class:`marlbench.envs.rware.RwareEnv`."""

    def __init__(self, env, epsilon: float = PLANNER_EPSILON, seed: int = 0):
        self.env = env
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)
        self._cache: list[dict] = [{} for _ in range(env.batch_size)]
        self._tried: dict[tuple[int, int], tuple[int, int]] = {}  # (b, i) -> where it went

    def _field(self, b: int, kind: str, key: bytes, build) -> np.ndarray:
        cache = self._cache[b]
        if cache.get(kind, (None,))[0] != key:
            cache[kind] = (key, build())
        return cache[kind][1]

    def _episode(self, b: int) -> np.ndarray:
        from rware.warehouse import _LAYER_SHELFS

        w = self.env.envs[b]
        rows, cols = w.grid_size
        shelves = w.grid[_LAYER_SHELFS]
        standing = shelves > 0
        for a in w.agents:  # a carried shelf moves with its robot
            if a.carrying_shelf is not None:
                standing[a.y, a.x] = False
        requested = {s.id for s in w.request_queue}
        out = np.zeros(len(w.agents), np.int64)
        for i, a in enumerate(w.agents):
            carried = a.carrying_shelf
            blocked = None if carried is None else standing
            if carried is None:
                spots = [(s.x, s.y) for s in w.request_queue
                         if not any(o.carrying_shelf is s for o in w.agents)]
                if not spots:
                    out[i] = NOOP
                    continue
                if shelves[a.y, a.x] in requested and (a.x, a.y) in spots:
                    out[i] = TOGGLE
                    continue
                key = np.asarray(sorted(spots)).tobytes()
                dist = self._field(b, "fetch", key,
                                   lambda s=spots: distance_field(rows, cols, s, None))
            elif carried.id in requested:
                key = standing.tobytes()
                dist = self._field(b, "deliver", key, lambda: distance_field(
                    rows, cols, [tuple(g) for g in w.goals], standing))
            else:
                if not w.highways[a.y, a.x]:
                    out[i] = TOGGLE  # a free shelf cell: put it back
                    continue
                key = standing.tobytes()
                free = np.argwhere((w.highways == 0) & ~standing)
                dist = self._field(b, "return", key, lambda f=free: distance_field(
                    rows, cols, [(int(x), int(y)) for y, x in f], standing))
            out[i] = _next_action(dist, a.x, a.y, a.dir.value, blocked)
            if out[i] == FORWARD:
                if self._tried.get((b, i)) == (a.x, a.y):  # blocked by a robot last step:
                    out[i] = LEFT if self.rng.random() < 0.5 else RIGHT  # step aside
                    self._tried.pop((b, i))
                else:
                    self._tried[(b, i)] = (a.x, a.y)
            else:
                self._tried.pop((b, i), None)
        return out

    def act(self, _res=None) -> np.ndarray:
        """Every robot's action [B, n] for the current step (finished episodes: no-ops)."""
        env = self.env
        actions = np.zeros((env.batch_size, env.spec.n_agents), np.int64)
        for b in np.flatnonzero(~env._done):
            actions[b] = self._episode(b)
        if self.epsilon > 0:
            explore = self.rng.random(actions.shape) < self.epsilon
            actions = np.where(explore, self.rng.integers(0, 5, actions.shape), actions)
        return actions
