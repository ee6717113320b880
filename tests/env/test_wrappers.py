"""FastForward and LocationStop wrappers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import GYM_DELIBERATE, unexpected

from adaframe_env.env import AdaFrameEnv
from adaframe_env.wrappers import DEFAULT_JUMPS, FastForward, LocationStop


def test_fast_forward_jumps(tiny_cache):
    env = FastForward(AdaFrameEnv(data=tiny_cache, budget=10))
    assert env.action_space == gym.spaces.Discrete(len(DEFAULT_JUMPS))
    obs, _ = env.reset(options={"video": 0})
    forward = DEFAULT_JUMPS.index(0.25)
    back = DEFAULT_JUMPS.index(-0.1)
    locs = []
    for a in (forward, forward, back, DEFAULT_JUMPS.index(0.5), forward):
        obs = env.step(a)[0]
        locs.append(float(obs["location"][0]))
    np.testing.assert_allclose(locs, [0.25, 0.5, 0.4, 0.9, 1.0], atol=1e-6)  # clipped at the end


def test_fast_forward_stop(tiny_cache):
    env = FastForward(AdaFrameEnv(data=tiny_cache, stop_action=True), jumps=(-0.5, 0.5))
    assert env.action_space.n == 3 and env.stop_index == 2
    env.reset(seed=0)
    _, r, te, tr, _ = env.step(2)
    assert te and r == 0.0
    with pytest.raises(ValueError, match="stop_action=True"):
        FastForward(AdaFrameEnv(data=tiny_cache), stop=True)
    with pytest.raises(ValueError, match=r"int in \[0, 2\]"):
        env.reset(seed=0)
        env.step(5)
    with pytest.raises(ValueError, match="fractions"):
        FastForward(AdaFrameEnv(data=tiny_cache), jumps=(2.0,))


def test_location_stop(tiny_cache):
    env = LocationStop(AdaFrameEnv(data=tiny_cache, stop_action=True))
    env.reset(seed=0)
    obs, _, te, _, info = env.step({"location": np.array([1.0], np.float32), "stop": 0})
    assert not te and obs["location"][0] == 1.0
    _, r, te, _, _ = env.step({"location": np.array([0.2], np.float32), "stop": 1})
    assert te and r == 0.0
    with pytest.raises(ValueError, match="stop_action=True"):
        LocationStop(AdaFrameEnv(data=tiny_cache))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="stop must be 0 or 1"):
        env.step({"location": np.array([0.2], np.float32), "stop": 3})


@pytest.mark.parametrize("wrapper", [FastForward, LocationStop])
def test_wrappers_pass_check_env(tiny_cache, wrapper):
    env = wrapper(AdaFrameEnv(data=tiny_cache, stop_action=True))
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    allowed = GYM_DELIBERATE + ("is different from the unwrapped version",)
    assert unexpected(records, allowed) == []
