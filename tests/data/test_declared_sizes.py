"""Declared sizes are bounded by what the file holds, before anything is scanned or loaded.

A 16 KB file can declare a dataset of 2^31 - 1 rows that was never written (HDF5 reads every
unwritten chunk as the fill value). Scanning it took 22 minutes and loading it 128 GiB; it must
be refused at once, with one line naming the file and the dataset.
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import h5py
import numpy as np
import pytest

import adaframe_env  # noqa: F401  (registers the env ids)
from adaframe_env.cli import main
from adaframe_env.data.schema import SCHEMA_VERSION, STR_DTYPE, CacheError, validate
from adaframe_env.data.store import FeatureStore

HUGE = 2**31 - 1  # frames of the one declared video
FAST = 5.0  # seconds: each refusal reads a few KB of metadata; the old scan took minutes


def declared_cache(path, frames: int = HUGE, layout: str = "chunked") -> None:
    """A cache whose frame arrays declare ``frames`` rows and store none of them."""
    with h5py.File(path, "w") as f:
        f.attrs.update(
            schema_version=SCHEMA_VERSION, dataset="huge", fps=1.0, backbone="b",
            light_backbone="l", gflops_per_frame=1.0, light_gflops_per_frame=0.1,
            synthetic=False,
        )  # fmt: skip
        for name, dim in (("features", 8), ("light", 4), ("logits", 3), ("light_logits", 3)):
            chunks = (1 << 16, dim) if layout == "chunked" else None
            f.create_dataset(f"frames/{name}", (frames, dim), np.float16, chunks=chunks)
        f["videos/offset"] = np.array([0], np.int64)
        f["videos/length"] = np.array([frames], np.int32)
        f["videos/label"] = np.array([0], np.int32)
        f["videos/split"] = np.array([2], np.uint8)
        f.create_dataset("videos/id", data=np.array(["v0"], dtype=object), dtype=STR_DTYPE)
        f.create_dataset("classes/name", data=np.array(["a", "b", "c"], dtype=object),
                         dtype=STR_DTYPE)  # fmt: skip
        f["recognizer/fold"] = np.array([-1], np.int8)


def timed(call):
    t0 = time.monotonic()
    try:
        return call()
    finally:
        assert time.monotonic() - t0 < FAST, "took too long: the declared size was scanned"


@pytest.fixture(params=["chunked", "contiguous"])
def huge(request, tmp_path):
    path = tmp_path / f"huge-{request.param}.h5"
    declared_cache(path, layout=request.param)
    assert os.path.getsize(path) < 64 * 1024  # a few KB that declare ~26 GiB of frames
    return path


def check_message(text: str, path) -> None:
    assert f"{path}: /frames/features: " in text, text
    assert str(HUGE) in text  # the declared size
    assert "never fully written" in text or "stores only" in text, text


@pytest.mark.timeout(60)
def test_validate_refuses_at_once(capsys, huge):
    rc = timed(lambda: main(["validate", str(huge)]))
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"adaframe validate: {huge}: ")
    check_message(err, huge)


@pytest.mark.timeout(60)
def test_info_refuses_at_once(capsys, huge):
    rc = timed(lambda: main(["info", str(huge)]))
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"adaframe info: {huge}: ")
    check_message(err, huge)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("opener", ["FeatureStore", "gym.make"])
def test_opening_refuses_at_once(huge, opener):
    def call():
        if opener == "FeatureStore":
            return FeatureStore(huge)
        return gym.make("AdaFrame-v0", data=str(huge), split="test")

    with pytest.raises(CacheError) as e:
        timed(call)
    assert e.value.file == str(huge) and e.value.where == "/frames/features"
    check_message(str(e.value), huge)


def test_a_compressed_chunked_cache_passes(make_cache_copy):
    """Compressed chunks take fewer bytes than the array: chunks are counted, not bytes."""
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        for name in ("frames/features", "frames/light"):
            x = f[name][:]
            del f[name]
            f.create_dataset(name, data=x, chunks=(64, x.shape[1]), compression="gzip")
            assert f[name].id.get_storage_size() < f[name].nbytes
    summary = validate(path)
    assert summary.num_frames == len(x)
    assert np.array_equal(FeatureStore(path).array("light"), x)


def test_one_missing_chunk_is_refused(make_cache_copy):
    """A chunked array whose last chunk was never written: its rows would read as zeros."""
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        x = f["frames/light"][:]
        del f["frames/light"]
        ds = f.create_dataset("frames/light", x.shape, x.dtype, chunks=(64, x.shape[1]))
        last = (len(x) - 1) // 64 * 64
        ds[:last] = x[:last]
        needed = -(-len(x) // 64)
    with pytest.raises(CacheError) as e:
        validate(path)
    assert e.value.where == "/frames/light"
    assert f"{needed - 1} of its {needed} chunks" in str(e.value)


def test_a_short_contiguous_array_is_refused(make_cache_copy):
    """A contiguous array declared but never written stores 0 bytes of its nbytes."""
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        shape, dtype = f["frames/logits"].shape, f["frames/logits"].dtype
        del f["frames/logits"]
        f.create_dataset("frames/logits", shape, dtype)
    with pytest.raises(CacheError) as e:
        validate(path)
    assert e.value.where == "/frames/logits"
    nbytes = np.dtype(dtype).itemsize * int(np.prod(shape))
    assert f"({nbytes} bytes) but stores only 0 bytes" in str(e.value)
