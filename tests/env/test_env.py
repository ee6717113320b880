"""AdaFrameEnv: Gymnasium API, registration, semantics of docs/design.md 3, errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import h5py
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import GYM_DELIBERATE, unexpected

import adaframe_env
from adaframe_env import CacheError
from adaframe_env.env import AdaFrameEnv
from adaframe_env.metrics import softmax
from adaframe_env.registration import ENV_IDS
from adaframe_env.rewards import margin as margin_fn

IDS = list(ENV_IDS)
#: SB3's check_env: the memory is (16, Dl) (agents attend over its rows); the action is a
#: location in [0, 1] (docs/design.md 3), not SB3's recommended [-1, 1].
SB3_DELIBERATE = (
    "Your observation memory has an unconventional shape",
    "We recommend you to use a symmetric and normalized Box action space",
)


def act(x: float, stop: float | None = None) -> np.ndarray:
    return np.array([x] if stop is None else [x, stop], dtype=np.float32)


def run_episode(env, locations, **reset_kw):
    obs, info = env.reset(**reset_kw)
    steps = [(obs, 0.0, False, False, info)]
    for loc in locations:
        steps.append(env.step(act(loc)))
        if steps[-1][2] or steps[-1][3]:
            break
    return steps


def expected_episode(store, video: int, frames: list[int]):
    """Hand computation of the recognizer over an episode: per step, the probabilities
    (softmax of each frame's logits in float64, averaged over distinct frames), the margin
    and the true-class score."""
    label = int(store.label[video])
    seen: list[int] = []
    probs, margins, gts = [], [], []
    for f in frames:
        if f not in seen:
            seen.append(f)
        logits = store.logits(np.full(len(seen), video), np.array(seen)).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = (e / e.sum(axis=1, keepdims=True)).mean(axis=0)
        probs.append(p)
        margins.append(float(margin_fn(p, label)))
        gts.append(float(p[label]))
    return np.array(probs), np.array(margins), np.array(gts)


# --------------------------------------------------------------------------- registration
def test_ids_registered():
    for env_id in ("AdaFrame-FCVID-v0", "AdaFrame-ActivityNet-v0", "AdaFrame-v0"):
        spec = gym.spec(env_id)
        assert spec.entry_point == "adaframe_env.env:AdaFrameEnv"
        assert spec.vector_entry_point == "adaframe_env.vector_env:AdaFrameVectorEnv"
    assert "AdaFrameEnv" in adaframe_env.__all__


@pytest.mark.usefixtures("env_vars")
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        env = gym.make(env_id)
        check_env(env.unwrapped)
        env.close()
    assert unexpected(records, GYM_DELIBERATE) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory": False, "reward": "prediction", "render_mode": "ansi"},
        {"stop_action": True, "reward": "prediction_transition", "split": "test"},
        {"observation_keys": ("probs",), "memory": False, "frame_cost": 0.01, "split": "val"},
        {"memory_frames": 32},
        {"memory_frames": 12, "split": "test"},
    ],
)
@pytest.mark.usefixtures("env_vars")
def test_gymnasium_check_env_variants(kwargs):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        env = gym.make("AdaFrame-FCVID-v0", **kwargs)
        check_env(env.unwrapped)
    assert unexpected(records, GYM_DELIBERATE) == []


@pytest.mark.usefixtures("env_vars")
@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        sb3_check_env(gym.make(env_id))
        sb3_check_env(gym.make(env_id, memory=False, stop_action=True))
    assert unexpected(records, SB3_DELIBERATE + GYM_DELIBERATE) == []


@pytest.mark.slow
@pytest.mark.usefixtures("env_vars")
def test_make_with_module_prefix_without_import():
    code = (
        "import gymnasium as gym, numpy as np, sys\n"
        "assert 'adaframe_env' not in sys.modules\n"
        "env = gym.make('adaframe_env:AdaFrame-FCVID-v0', budget=3)\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, sorted(obs), info['synthetic'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "AdaFrameEnv"
    assert "True" in out.stdout  # the tiny proxy is synthetic


def test_synthetic_fallback_warns_once(tiny_cache, tmp_path, monkeypatch):
    """No data and no environment variable: the proxy (here: the tiny cache standing in for
    the generated fcvid proxy), with one SyntheticDataWarning per process."""
    from adaframe_env.build import proxy as resolve

    monkeypatch.delenv("ADAFRAME_FCVID", raising=False)
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(resolve, "_warned", set())
    monkeypatch.setattr(resolve, "ensure_proxy", lambda name, **kw: tiny_cache)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        env = gym.make("AdaFrame-FCVID-v0")
        gym.make("AdaFrame-FCVID-v0")
    synthetic = [r for r in records if issubclass(r.category, resolve.SyntheticDataWarning)]
    assert len(synthetic) == 1 and "synthetic fcvid proxy" in str(synthetic[0].message)
    assert env.reset(seed=0)[1]["synthetic"] is True


def test_generic_id_needs_data(monkeypatch):
    monkeypatch.delenv("ADAFRAME_DATA", raising=False)
    with pytest.raises(ValueError, match="no data given"):
        gym.make("AdaFrame-v0")


@pytest.mark.usefixtures("env_vars")
def test_data_argument_path_and_env_var(tiny_cache):
    env = gym.make("AdaFrame-v0", data=str(tiny_cache))
    assert env.unwrapped.store.path == tiny_cache
    env2 = gym.make("AdaFrame-ActivityNet-v0")
    assert env2.unwrapped.store is env.unwrapped.store  # one FeatureStore per file


def test_docstring_is_the_spec():
    doc = AdaFrameEnv.__doc__
    for section in (
        "## Description", "## Action Space", "## Observation Space", "## Rewards",
        "## Starting State", "## Episode End", "## Arguments", "## Version History",
    ):  # fmt: skip
        assert section in doc
    for arg in ("`data`", "`split`", "`budget`", "`reward`", "`memory`", "`stop_action`",
                "`frame_cost`", "`render_mode`"):  # fmt: skip
        assert arg in doc


# --------------------------------------------------------------------------- spaces and obs
def test_observation_keys_and_dtypes(tiny_cache):
    store = AdaFrameEnv(data=tiny_cache).store
    env = AdaFrameEnv(data=tiny_cache)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"frame", "memory", "memory_positions", "location", "step", "probs"}
    assert obs["frame"].shape == (store.feature_dim,)
    assert obs["memory"].shape == (16, store.light_dim)
    assert obs["probs"].shape == (store.num_classes,)
    assert all(v.dtype == np.float32 for v in obs.values())
    assert obs["step"][0] == pytest.approx(1 / 10)
    assert obs["probs"].sum() == pytest.approx(1.0, abs=1e-5)
    v = info["video_index"]
    np.testing.assert_array_equal(obs["memory"], store.memory([v])[0].astype(np.float32))
    np.testing.assert_array_equal(obs["frame"], store.features([v], [0])[0].astype(np.float32))
    mem = obs["memory"].copy()
    obs2 = env.step(act(0.7))[0]
    np.testing.assert_array_equal(obs2["memory"], mem)  # constant within the episode
    assert obs2["memory"] is not obs["memory"]  # fresh arrays

    env = AdaFrameEnv(data=tiny_cache, memory=False, observation_keys=("frame", "step"))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"frame", "step"}


def test_same_seed_same_episodes(tiny_cache):
    def rollout(seed):
        env = AdaFrameEnv(data=tiny_cache)
        rng = np.random.default_rng(seed)
        out = []
        obs, info = env.reset(seed=seed)
        for _ in range(30):
            obs, r, te, tr, info = env.step(rng.random(1).astype(np.float32))
            out.append((info["video_id"], info["frame"], r, {k: v.copy() for k, v in obs.items()}))
            if te or tr:
                env.reset()
        return out

    a, b = rollout(5), rollout(5)
    for x, y in zip(a, b, strict=True):
        assert x[:3] == y[:3]
        for k in x[3]:
            np.testing.assert_array_equal(x[3][k], y[3][k])
    assert [x[0] for x in rollout(6)] != [x[0] for x in a]


def test_eval_split_order(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, split="test")
    videos = env.split_videos
    seen = [env.reset()[1]["video_index"] for _ in range(len(videos) + 2)]
    assert seen[: len(videos)] == list(videos)  # every video once, in file order
    assert seen[len(videos) :] == list(videos[:2])  # then cycling
    assert env.reset(seed=1)[1]["video_index"] == videos[0]  # a seed restarts the pass
    info = env.reset(options={"video": 3})[1]
    assert info["video_index"] == videos[3] and info["split_index"] == 3
    assert "label" not in info
    assert "label" in AdaFrameEnv(data=tiny_cache, split="test", label_in_info=True).reset()[1]


# --------------------------------------------------------------------------- dynamics
def test_budget_and_first_frame(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, budget=4)
    steps = run_episode(env, [0.1, 0.5, 0.9, 0.3], seed=0)
    assert len(steps) == 4  # reset frame + 3 steps
    assert [s[3] for s in steps] == [False, False, False, True]
    assert not any(s[2] for s in steps)
    assert steps[-1][4]["frames_used"] == 4
    assert "is_correct" in steps[-1][4] and "is_correct" not in steps[-2][4]
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(act(0.5))

    env = AdaFrameEnv(data=tiny_cache, budget=1)
    obs, info = env.reset(seed=0)
    obs2, r, te, tr, info2 = env.step(act(0.9))
    assert (r, te, tr) == (0.0, False, True)
    assert info2["frame"] == info["frame"] and info2["distinct_frames"] == 1


def test_location_to_frame_and_start(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, initial_location=1.0)
    _, info = env.reset(seed=0, options={"video": 0})
    length = int(env.store.length[info["video_index"]])
    assert info["frame"] == length - 1
    _, _, _, _, info = env.step(act(0.5))
    assert info["frame"] == int(np.rint(0.5 * (length - 1)))
    obs, info = env.reset(options={"video": 0, "location": 0.0})
    assert info["frame"] == 0 and obs["location"][0] == 0.0


@pytest.mark.parametrize("reward", ["margin", "prediction", "prediction_transition"])
@pytest.mark.parametrize("frame_cost", [0.0, 0.02])
def test_rewards_hand_computed(tiny_cache, reward, frame_cost):
    env = AdaFrameEnv(data=tiny_cache, reward=reward, frame_cost=frame_cost, budget=6)
    store = env.store
    _, info = env.reset(options={"video": 5})
    v, length = info["video_index"], int(store.length[info["video_index"]])
    locs = [0.5, 0.5, 1.0, 0.25, 0.0]  # a revisit (0.5) and a return to the first frame
    frames = [0] + [int(np.rint(x * (length - 1))) for x in locs]
    rewards = [env.step(act(x))[1] for x in locs]
    probs, m, g = expected_episode(store, v, frames)
    new = [f not in frames[:i] for i, f in enumerate(frames)]
    want = []
    for t in range(1, len(frames)):
        if reward == "margin":
            r = max(0.0, m[t] - m[:t].max())
        elif reward == "prediction":
            r = g[t]
        else:
            r = g[t] - g[t - 1]
        want.append(r - frame_cost * store.gflops_per_frame * new[t])
    np.testing.assert_allclose(rewards, want, atol=2e-6)
    assert env._probs == pytest.approx(probs[-1], abs=1e-6)


def test_gflops_accounting(tiny_cache):
    for memory in (True, False):
        env = AdaFrameEnv(data=tiny_cache, memory=memory, budget=6)
        gpf, mem = env.store.gflops_per_frame, env.store.memory_gflops
        assert mem == pytest.approx(1.32)
        _, info = env.reset(options={"video": 0})
        base = gpf + (mem if memory else 0.0)
        assert info["gflops"] == pytest.approx(base)
        infos = [env.step(act(x))[4] for x in (1.0, 1.0, 0.0, 0.5)]  # revisit, first frame
        assert [i["distinct_frames"] for i in infos] == [2, 2, 2, 3]
        assert [i["gflops"] for i in infos] == pytest.approx(
            [base + gpf, base + gpf, base + gpf, base + 2 * gpf]
        )
        env.add_gflops(0.5)
        assert env.step(act(0.5))[4]["gflops"] == pytest.approx(base + 2 * gpf + 0.5)


@pytest.mark.parametrize("size", [1, 12, 32])
def test_memory_frames_shape_content_and_cost(tiny_cache, size):
    env = AdaFrameEnv(data=tiny_cache, memory_frames=size, split="test")
    assert env.observation_space["memory"].shape == (size, env.store.light_dim)
    obs, info = env.reset(options={"video": 2})
    v = env.split_videos[2]
    assert np.array_equal(obs["memory"], env.store.memory([v], size)[0].astype(np.float32))
    assert np.allclose(obs["memory_positions"], env.store.memory_positions([v], size)[0])
    light = env.store.light_gflops_per_frame
    assert info["gflops"] == pytest.approx(env.store.gflops_per_frame + size * light)


def test_memory_frames_bad_values(tiny_cache):
    with pytest.raises(ValueError, match="memory_frames must be at least 1.*memory=False"):
        AdaFrameEnv(data=tiny_cache, memory_frames=0)
    with pytest.raises(TypeError, match="memory_frames must be an int"):
        AdaFrameEnv(data=tiny_cache, memory_frames=True)


def test_stop_action(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, stop_action=True)
    assert env.action_space.shape == (2,)
    env.reset(seed=0)
    _, r, te, tr, info = env.step(act(0.5, 0.0))
    assert not te and info["frames_used"] == 2
    obs, r, te, tr, info = env.step(act(0.9, 1.0))
    assert (r, te, tr) == (0.0, True, False)
    assert info["frames_used"] == 2 and "is_correct" in info


def test_info_contents(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache)
    _, info = env.reset(seed=0)
    assert info["synthetic"] is True
    assert info["video_id"] == env.store.video_id[info["video_index"]]
    assert info["label"] == env.store.label[info["video_index"]]
    # prediction and margin from the cache itself, not the env's state: the mean softmax of the
    # stored logits over the distinct frames seen so far (AvgPooling)
    v, seen = info["video_index"], [info["frame"]]
    for loc in (0.7, 0.2, 0.7):
        _, _, _, _, info = env.step(act(loc))
        seen.append(info["frame"])
        frames = sorted(set(seen))
        probs = softmax(env.store.logits(np.full(len(frames), v), frames)).mean(0)
        assert info["prediction"] == int(np.argmax(probs))
        assert info["margin"] == pytest.approx(float(margin_fn(probs, info["label"])), abs=1e-5)


def test_render_modes(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, render_mode="ansi", budget=3)
    env.reset(seed=0)
    lines = [env.render()]
    for x in (0.5, 0.5):
        env.step(act(x))
        lines.append(env.render())
    assert all(isinstance(s, str) and "\n" not in s for s in lines)
    assert "t=  3/3" in lines[-1] and "(seen)" in lines[-1] and "budget used" in lines[-1]

    env = AdaFrameEnv(data=tiny_cache, render_mode="rgb_array")
    env.reset(seed=0)
    for x in (0.3, 0.6, 0.3):
        env.step(act(x))
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.std() > 0
    env.close()


def test_pickles(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache)
    env.reset(seed=0)
    blob = pickle.dumps(env)
    assert len(blob) < 100_000  # the cache travels by path, not by value
    clone = pickle.loads(blob)
    assert clone.step(act(0.5))[1] == env.step(act(0.5))[1]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([np.nan], np.float32), "NaN or inf"),
        (np.array([np.inf], np.float32), "NaN or inf"),
        (np.array([1.5], np.float32), "outside"),
        (np.array([-0.1], np.float32), "outside"),
        (np.array([0.5, 0.5], np.float32), "shape"),
        (np.array([[0.5]], np.float32), "shape"),
        (0.5, "shape"),
        ("left", "not numeric"),
        (np.array(["a"]), "dtype"),
    ],
)
def test_bad_actions(tiny_cache, action, match):
    env = AdaFrameEnv(data=tiny_cache)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)
    env.step(act(0.5))  # the env is still usable


def test_bad_stop_value(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, stop_action=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([0.5, np.nan], np.float32))


def test_step_before_reset(tiny_cache):
    with pytest.raises(RuntimeError, match="before reset"):
        AdaFrameEnv(data=tiny_cache).step(act(0.5))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"reward": "accuracy"}, ValueError, "unknown reward 'accuracy'"),
        ({"budget": 0}, ValueError, "at least 1"),
        ({"budget": 2.5}, TypeError, "budget must be an int"),
        ({"split": "dev"}, ValueError, "split must be one of"),
        ({"frame_cost": -1}, ValueError, "frame_cost"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
        ({"observation_keys": ("pixels",)}, ValueError, "unknown observation key"),
        ({"observation_keys": ("memory",)}, ValueError, "memory=True/False"),
        ({"observation_keys": (), "memory": False}, ValueError, "nothing to observe"),
        ({"initial_location": 2.0}, ValueError, "initial_location"),
    ],
)
def test_bad_arguments(tiny_cache, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AdaFrameEnv(data=tiny_cache, **kwargs)


def test_bad_reset_options(tiny_cache):
    env = AdaFrameEnv(data=tiny_cache, split="val")
    with pytest.raises(ValueError, match="outside the val split"):
        env.reset(options={"video": 10_000})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"vid": 1})
    with pytest.raises(ValueError, match="location"):
        env.reset(options={"location": -1})


def test_split_without_videos(make_cache_copy):
    path = make_cache_copy("no-val.h5")
    with h5py.File(path, "r+") as f:
        split = f["videos/split"][:]
        split[split == 1] = 2
        f["videos/split"][:] = split
    with pytest.raises(CacheError, match="split 'val' has no videos"):
        AdaFrameEnv(data=path, split="val")


def test_missing_and_invalid_data(tmp_path):
    with pytest.raises(CacheError, match="no such file"):
        AdaFrameEnv(data=tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(CacheError, match=r"bad\.h5"):
        gym.make("AdaFrame-v0", data=bad)
