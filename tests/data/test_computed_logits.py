"""Schema v3: logits computed from the stored heads, not stored (docs/cache-format.md).

The reference is the session's ``tiny_cache``, which stores its logits as a v2 cache does;
``tiny_cache_computed`` is the same file without them. Every reader of logits must see the
same values from both, to float16 rounding.
"""

from __future__ import annotations

import gymnasium as gym
import h5py
import numpy as np
import pytest

from adaframe_env.data.schema import HEADS, CacheError, validate
from adaframe_env.data.store import ComputedLogits, FeatureStore
from adaframe_env.env import AdaFrameEnv


def assert_f16_equal(computed: np.ndarray, stored: np.ndarray) -> None:
    """Equal to float16 rounding: at most one float16 step apart (a float32 matmul of another
    shape may round differently before the cast)."""
    assert computed.dtype == stored.dtype == np.float16
    assert computed.shape == stored.shape
    a, b = computed.astype(np.float32), stored.astype(np.float32)
    step = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float16)).astype(np.float32)
    assert (np.abs(a - b) <= step).all(), float(np.abs(a - b).max())


@pytest.fixture(scope="module", params=[False, True], ids=["ram", "lazy"])
def stores(request, tiny_cache, tiny_cache_computed):
    lazy = request.param
    return FeatureStore(tiny_cache, lazy=lazy), FeatureStore(tiny_cache_computed, lazy=lazy)


def test_the_computed_cache_stores_no_logits_and_validates(tiny_cache_computed):
    summary = validate(tiny_cache_computed)
    assert summary.has_recognizer and not summary.has_logits
    with h5py.File(tiny_cache_computed, "r") as f:
        assert "frames/logits" not in f and "frames/light_logits" not in f
        assert f.attrs["schema_version"] == 3


def test_whole_arrays_equal_the_stored_logits(stores):
    stored, computed = stores
    assert not stored.computed_logits and computed.computed_logits
    for name in ("logits", "light_logits"):
        arr = computed.array(name)
        assert isinstance(arr, ComputedLogits)
        assert arr.shape == stored.array(name).shape and len(arr) == len(stored.array(name))
        assert_f16_equal(arr[:], np.asarray(stored.array(name)))
        assert_f16_equal(np.asarray(arr), np.asarray(stored.array(name)))


def test_train_rows_use_their_fold_head_and_others_the_full_head(tiny_cache_computed):
    """Recompute a train frame and a test frame by hand from the heads in the file."""
    store = FeatureStore(tiny_cache_computed)
    with h5py.File(tiny_cache_computed, "r") as f:
        fold = f["recognizer/fold"][:]
        w, b = f["recognizer/heavy_weight"][()], f["recognizer/heavy_bias"][()]
        fw, fb = f["recognizer/heavy_fold_weight"][()], f["recognizer/heavy_fold_bias"][()]
    train, test = store.videos("train")[0], store.videos("test")[0]
    x = store.features([train, test], [1, 1]).astype(np.float32)
    k = fold[train]
    expected = np.stack([x[0] @ fw[k].T + fb[k], x[1] @ w.T + b]).astype(np.float16)
    assert_f16_equal(store.logits([train, test], [1, 1]), expected)
    # and a head other than the video's would give other logits
    assert not np.array_equal(store.logits([train], [1]), (x[:1] @ w.T + b).astype(np.float16))


def test_every_accessor_matches_the_stored_logits(stores):
    stored, computed = stores
    rng = np.random.default_rng(0)
    v = rng.integers(0, stored.num_videos, (3, 5))
    f = (rng.random((3, 5)) * stored.length[v]).astype(np.int64)
    for name in ("logits", "light_logits"):
        assert_f16_equal(computed.lookup(name, v, f), stored.lookup(name, v, f))
        for video in (0, stored.num_videos - 1):
            assert_f16_equal(computed.video_frames(name, video), stored.video_frames(name, video))
        arr, ref = computed.array(name), stored.array(name)
        assert_f16_equal(arr[7], ref[7])  # one row, as the single env reads it
        assert_f16_equal(arr[np.int64(7)], ref[7])
        assert_f16_equal(arr[-1], ref[-1])
        assert_f16_equal(arr[[-1, 0, 3, 3]], ref[[-1, 0, 3, 3]])
        assert_f16_equal(arr[2:40:3], ref[2:40:3])
        mask = np.zeros(len(ref), bool)
        mask[[1, 5, 9]] = True
        assert_f16_equal(arr[mask], ref[mask])
        assert arr[np.array([], np.int64)].shape == (0, stored.num_classes)
    assert_f16_equal(computed.logits(v, f), stored.logits(v, f))
    assert_f16_equal(computed.light_logits(v, f), stored.light_logits(v, f))


