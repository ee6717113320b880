"""FeatureStore: in-RAM and lazy loading, batched lookups against a per-video reference loop."""

from __future__ import annotations

import json
import pickle
import re

import h5py
import numpy as np
import pytest

from adaframe_env.build.synth import preset
from adaframe_env.data.schema import CacheError
from adaframe_env.data.store import (
    FRAME_ARRAYS,
    MEMORY_SIZE,
    FeatureStore,
    frame_of_location,
    memory_frame_index,
)


@pytest.fixture(scope="module")
def ram(tiny_cache):
    return FeatureStore(tiny_cache)


@pytest.fixture(scope="module")
def lazy(tiny_cache):
    return FeatureStore(tiny_cache, lazy=True)


@pytest.fixture(scope="module")
def ref(tiny_cache):
    """The file read directly with h5py, one list entry per video (the reference)."""
    with h5py.File(tiny_cache, "r") as f:
        offset, length = f["videos/offset"][:], f["videos/length"][:]
        per_video = {
            name: [f[f"frames/{name}"][o : o + n] for o, n in zip(offset, length, strict=True)]
            for name in FRAME_ARRAYS
        }
        flat = {name: f[f"frames/{name}"][:] for name in FRAME_ARRAYS}
        meta = {
            "offset": offset,
            "length": length,
            "label": f["videos/label"][:],
            "split": f["videos/split"][:],
            "video_id": f["videos/id"].asstr()[:],
            "class_names": f["classes/name"].asstr()[:],
        }
    return {"per_video": per_video, "flat": flat, **meta}


def random_batch(rng, ref, shape):
    """Video ids of ``shape`` and valid frame ids for them."""
    v = rng.integers(0, len(ref["length"]), shape)
    f = (rng.random(shape) * ref["length"][v]).astype(np.int64)
    return v, f


def loop_lookup(ref, name, video_ids, frame_ids):
    v, f = np.broadcast_arrays(np.asarray(video_ids), np.asarray(frame_ids))
    rows = [
        ref["per_video"][name][int(a)][int(b)] for a, b in zip(v.ravel(), f.ravel(), strict=True)
    ]
    trailing = ref["flat"][name].shape[1:]
    return np.array(rows, dtype=ref["flat"][name].dtype).reshape(v.shape + trailing)


# ----------------------------------------------------------------------------- loading


def test_ram_and_lazy_hold_the_same_arrays(ram, lazy, ref):
    assert not ram.lazy and lazy.lazy
    for name in FRAME_ARRAYS:
        a, b = ram.array(name), lazy.array(name)
        assert not isinstance(a, np.memmap) and isinstance(b, np.memmap)
        assert a.dtype == b.dtype == ref["flat"][name].dtype
        assert np.array_equal(a, ref["flat"][name]) and np.array_equal(b, ref["flat"][name])


def test_metadata(ram, lazy, ref, tiny_cache):
    for store in (ram, lazy):
        assert np.array_equal(store.offset, ref["offset"])
        assert np.array_equal(store.length, ref["length"])
        assert np.array_equal(store.label, ref["label"])
        assert np.array_equal(store.split, ref["split"])
        assert store.video_id.tolist() == ref["video_id"].tolist()
        assert store.class_names.tolist() == ref["class_names"].tolist()
        assert store.num_videos == len(ref["offset"])
        assert store.num_classes == len(ref["class_names"])
        assert store.feature_dim == ref["flat"]["features"].shape[1]
        assert store.light_dim == ref["flat"]["light"].shape[1]
        assert store.gflops_per_frame == pytest.approx(7.82)
        assert store.memory_gflops == pytest.approx(1.32)
        assert store.synthetic and store.has_relevance
        assert store.generator == json.loads(json.dumps(preset("tiny", seed=0).as_json()))
        assert store.summary is not None and store.summary.num_videos == store.num_videos
        assert str(tiny_cache) in repr(store)
    assert "in RAM" in repr(ram) and "lazy" in repr(lazy)


# ----------------------------------------------------------------------------- lookups


@pytest.mark.parametrize("name", FRAME_ARRAYS)
def test_lookup_1d_matches_loop(ram, lazy, ref, name):
    rng = np.random.default_rng(1)
    for _ in range(5):
        v, f = random_batch(rng, ref, (37,))
        expected = loop_lookup(ref, name, v, f)
        for store in (ram, lazy):
            got = store.lookup(name, v, f)
            assert got.shape == expected.shape and got.dtype == expected.dtype
            assert np.array_equal(got, expected)


