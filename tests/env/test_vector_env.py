"""AdaFrameVectorEnv: parity with the single env, autoreset, buffers, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from adaframe_env.env import AdaFrameEnv
from adaframe_env.vector_env import AdaFrameVectorEnv

CONFIGS = [
    {},
    {"reward": "prediction", "frame_cost": 0.01, "memory": False},
    {"reward": "prediction_transition", "stop_action": True, "budget": 4},
    {"budget": 1},
    {"split": "test", "budget": 3, "observation_keys": ("probs", "step")},
    {"memory_frames": 32, "budget": 4},
]


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "shared-buffers"])
@pytest.mark.parametrize("kwargs", CONFIGS)
def test_matches_single_env_step_for_step(tiny_cache, kwargs, copy):
    """Same videos and actions -> identical observations, rewards, flags and infos, with fresh
    arrays (``copy=True``) and with the default buffers reused in place (``copy=False``)."""
    n = 5
    venv = AdaFrameVectorEnv(n, data=tiny_cache, copy=copy, **kwargs)
    obs, info = venv.reset(seed=3)
    envs = [AdaFrameEnv(data=tiny_cache, **kwargs) for _ in range(n)]
    for i, e in enumerate(envs):
        o, _ = e.reset(options={"video": int(info["split_index"][i])})
        for k in o:
            np.testing.assert_array_equal(o[k], obs[k][i])
    rng = np.random.default_rng(0)
    pending = np.zeros(n, bool)
    episodes = 0
    for _ in range(25):
        a = rng.random((n, venv.single_action_space.shape[0])).astype(np.float32)
        if kwargs.get("stop_action"):
            a[:, 1] = rng.random(n) < 0.2
        obs, r, te, tr, info = venv.step(a)
        for i, e in enumerate(envs):
            if pending[i]:  # next-step autoreset: the vector env reset this one
                o, inf = e.reset(options={"video": int(info["split_index"][i])})
                ri, ti, ui = 0.0, False, False
            else:
                o, ri, ti, ui, inf = e.step(a[i])
            for k in o:
                np.testing.assert_array_equal(o[k], obs[k][i], err_msg=k)
            assert (ri, ti, ui) == (r[i], te[i], tr[i])
            for k, v in inf.items():
                assert info["_" + k][i], k
                assert info[k][i] == v, k
            if "is_correct" in info and "is_correct" not in inf:
                assert not info["_is_correct"][i]
        episodes += (te | tr).sum()
        pending = te | tr
    assert episodes > 0


@pytest.mark.usefixtures("env_vars")
def test_make_vec_returns_native_env():
    venv = gym.make_vec("AdaFrame-FCVID-v0", num_envs=8, budget=3)
    assert isinstance(venv.unwrapped, AdaFrameVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.num_envs == 8
    assert venv.observation_space["probs"].shape == (
        8,
        venv.single_observation_space["probs"].shape[0],
    )
    obs, info = venv.reset(seed=0)
    assert obs in venv.observation_space
    obs, r, te, tr, info = venv.step(venv.action_space.sample())
    assert obs in venv.observation_space and r.shape == (8,)
    sync = gym.make_vec("AdaFrame-FCVID-v0", num_envs=2, vectorization_mode="sync", budget=3)
    assert sync.reset(seed=0)[0]["probs"].shape == obs["probs"][:2].shape


def test_next_step_autoreset(tiny_cache):
    venv = AdaFrameVectorEnv(3, data=tiny_cache, budget=2)
    venv.reset(seed=0)
    a = np.full((3, 1), 0.5, np.float32)
    _, r, te, tr, info = venv.step(a)
    assert tr.all() and not te.any() and info["_is_correct"].all()
    obs, r, te, tr, info = venv.step(a)  # the reset step
    assert (r == 0).all() and not (te | tr).any()
    np.testing.assert_allclose(obs["step"], 0.5)
    assert (info["frames_used"] == 1).all() and "is_correct" not in info


def test_memory_buffer_not_copied_per_step(tiny_cache):
    venv = AdaFrameVectorEnv(4, data=tiny_cache, budget=3)
    obs, _ = venv.reset(seed=0)
    mem = obs["memory"]
    before = mem.copy()
    a = np.full((4, 1), 0.3, np.float32)
    obs1 = venv.step(a)[0]
    assert obs1["memory"] is mem  # the same buffer, not rewritten within an episode
    np.testing.assert_array_equal(obs1["memory"], before)
    venv.step(a)
    obs3, _, _, _, info = venv.step(a)  # autoreset step: memory of the new videos
    store = venv.store
    np.testing.assert_array_equal(
        obs3["memory"], store.memory(info["video_index"]).astype(np.float32)
    )
    copying = AdaFrameVectorEnv(2, data=tiny_cache, copy=True)
    o1 = copying.reset(seed=0)[0]
    o2 = copying.step(np.full((2, 1), 0.5, np.float32))[0]
    assert o1["memory"] is not o2["memory"]


def test_eval_split_cursor(tiny_cache):
    venv = AdaFrameVectorEnv(5, data=tiny_cache, split="test", budget=2)
    videos = list(venv.split_videos)
    _, info = venv.reset(seed=0)
    started = list(info["video_index"])
    a = np.full((5, 1), 0.5, np.float32)
    while len(started) < len(videos):
        venv.step(a)
        _, _, _, _, info = venv.step(a)  # autoreset step
        started += list(info["video_index"])
    assert started[: len(videos)] == videos


def test_reset_mask_and_video_option(tiny_cache):
    venv = AdaFrameVectorEnv(3, data=tiny_cache)
    obs, info = venv.reset(options={"video": [0, 1, 2]})
    assert list(info["split_index"]) == [0, 1, 2]
    venv.step(np.full((3, 1), 0.5, np.float32))
    mask = np.array([False, True, False])
    obs, info = venv.reset(options={"reset_mask": mask, "video": 7})
    assert list(info["_video_index"]) == [False, True, False]
    assert list(info["frames_used"]) == [2, 1, 2] and info["split_index"][1] == 7


def test_vector_env_pickles_by_path(tiny_cache):
    import pickle

    venv = AdaFrameVectorEnv(2, data=tiny_cache)
    venv.reset(seed=0)
    blob = pickle.dumps(venv)
    assert len(blob) < 200_000
    clone = pickle.loads(blob)
    a = np.full((2, 1), 0.5, np.float32)
    np.testing.assert_array_equal(clone.step(a)[1], venv.step(a)[1])


def test_vector_bad_input(tiny_cache):
    venv = AdaFrameVectorEnv(2, data=tiny_cache)
    with pytest.raises(RuntimeError, match="before reset"):
        venv.step(np.zeros((2, 1), np.float32))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((2,), np.float32))
    with pytest.raises(ValueError, match=r"NaN or inf \(sub-env 1\)"):
        venv.step(np.array([[0.5], [np.nan]], np.float32))
    with pytest.raises(ValueError, match="outside"):
        venv.step(np.array([[0.5], [2.0]], np.float32))
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.zeros(2, bool)})
    with pytest.raises(ValueError, match="num_envs"):
        AdaFrameVectorEnv(0, data=tiny_cache)
    with pytest.raises(ValueError, match="unknown reward"):
        AdaFrameVectorEnv(2, data=tiny_cache, reward="nope")
