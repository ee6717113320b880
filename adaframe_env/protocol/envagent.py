"""Agents that act through the environment: the harness runs their policy on
:class:`~adaframe_env.vector_env.AdaFrameVectorEnv` over the evaluated videos, and the env's
recognizer (AvgPooling over the distinct frames seen) gives the class scores.

Subclass :class:`EnvPolicyAgent` and implement :meth:`act`; set ``memory`` / ``observation_keys``
to what the policy observes (the memory's GFLOPs are charged only when it is observed).
"""

from __future__ import annotations

import numpy as np

from adaframe_env.protocol.agent import BaseAgent, RunConfig, VideoResult
from adaframe_env.vector_env import AdaFrameVectorEnv

SPLIT_NAMES = {0: "train", 1: "val", 2: "test"}


class EnvPolicyAgent(BaseAgent):
    memory = False
    observation_keys: tuple[str, ...] | None = None  # None: the env's default keys
    stop_action = False
    initial_location = 0.0

    def begin(self, num_envs: int, config: RunConfig) -> None:
        """Called before the first step of a batch of episodes (reset recurrent state here)."""

    def act(self, obs: dict, step: int, config: RunConfig) -> np.ndarray:
        """(num_envs, 1) locations in [0, 1] (``(num_envs, 2)`` with ``stop_action``)."""
        raise NotImplementedError

    def setup(self, store, config: RunConfig) -> None:
        """Pay the env's one-time costs (torch import, per-frame log-normalizers of the cache)
        here, so that ``seconds_per_video`` measures acting, not start-up."""
        from adaframe_env._fast import log_normalizer

        log_normalizer(store)

    def budget(self, config: RunConfig) -> int:
        if config.budget is None:
            raise ValueError(f"{self.name or type(self).__name__} needs --budget K")
        return int(config.budget)

    def make_env(self, store, split: str, num_envs: int, config: RunConfig, **kwargs):
        keys = self.observation_keys
        if keys is not None and "probs" not in keys:
            keys = (*keys, "probs")
        return AdaFrameVectorEnv(
            num_envs, data=store, split=split, budget=self.budget(config),
            memory=self.memory, observation_keys=keys, stop_action=self.stop_action,
            initial_location=self.initial_location, **kwargs,
        )  # fmt: skip

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        videos = np.asarray(videos)
        splits = np.unique(store.split[videos])
        if len(splits) != 1:
            raise ValueError("EnvPolicyAgent evaluates videos of one split at a time")
        env = self.make_env(store, SPLIT_NAMES[int(splits[0])], len(videos), config)
        try:
            return self._run(env, videos, config)
        finally:
            env.close()

    def _run(self, env, videos, config) -> list[VideoResult]:
        n = len(videos)
        positions = np.searchsorted(env.split_videos, videos)
        obs, info = env.reset(seed=config.seed, options={"video": positions})
        frames = [[int(f)] for f in info["frame"]]
        used = np.asarray(info["frames_used"]).copy()
        scores = [None] * n
        done = np.zeros(n, bool)
        self.begin(n, config)
        step = 1
        while not done.all():
            actions = np.asarray(self.act(obs, step, config), dtype=np.float32)
            obs, _, term, trunc, info = env.step(actions.reshape(env.action_space.shape))
            step += 1
            fu = np.asarray(info["frames_used"])
            for i in np.flatnonzero(~done & (fu > used)):
                frames[i].append(int(info["frame"][i]))
            used = np.where(done, used, fu)
            for i in np.flatnonzero(~done & (term | trunc)):
                scores[i] = np.array(obs["probs"][i], dtype=np.float32)
            done |= term | trunc
        return [
            VideoResult(scores=s, frames=np.asarray(f), memory=self.memory)
            for s, f in zip(scores, frames, strict=True)
        ]