@pytest.mark.parametrize("name", ["features", "light", "logits", "relevance"])
def test_lookup_2d_broadcasting_matches_loop(ram, lazy, ref, name):
    rng = np.random.default_rng(2)
    B, K = 9, 5
    v = rng.integers(0, len(ref["length"]), (B, 1))
    f = (rng.random((B, K)) * ref["length"][v]).astype(np.int64)  # (B, K) frames of (B, 1) videos
    v_full, f_full = random_batch(rng, ref, (B, K))  # (B, K) with (B, K)
    for store in (ram, lazy):
        got = store.lookup(name, v, f)
        assert got.shape == (B, K) + ref["flat"][name].shape[1:]
        assert np.array_equal(got, loop_lookup(ref, name, v, f))
        assert np.array_equal(
            store.lookup(name, v_full, f_full), loop_lookup(ref, name, v_full, f_full)
        )
        # One video, many frames; and one frame index for many videos.
        frames = np.arange(ref["length"][3])
        assert np.array_equal(store.lookup(name, 3, frames), ref["per_video"][name][3])
        vids = np.arange(len(ref["length"]))
        assert np.array_equal(store.lookup(name, vids, 0), loop_lookup(ref, name, vids, 0))
        last = ref["length"] - 1
        assert np.array_equal(store.lookup(name, vids, last), loop_lookup(ref, name, vids, last))


def test_named_accessors_and_rows(ram, ref):
    rng = np.random.default_rng(3)
    v, f = random_batch(rng, ref, (20,))
    assert np.array_equal(ram.rows(v, f), ref["offset"][v] + f)
    assert np.array_equal(ram.features(v, f), loop_lookup(ref, "features", v, f))
    assert np.array_equal(ram.logits(v, f), loop_lookup(ref, "logits", v, f))
    assert np.array_equal(ram.light_logits(v, f), loop_lookup(ref, "light_logits", v, f))
    assert np.array_equal(ram.relevance(v, f), loop_lookup(ref, "relevance", v, f))
    for vid in (0, 5, len(ref["length"]) - 1):
        for store_name in FRAME_ARRAYS:
            assert np.array_equal(
                ram.video_frames(store_name, vid), ref["per_video"][store_name][vid]
            )


def test_lookup_results_are_not_views_of_the_store(ram, ref):
    v, f = np.array([0, 1]), np.array([0, 0])
    got = ram.lookup("features", v, f)
    got[...] = 0
    assert np.array_equal(ram.lookup("features", v, f), loop_lookup(ref, "features", v, f))


# ----------------------------------------------------------------------------- global memory


def expected_memory_frames(length: int) -> np.ndarray:
    """Centres of 16 equal segments of [0, length), as frame indices (reference loop)."""
    return np.array(
        [
            min(int(np.floor((j + 0.5) * length / MEMORY_SIZE)), length - 1)
            for j in range(MEMORY_SIZE)
        ]
    )


def test_memory_frames_are_segment_centres(ram, ref):
    for v, n in enumerate(ref["length"]):
        frames = ram.memory_frames[v]
        assert np.array_equal(frames, expected_memory_frames(int(n)))
        assert frames.min() >= 0 and frames.max() < n
        assert (np.diff(frames) >= 0).all()
        if n >= MEMORY_SIZE:
            assert (np.diff(frames) > 0).all()
        else:
            assert np.array_equal(np.unique(frames), np.arange(n)), "short videos: every frame"


@pytest.mark.parametrize("n", [1, 2, 7, 15, 16, 17, 31, 32, 33, 100, 899, 900])
def test_memory_frame_index_for_many_lengths(n):
    assert np.array_equal(memory_frame_index(np.array([n]))[0], expected_memory_frames(n))


def test_memory_equals_light_rows_of_memory_frames(ram, lazy, ref):
    rng = np.random.default_rng(4)
    vids = rng.integers(0, len(ref["length"]), 13)
    Dl = ref["flat"]["light"].shape[1]
    expected = np.stack(
        [ref["per_video"]["light"][v][expected_memory_frames(int(ref["length"][v]))] for v in vids]
    )
    for store in (ram, lazy):
        mem = store.memory(vids)
        assert mem.shape == (len(vids), MEMORY_SIZE, Dl) and mem.dtype == np.float16
        assert np.array_equal(mem, expected)
        assert np.array_equal(store.memory(int(vids[0])), expected[0])


def test_memory_positions(ram, ref):
    vids = np.arange(len(ref["length"]))
    pos = ram.memory_positions(vids)
    assert pos.shape == (len(vids), MEMORY_SIZE) and pos.dtype == np.float32
    assert pos.min() >= 0.0 and pos.max() <= 1.0
    assert (np.diff(pos, axis=1) >= 0).all()
    long_enough = ref["length"] >= MEMORY_SIZE
    assert long_enough.any()
    assert (np.diff(pos[long_enough], axis=1) > 0).all()
    for v in vids[:10]:
        n = int(ref["length"][v])
        np.testing.assert_allclose(pos[v], expected_memory_frames(n) / max(n - 1, 1), rtol=1e-6)


