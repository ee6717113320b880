"""Action wrappers for the agents of the paper's comparison (docs/design.md 3 and 5).

- :class:`FastForward`: a discrete set of jumps, as fractions of the video, forward and back
  from the current location, plus a stop action (Fan et al., IJCAI 2018).
- :class:`LocationStop`: a ``{"location", "stop"}`` dict action for agents with a separate
  location head and a binary stop head (FrameGlimpse, Yeung et al., CVPR 2016).

Both act on :class:`~adaframe_env.env.AdaFrameEnv` (single env; for the vector env the agent
computes ``[location, stop]`` itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from adaframe_env.env import AdaFrameEnv

#: Default jumps, as fractions of the video's length: back and forward, short and long.
DEFAULT_JUMPS = (-0.25, -0.1, -0.05, 0.05, 0.1, 0.25, 0.5)


def _base(env: gym.Env, wrapper: str) -> AdaFrameEnv:
    base = env.unwrapped
    if not isinstance(base, AdaFrameEnv):
        raise TypeError(f"{wrapper} wraps an AdaFrameEnv, got {type(base).__name__}")
    return base


class FastForward(gym.ActionWrapper):
    """Discrete jumps from the current location: ``Discrete(len(jumps) + stop)``.

    Action ``i < len(jumps)`` looks at location ``clip(location + jumps[i], 0, 1)`` (a jump past
    either end lands on that end); action ``len(jumps)`` is stop, present when the wrapped env
    was made with ``stop_action=True`` (or ``stop=True``, which requires it). The location is
    kept continuous, so short jumps accumulate even when one jump rounds to the same frame.

    Args:
        env: an AdaFrame env (any wrappers around it).
        jumps: the jump set, fractions of the video in ``[-1, 1]`` (default
            :data:`DEFAULT_JUMPS`).
        stop: add the stop action; default: when the env has ``stop_action=True``.
    """

    def __init__(
        self, env: gym.Env, jumps: Sequence[float] = DEFAULT_JUMPS, stop: bool | None = None
    ):
        super().__init__(env)
        base = _base(env, "FastForward")
        jumps = np.asarray(jumps, dtype=np.float64)
        if jumps.ndim != 1 or len(jumps) == 0:
            raise ValueError(f"jumps must be a non-empty sequence of fractions, got {jumps!r}")
        if not (np.isfinite(jumps).all() and (np.abs(jumps) <= 1).all()):
            raise ValueError(f"jumps must be fractions of the video in [-1, 1], got {jumps}")
        if stop is None:
            stop = base.stop_action
        if stop and not base.stop_action:
            raise ValueError(
                "FastForward(stop=True) needs an env made with stop_action=True, e.g. "
                'gym.make("AdaFrame-FCVID-v0", stop_action=True)'
            )
        self.jumps = jumps
        self.stop = bool(stop)
        self._base_env = base
        self.action_space = spaces.Discrete(len(jumps) + int(self.stop))

    @property
    def stop_index(self) -> int | None:
        """The action that stops, or None."""
        return len(self.jumps) if self.stop else None

    def action(self, action) -> np.ndarray:
        try:
            i = int(action)
            ok = i == action and 0 <= i < self.action_space.n
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"invalid action {action!r}: expected an int in [0, {self.action_space.n - 1}]"
                f" ({len(self.jumps)} jumps{' + stop' if self.stop else ''})"
            )
        current = self._base_env._location
        if self.stop and i == len(self.jumps):
            loc, stop = current, 1.0
        else:
            loc, stop = min(1.0, max(0.0, current + self.jumps[i])), 0.0
        if self._base_env.stop_action:
            return np.array([loc, stop], dtype=np.float32)
        return np.array([loc], dtype=np.float32)


class LocationStop(gym.ActionWrapper):
    """``Dict(location=Box(0, 1, (1,)), stop=Discrete(2))`` on an env with ``stop_action=True``.

    ``{"location": [a], "stop": 1}`` ends the episode; ``stop: 0`` looks at location ``a``.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        base = _base(env, "LocationStop")
        if not base.stop_action:
            raise ValueError(
                "LocationStop needs an env made with stop_action=True, e.g. "
                'gym.make("AdaFrame-FCVID-v0", stop_action=True)'
            )
        self.action_space = spaces.Dict(
            {
                "location": spaces.Box(0.0, 1.0, (1,), np.float32),
                "stop": spaces.Discrete(2),
            }
        )

    def action(self, action) -> np.ndarray:
        if not isinstance(action, dict) or set(action) != {"location", "stop"}:
            raise ValueError(
                f"invalid action {action!r}: expected {{'location': array of shape (1,), "
                "'stop': 0 or 1}"
            )
        stop = action["stop"]
        if stop not in (0, 1):
            raise ValueError(f"invalid action: stop must be 0 or 1, got {stop!r}")
        loc = np.asarray(action["location"], dtype=np.float32).reshape(-1)
        if loc.shape != (1,):
            raise ValueError(f"invalid action: location must have shape (1,), got {loc.shape}")
        return np.array([loc[0], float(stop)], dtype=np.float32)