def test_bad_indices_are_refused(tiny_cache_computed):
    arr = FeatureStore(tiny_cache_computed).array("logits")
    with pytest.raises(IndexError, match="first axis only"):
        arr[0, 1]
    with pytest.raises(IndexError, match="integers"):
        arr[np.array([0.5])]
    with pytest.raises(IndexError):
        arr[len(arr)]


def run_episodes(data, seed: int, split: str) -> list:
    env = AdaFrameEnv(data=data, split=split, budget=6, memory=True)
    rng = np.random.default_rng(seed)
    out = []
    obs, _ = env.reset(seed=seed)
    for _ in range(30):
        obs, reward, term, trunc, info = env.step(rng.random(1).astype(np.float32))
        out.append((reward, obs["probs"].copy()))
        if term or trunc:
            obs, _ = env.reset()
    return out


@pytest.mark.parametrize("split", ["train", "test"])
def test_single_env_gives_the_same_episodes(tiny_cache, tiny_cache_computed, split):
    ref, got = run_episodes(tiny_cache, 3, split), run_episodes(tiny_cache_computed, 3, split)
    for (r0, p0), (r1, p1) in zip(ref, got, strict=True):
        assert r1 == pytest.approx(r0, abs=1e-3)
        np.testing.assert_allclose(p1, p0, atol=1e-3)


def test_vector_env_gives_the_same_episodes(tiny_cache, tiny_cache_computed):
    results = []
    for data in (tiny_cache, tiny_cache_computed):
        envs = gym.make_vec("AdaFrame-v0", num_envs=8, data=str(data), split="train", budget=5)
        rng = np.random.default_rng(1)
        envs.reset(seed=1)
        rewards = []
        for _ in range(12):
            _, r, *_ = envs.step(rng.random((8, 1)).astype(np.float32))
            rewards.append(r)
        envs.close()
        results.append(np.array(rewards))
    np.testing.assert_allclose(results[1], results[0], atol=1e-3)


# ----------------------------------------------------------------------------- the rules


def copy_of(make_cache_copy, source):
    path = make_cache_copy(source=source)
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("name", ["recognizer/heavy_weight", "recognizer/light_fold_bias"])
def test_v3_without_logits_needs_the_heads(make_cache_copy, tiny_cache_computed, name):
    path = copy_of(make_cache_copy, tiny_cache_computed)
    with h5py.File(path, "r+") as f:
        del f[name]
    with pytest.raises(CacheError) as e:
        validate(path)
    assert e.value.where == "/" + name and "fit-recognizer" in e.value.problem
    validate(path, require_recognizer=False)  # an unfitted cache is fine without them


@pytest.mark.parametrize(
    "name, bad, problem",
    [
        ("recognizer/heavy_weight", lambda a: a[:, :-1], "expected ("),
        ("recognizer/light_fold_weight", lambda a: a[:-1], "folds in /recognizer/fold"),
        ("recognizer/heavy_bias", lambda a: np.r_[a, 0.0].astype(np.float32), "one row per class"),
        ("recognizer/heavy_fold_bias", lambda a: a.astype(np.float16), "float32"),
    ],
)
def test_bad_heads_are_refused(make_cache_copy, tiny_cache_computed, name, bad, problem):
    path = copy_of(make_cache_copy, tiny_cache_computed)
    with h5py.File(path, "r+") as f:
        data = bad(f[name][()])
        del f[name]
        f.create_dataset(name, data=data)
    with pytest.raises(CacheError) as e:
        FeatureStore(path)
    assert e.value.where == "/" + name and problem in e.value.problem, str(e.value)


def test_nan_in_a_head_is_refused_even_with_a_stamp(make_cache_copy, tiny_cache_computed):
    path = copy_of(make_cache_copy, tiny_cache_computed)
    FeatureStore(path)  # validated and stamped
    with h5py.File(path, "r+") as f:
        f["recognizer/light_weight"][0, 0] = np.nan
    with pytest.raises(CacheError, match="holds NaN or inf") as e:
        FeatureStore(path)
    assert e.value.where == "/recognizer/light_weight"


def test_v2_cache_is_read_unchanged(make_cache_copy, tiny_cache):
    """A v2 cache (stored logits) opens as before and serves its stored logits byte for byte;
    a v2 cache that lost them is refused as before, though it has the heads."""
    path = copy_of(make_cache_copy, tiny_cache)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 2
        stored = f["frames/logits"][:]
    store = FeatureStore(path)
    assert not store.computed_logits
    assert store.array("logits")[:].tobytes() == stored.tobytes()
    with h5py.File(path, "r+") as f:
        del f["frames/logits"]
        assert all(name in f for name in HEADS)
    with pytest.raises(CacheError) as e:
        validate(path)
    assert e.value.where == "/frames/logits" and "missing dataset" in e.value.problem