def test_frame_of_location():
    length = np.array([1, 2, 10, 11])
    assert frame_of_location(np.zeros(4), length).tolist() == [0, 0, 0, 0]
    assert frame_of_location(np.ones(4), length).tolist() == [0, 1, 9, 10]
    assert frame_of_location(np.full(4, 0.5), length).tolist() == [0, 0, 4, 5]  # half to even
    assert frame_of_location(np.array([-3.0, 2.0, 0.34, 0.36]), length).tolist() == [0, 1, 3, 4]


# ----------------------------------------------------------------------------- splits, pickling


def test_videos_partition_the_splits(ram, ref):
    parts = [ram.videos(s) for s in ("train", "val", "test")]
    everything = np.concatenate(parts)
    assert np.array_equal(np.sort(everything), np.arange(len(ref["length"])))
    assert len(everything) == len(set(everything.tolist()))
    for code, part in enumerate(parts):
        assert len(part) > 0
        assert (np.diff(part) > 0).all(), "file order"
        assert (ref["split"][part] == code).all()


@pytest.mark.parametrize("split", ["training", "Test", "", "all"])
def test_bad_split_name(ram, split):
    with pytest.raises(ValueError, match=re.escape(repr(split))) as e:
        ram.videos(split)
    assert "train" in str(e.value) and "val" in str(e.value) and "test" in str(e.value)


@pytest.mark.parametrize("lazy_mode", [False, True])
def test_pickle_round_trips_by_path(tiny_cache, lazy_mode):
    store = FeatureStore(tiny_cache, lazy=lazy_mode)
    blob = pickle.dumps(store)
    assert len(blob) < 2000, "pickled by path, not by value"
    assert str(tiny_cache).encode() in blob
    back = pickle.loads(blob)
    assert back.path == store.path and back.lazy == lazy_mode
    for name in FRAME_ARRAYS:
        assert np.array_equal(back.array(name), store.array(name))
    v, f = np.array([0, 3, 7]), np.array([1, 0, 2])
    assert np.array_equal(back.features(v, f), store.features(v, f))
    assert np.array_equal(back.memory(v), store.memory(v))


def test_unknown_array_and_missing_relevance(make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        f.attrs["synthetic"] = False
        del f["frames/relevance"]
    store = FeatureStore(path)
    assert not store.has_relevance and not store.synthetic
    with pytest.raises(KeyError, match="no ground-truth relevance"):
        store.relevance([0], [0])
    with pytest.raises(KeyError, match="frames/nope"):
        store.array("nope")


def test_close_and_context_manager(tiny_cache):
    with FeatureStore(tiny_cache, lazy=True) as store:
        assert store.features([0], [0]).shape == (1, store.feature_dim)
    with pytest.raises(KeyError):
        store.array("features")


def test_lazy_mode_refuses_chunked_datasets(make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        x = f["frames/light"][:]
        del f["frames/light"]
        f.create_dataset("frames/light", data=x, chunks=(64, x.shape[1]), compression="gzip")
    with pytest.raises(CacheError) as e:
        FeatureStore(path, lazy=True)
    assert e.value.where == "/frames/light"
    assert "lazy mode needs contiguous, uncompressed datasets" in str(e.value)
    store = FeatureStore(path)  # in RAM it is fine
    assert np.array_equal(store.array("light"), x)


def test_skip_validation(tiny_cache):
    store = FeatureStore(tiny_cache, validate_file=False)
    assert store.summary is None and store.num_videos > 0


def test_validation_is_remembered_until_the_file_changes(tiny_cache, tmp_path, monkeypatch):
    import os
    import shutil

    import adaframe_env.data.store as store_module

    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "copy.h5"
    shutil.copy(tiny_cache, path)
    calls = []
    real = store_module.validate
    monkeypatch.setattr(store_module, "validate", lambda *a: calls.append(a) or real(*a))
    first = FeatureStore(path)
    again = FeatureStore(path)  # unchanged: the stamp stands in for one pass over the file
    assert len(calls) == 1 and again.summary == first.summary
    os.utime(path, ns=(1, 1))  # rewritten or touched: checked again
    FeatureStore(path)
    assert len(calls) == 2
    store_module.validate_once(path, force=True)  # `adaframe validate` always reads the file
    assert len(calls) == 3
    with h5py.File(path, "r+") as f:  # a damaged file is caught, not excused by an old stamp
        f["frames/features"][0, 0] = np.nan
    with pytest.raises(CacheError, match="frames/features"):
        FeatureStore(path)
