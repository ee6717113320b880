"""Uniform- and random-location policies as plain env agents (no learning, no memory)."""

from __future__ import annotations

import numpy as np

from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.envagent import EnvPolicyAgent


class UniformPolicy(EnvPolicyAgent):
    """Looks at the centres of K equal segments, left to right (the env's U-K sampling)."""

    description = "env agent: K uniformly spaced locations (segment centres), left to right"
    observation_keys = ("step",)

    def begin(self, num_envs: int, config: RunConfig) -> None:
        self._k = self.budget(config)  # the first centre is the env's initial_location

    def make_env(self, store, split, num_envs, config, **kwargs):
        self.initial_location = 0.5 / self.budget(config)
        return super().make_env(store, split, num_envs, config, **kwargs)

    def act(self, obs, step, config):
        n = len(obs["probs"])
        return np.full((n, 1), (2 * step + 1) / (2 * self._k), np.float32)


class RandomPolicy(EnvPolicyAgent):
    """Jumps to a uniformly random location at every step (seeded by ``--seed``)."""

    description = "env agent: a uniformly random location at every step"
    observation_keys = ("step",)

    def begin(self, num_envs: int, config: RunConfig) -> None:
        # One generator per evaluation batch, keyed by (seed, batch number): batches of videos
        # get different draws, and a run is still reproducible for a seed.
        self._batch = getattr(self, "_batch", -1) + 1
        self._rng = np.random.default_rng([config.seed, self._batch])

    def act(self, obs, step, config):
        n = len(obs["probs"])
        return self._rng.uniform(0.0, 1.0, (n, 1)).astype(np.float32)
