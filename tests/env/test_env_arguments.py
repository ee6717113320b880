"""The env's arguments that depend on the data: a budget beyond the cache's longest video is
refused in one line (a budget counts looks, revisits included), and the vector env's action
errors describe the single action and the batched shape."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import adaframe_env  # noqa: F401  (registers the ids)
from adaframe_env.env import AdaFrameEnv, open_store
from adaframe_env.vector_env import AdaFrameVectorEnv


def longest(cache) -> int:
    return int(open_store(cache).length.max())


@pytest.mark.parametrize("budget", [10**10, 10**9, "longest + 1"])
@pytest.mark.parametrize("make", ["single", "vector"])
def test_a_budget_beyond_the_longest_video_is_one_line(env_vars, budget, make):
    n = longest(env_vars)
    budget = n + 1 if budget == "longest + 1" else budget
    with pytest.raises(ValueError) as e:
        if make == "single":
            gym.make("AdaFrame-FCVID-v0", budget=budget)
        else:
            gym.make_vec("AdaFrame-FCVID-v0", num_envs=4, budget=budget)
    message = str(e.value)
    assert "\n" not in message
    assert f"budget {budget}" in message and str(env_vars) in message, message
    assert f"at most {n}, the longest video's frame count" in message, message


def test_the_longest_video_is_a_valid_budget(env_vars):
    """The bound is the cache's longest video, revisits included: an episode of that budget on
    a shorter video revisits frames and still runs to the end."""
    n = longest(env_vars)
    store = open_store(env_vars)
    env = AdaFrameEnv(data=store, split="test", budget=n, memory=False)
    short = int(np.argmin(store.length[env.split_videos]))
    env.reset(seed=0, options={"video": short})
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, info = env.step(np.array([0.5], np.float32))
        steps += 1
    assert steps == n - 1 and info["frames_used"] == n
    assert info["distinct_frames"] <= store.length[env.split_videos[short]] < n
    venv = AdaFrameVectorEnv(3, data=store, split="test", budget=n, memory=False)
    venv.reset(seed=0)
    for _ in range(n - 1):
        *_, truncated, _ = venv.step(np.full((3, 1), 0.5, np.float32))
    assert truncated.all()


@pytest.mark.parametrize("stop_action", [False, True])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_vector_action_errors_describe_the_single_action_and_the_batch(
    tiny_cache, stop_action, num_envs
):
    venv = AdaFrameVectorEnv(num_envs, data=tiny_cache, stop_action=stop_action, memory=False)
    venv.reset(seed=0)
    d = 2 if stop_action else 1
    form = "[location, stop]" if stop_action else "[location]"
    wrong = np.zeros((num_envs, 3 - d), np.float32)  # the other action size
    with pytest.raises(ValueError) as e:
        venv.step(wrong)
    message = str(e.value)
    assert "\n" not in message
    assert f"shape ({num_envs}, {3 - d})" in message  # what was given
    assert f"shape ({num_envs}, {d})" in message and form in message, message
    if not stop_action:
        assert "stop" not in message, message
    bad = np.zeros((num_envs, d), np.float32)
    bad[-1, 0] = 1.5
    with pytest.raises(ValueError) as e:
        venv.step(bad)
    message = str(e.value)
    assert form in message and f"sub-env {num_envs - 1}" in message, message
    if not stop_action:
        assert "stop" not in message, message
