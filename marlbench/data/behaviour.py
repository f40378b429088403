"""Scripted behaviour policies that read only SMAC observations (no simulator internals)."""

from __future__ import annotations

import numpy as np

from marlbench.envs.maps import N_NO_ATTACK, Layout


class FocusFirePolicy:
    """Attack the weakest enemy in range; otherwise close in on the nearest visible enemy.

    With probability ``epsilon`` an agent instead takes a uniformly random available action,
    which spreads the data over states the greedy script never visits.
    """

    def __init__(self, layout: Layout, epsilon: float, rng: np.random.Generator):
        self.layout = layout
        self.epsilon = epsilon
        self.rng = rng

    def act(self, obs: np.ndarray, avail: np.ndarray) -> np.ndarray:
        """obs [B, n, obs_dim], avail [B, n, A] → actions [B, n] (SMAC indices)."""
        lay = self.layout
        b, n = obs.shape[:2]
        start = lay.move_feats
        enemies = obs[..., start : start + lay.n_enemies * lay.enemy_feats]
        enemies = enemies.reshape(b, n, lay.n_enemies, lay.enemy_feats)
        shootable = avail[..., N_NO_ATTACK:].astype(bool)
        # remaining health (+ shield when the enemies are Protoss) of each enemy
        remaining = enemies[..., 4 : 5 + lay.shield_enemy].sum(-1)
        health = np.where(shootable, remaining, np.inf)
        attack = N_NO_ATTACK + health.argmin(-1)
        visible = enemies[..., 1] > 0
        dist = np.where(visible, enemies[..., 1], np.inf)
        nearest = dist.argmin(-1)
        rel = np.take_along_axis(enemies[..., 2:4], nearest[..., None, None], axis=2)[..., 0, :]
        # SMAC moves: 2 N(+y), 3 S, 4 E(+x), 5 W
        horizontal = np.where(rel[..., 0] >= 0, 4, 5)
        vertical = np.where(rel[..., 1] >= 0, 2, 3)
        toward = np.where(np.abs(rel[..., 0]) >= np.abs(rel[..., 1]), horizontal, vertical)
        move = np.where(visible.any(-1), toward, 4)  # no enemy in sight: advance east
        move_ok = np.take_along_axis(avail, move[..., None], axis=-1)[..., 0].astype(bool)
        move = np.where(move_ok, move, 1)
        action = np.where(shootable.any(-1), attack, move)
        action = np.where(avail[..., 0].astype(bool) & ~avail[..., 1].astype(bool), 0, action)
        if self.epsilon > 0:
            explore = self.rng.random((b, n)) < self.epsilon
            random = (self.rng.random(avail.shape) * avail).argmax(-1)
            action = np.where(explore, random, action)
        return action
