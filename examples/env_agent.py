"""An agent that acts in the environment: step ahead, stop once the recognizer is sure.

    python benchmarks/run.py --agent examples/env_agent.py:make_agent --dataset tiny --budget 5

The harness gives an env agent a vector env over the videos it evaluates and calls ``act``
once per step; the env's recognizer (AvgPooling over the distinct frames seen) gives the
scores. This policy looks at the centres of K equal segments, left to right (as ``uniform``
does), but stops as soon as the recognizer's top class has probability ``threshold``: a sure
video costs fewer frames. Compare it with ``--agent uniform`` at the same ``--budget``.
What ``act`` receives and returns, and how the run is charged: docs/harness.md, "Agents
that act in the environment".
"""

from __future__ import annotations

import numpy as np

from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.envagent import EnvPolicyAgent


class StrideUntilSure(EnvPolicyAgent):
    description = (
        "example env agent: segment centres left to right, stops once the recognizer is sure"
    )
    name = "stride-sure"  # the short name of the table, the result files and the plot legend
    observation_keys = ()  # what act() sees besides "probs" (the scores), which is always there
    stop_action = True  # actions are (num_envs, 2): [location, stop]; stop > 0.5 ends a video

    def __init__(self, threshold: float = 0.6):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold

    def make_env(self, store, split, num_envs, config, **kwargs):
        # The reset frame (step 1) is the first segment's centre. make_env runs before begin,
        # so the initial location is set here.
        self.initial_location = 0.5 / self.budget(config)
        return super().make_env(store, split, num_envs, config, **kwargs)

    def begin(self, num_envs: int, config: RunConfig) -> None:
        # Called once per batch of videos (up to 512 episodes in lockstep), before the first
        # act: reset per-episode state here. This policy keeps none but K.
        self._k = self.budget(config)

    def act(self, obs: dict, step: int, config: RunConfig) -> np.ndarray:
        # obs: the env's observation, (num_envs, ...) arrays that the next step overwrites (copy
        # what you keep). step: frames looked at so far (1 after the reset frame), so the next
        # look is the centre of segment `step`. Rows of videos that have ended are ignored by
        # the harness, but must still be valid actions.
        n = len(obs["probs"])
        where = np.full(n, (2 * step + 1) / (2 * self._k))
        sure = obs["probs"].max(axis=1) >= self.threshold  # the AvgPooling of the frames seen
        return np.stack([where, sure], axis=1).astype(np.float32)


def make_agent(config: RunConfig) -> StrideUntilSure:
    """The factory the harness calls with the run's config (``--budget`` is ``config.budget``)."""
    return StrideUntilSure()
