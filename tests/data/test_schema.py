"""Schema rules (v2): every bad-file case gives one precise line (file, path inside it, problem).

Each case copies the session's valid tiny cache, breaks one thing with h5py and runs
``adaframe validate`` in-process: exit status 2, nothing on stdout, exactly one line on stderr
naming the file, the dataset path and the problem, and never a traceback.
"""

from __future__ import annotations

import os
import re

import h5py
import numpy as np
import pytest

from adaframe_env.cli import main
from adaframe_env.data.schema import (
    RECOGNIZER,
    REQUIRED,
    ROOT_ATTRS,
    SCHEMA_VERSION,
    STR_DTYPE,
    CacheError,
    validate,
)
from adaframe_env.data.store import FeatureStore

# ----------------------------------------------------------------------------- helpers


def validate_fails(capsys, path, *flags: str) -> str:
    """Run ``adaframe validate PATH`` in-process; check the one-line error; return that line."""
    rc = main(["validate", str(path), *flags])
    out, err = capsys.readouterr()
    assert rc == 2, f"expected exit status 2, got {rc}; stdout={out!r} stderr={err!r}"
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    line = err.rstrip("\n")
    assert line.startswith(f"adaframe validate: {path}: "), line
    return line


def expect(capsys, path, where: str, *problem: str, require_recognizer: bool = True) -> str:
    """The CLI line and the library's CacheError both name ``where`` and every ``problem`` part."""
    line = validate_fails(capsys, path, *([] if require_recognizer else ["--no-recognizer"]))
    assert f"{path}: {where}: " in line, line
    for part in problem:
        assert part in line, f"{part!r} not in {line!r}"
    with pytest.raises(CacheError) as info:
        validate(path, require_recognizer=require_recognizer)
    err = info.value
    assert err.file == str(path) and err.where == where
    assert str(err) == line[len("adaframe validate: ") :]
    return line


def replace_dataset(path, name: str, data, dtype=None) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data, dtype=dtype)


def edit_dataset(path, name: str, change) -> np.ndarray:
    """Read dataset ``name``, let ``change(array)`` modify it in place, write it back."""
    with h5py.File(path, "r+") as f:
        arr = f[name][()]
        change(arr)
        f[name][...] = arr
    return arr


def read(path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        ds = f[name]
        return ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]


def set_attr(path, key: str, value) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs[key] = value


def del_attr(path, key: str) -> None:
    with h5py.File(path, "r+") as f:
        del f.attrs[key]


@pytest.fixture
def cache(make_cache_copy):
    """A writable copy of the valid, fitted tiny cache."""
    return make_cache_copy("broken.h5")


# ----------------------------------------------------------------------------- valid files


def test_valid_cache_passes(capsys, tiny_cache):
    assert main(["validate", str(tiny_cache)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    summary = validate(tiny_cache)
    assert out.strip() == (
        f"{tiny_cache}: valid schema v{SCHEMA_VERSION} cache ({summary.num_videos} videos, "
        f"{summary.num_frames} frames, {summary.num_classes} classes)"
    )


def test_summary_matches_file(tiny_cache):
    s = validate(tiny_cache)
    with h5py.File(tiny_cache, "r") as f:
        assert s.num_videos == len(f["videos/offset"])
        assert s.num_frames == f["frames/features"].shape[0] == int(f["videos/length"][:].sum())
        assert s.num_classes == len(f["classes/name"])
        assert s.feature_dim == f["frames/features"].shape[1]
        assert s.light_dim == f["frames/light"].shape[1]
    assert s.has_recognizer and s.has_relevance
    assert s.attrs["schema_version"] == SCHEMA_VERSION
    assert s.attrs["synthetic"] is True


def test_synthesized_cache_follows_the_schema(tiny_cache):
    """Dtypes, shapes and attribute types exactly as docs/design.md section 1 says."""
    with h5py.File(tiny_cache, "r") as f:
        n, F, C = len(f["videos/offset"]), f["frames/features"].shape[0], len(f["classes/name"])
        for name, (dtype, rank) in {**REQUIRED, **RECOGNIZER}.items():
            ds = f[name]
            assert ds.ndim == rank, name
            if dtype == "str":
                assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8", name
            else:
                assert ds.dtype == np.dtype(dtype), name
            assert ds.shape[0] == (
                F if name.startswith("frames/") else C if "classes" in name else n
            )
        assert f["frames/logits"].shape == f["frames/light_logits"].shape == (F, C)
        assert f["frames/relevance"].shape == (F,) and f["frames/relevance"].dtype == np.float16
        for view, ds in (("heavy", "frames/features"), ("light", "frames/light")):
            assert f[f"recognizer/{view}_weight"].shape == (C, f[ds].shape[1])
            assert f[f"recognizer/{view}_bias"].shape == (C,)
        for key, kind in ROOT_ATTRS.items():
            value = f.attrs[key]
            if kind == "str":
                assert isinstance(value, str), key
            elif kind == "bool":
                assert np.asarray(value).dtype == bool, key
            elif kind == "int":
                assert np.issubdtype(np.asarray(value).dtype, np.integer), key
            else:
                assert np.asarray(value).dtype.kind == "f", key
        assert f.attrs["gflops_per_frame"] == pytest.approx(7.82)
        assert 16 * f.attrs["light_gflops_per_frame"] == pytest.approx(1.32)


# ----------------------------------------------------------------------------- not a cache


def test_missing_file(capsys, tmp_path):
    path = tmp_path / "nope.h5"
    expect(capsys, path, "/", "no such file")


def test_directory(capsys, tmp_path):
    expect(capsys, tmp_path, "/", "is a directory")


def test_not_an_hdf5_file(capsys, tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are not the features you are looking for\n")
    expect(capsys, path, "/", "not a readable HDF5 file", "signature")


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    expect(capsys, path, "/", "not a readable HDF5 file")


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.99])
def test_truncated_file(capsys, cache, fraction):
    os.truncate(cache, int(os.path.getsize(cache) * fraction))
    expect(capsys, cache, "/", "not a readable HDF5 file", "truncated")


def test_missing_schema_version_is_not_an_adaframe_cache(capsys, cache):
    del_attr(cache, "schema_version")
    expect(capsys, cache, "/@schema_version", "missing", "not an adaframe-gym feature cache")


def test_plain_hdf5_file_is_not_an_adaframe_cache(capsys, tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    expect(capsys, path, "/@schema_version", "not an adaframe-gym feature cache")


def test_future_schema_version_says_upgrade(capsys, cache):
    set_attr(cache, "schema_version", SCHEMA_VERSION + 1)
    expect(capsys, cache, "/@schema_version", f"version {SCHEMA_VERSION + 1}", "newer", "upgrade")


@pytest.mark.parametrize("version", [0, -1])
def test_unknown_old_schema_version(capsys, cache, version):
    set_attr(cache, "schema_version", version)
    expect(capsys, cache, "/@schema_version", f"unknown version {version}")


def test_v1_cache_is_refused_with_the_upgrade_command(capsys, cache):
    set_attr(cache, "schema_version", 1)
    expect(capsys, cache, "/@schema_version", "version 1", "in-sample", "fit-recognizer")


@pytest.mark.slow
def test_fit_recognizer_upgrades_a_v1_cache(capsys, cache):
    """A v1 cache (in-sample train logits, no folds) becomes a valid current cache in place."""
    set_attr(cache, "schema_version", 1)
    with h5py.File(cache, "r+") as f:
        for name in list(f["recognizer"]):
            if "fold" in name:
                del f["recognizer"][name]
    assert main(["fit-recognizer", str(cache), "--no-progress"]) == 0
    capsys.readouterr()
    summary = validate(cache)
    assert summary.attrs["schema_version"] == SCHEMA_VERSION == 3
    assert summary.has_logits  # it stored logits, and keeps storing them
    assert read(cache, "recognizer/fold").max() == 4  # 5 folds


def test_missing_folds(capsys, cache):
    with h5py.File(cache, "r+") as f:
        del f["recognizer/fold"]
    expect(capsys, cache, "/recognizer/fold", "missing dataset", "fit-recognizer")


@pytest.mark.parametrize("which", ["train", "test"])
def test_fold_must_match_the_split(capsys, cache, which):
    """Train videos need a fold (they were scored out-of-fold), val/test videos none."""
    split = read(cache, "videos/split")
    i = int(np.flatnonzero(split == {"train": 0, "test": 2}[which])[0])
    value = -1 if which == "train" else 0
    edit_dataset(cache, "recognizer/fold", lambda a: a.__setitem__(i, value))
    expect(capsys, cache, "/recognizer/fold", f"video {i} ", f"has fold {value}")


def test_fold_wrong_dtype(capsys, cache):
    replace_dataset(cache, "recognizer/fold", read(cache, "recognizer/fold").astype(np.int64))
    expect(capsys, cache, "/recognizer/fold", "dtype int64, expected int8")


@pytest.mark.parametrize("value", ["1", 1.0])
def test_schema_version_wrong_type(capsys, cache, value):
    set_attr(cache, "schema_version", value)
    expect(capsys, cache, "/@schema_version", "must be an integer")


# ----------------------------------------------------------------------------- root attributes


@pytest.mark.parametrize("key", [k for k in ROOT_ATTRS if k != "schema_version"])
def test_missing_root_attribute(capsys, cache, key):
    del_attr(cache, key)
    expect(capsys, cache, f"/@{key}", "missing root attribute")


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("gflops_per_frame", "fast", "float"),
        ("light_gflops_per_frame", "cheap", "float"),
        ("fps", np.array([1.0, 2.0]), "float"),
        ("synthetic", "yes", "bool"),
        ("synthetic", 0.5, "bool"),
        ("dataset", 3, "str"),
        ("backbone", np.float64(1.5), "str"),
        ("light_backbone", np.array(["a", "b"], dtype=object), "str"),
    ],
)
def test_wrong_typed_attribute(capsys, cache, key, value, kind):
    set_attr(cache, key, value)
    expect(capsys, cache, f"/@{key}", f"expected {kind}, got")


@pytest.mark.parametrize("key", ["gflops_per_frame", "light_gflops_per_frame", "fps"])
@pytest.mark.parametrize("value", [0.0, -7.82, float("nan"), float("inf")])
def test_non_positive_costs_and_fps(capsys, cache, key, value):
    set_attr(cache, key, value)
    expect(capsys, cache, f"/@{key}", "must be a positive number", f"got {value}")


# ----------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", list(REQUIRED))
def test_missing_required_dataset(capsys, cache, name):
    with h5py.File(cache, "r+") as f:
        del f[name]
    line = expect(capsys, cache, f"/{name}", "missing dataset")
    assert "fit-recognizer" not in line


@pytest.mark.parametrize("name", list(RECOGNIZER))
def test_v2_missing_logits_suggests_fit_recognizer(capsys, cache, name):
    """v2 stores its logits; v3 computes them from the heads when they are missing
    (tests/data/test_computed_logits.py)."""
    set_attr(cache, "schema_version", 2)
    with h5py.File(cache, "r+") as f:
        del f[name]
    expect(capsys, cache, f"/{name}", "missing dataset", f"`adaframe fit-recognizer {cache}`")


def test_unfitted_cache_needs_fit_recognizer(capsys, tiny_cache_unfitted):
    expect(
        capsys,
        tiny_cache_unfitted,
        "/recognizer/heavy_weight",
        "missing dataset",
        f"`adaframe fit-recognizer {tiny_cache_unfitted}`",
    )


def test_no_recognizer_flag_accepts_unfitted_cache(capsys, tiny_cache_unfitted):
    assert main(["validate", str(tiny_cache_unfitted), "--no-recognizer"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and f"valid schema v{SCHEMA_VERSION} cache" in out
    summary = validate(tiny_cache_unfitted, require_recognizer=False)
    assert not summary.has_recognizer


def test_no_recognizer_flag_accepts_cache_missing_one_logits_set(capsys, cache):
    with h5py.File(cache, "r+") as f:
        del f["frames/logits"]
    assert main(["validate", str(cache), "--no-recognizer"]) == 0
    assert "valid" in capsys.readouterr().out


def test_no_recognizer_flag_still_checks_present_logits(capsys, cache):
    """--no-recognizer accepts missing logits, not broken ones."""
    edit_dataset(cache, "frames/logits", lambda a: a.__setitem__((3, 1), np.nan))
    expect(capsys, cache, "/frames/logits", "row 3 holds NaN or inf", require_recognizer=False)


def test_group_where_a_dataset_belongs(capsys, cache):
    with h5py.File(cache, "r+") as f:
        del f["frames/features"]
        f.create_group("frames/features")
    expect(capsys, cache, "/frames/features", "is a group, expected a dataset")


@pytest.mark.parametrize(
    ("name", "dtype", "expected"),
    [
        ("frames/features", np.float32, "float16"),
        ("frames/light", np.float64, "float16"),
        ("frames/logits", np.float32, "float16"),
        ("frames/light_logits", np.float32, "float16"),
        ("frames/relevance", np.float32, "float16"),
        ("videos/offset", np.int32, "int64"),
        ("videos/length", np.int64, "int32"),
        ("videos/label", np.int64, "int32"),
        ("videos/split", np.int32, "uint8"),
    ],
)
def test_wrong_dtype(capsys, cache, name, dtype, expected):
    replace_dataset(cache, name, read(cache, name).astype(dtype))
    expect(capsys, cache, f"/{name}", f"dtype {np.dtype(dtype).name}, expected {expected}")


@pytest.mark.parametrize("name", ["videos/id", "classes/name"])
def test_strings_stored_as_numbers(capsys, cache, name):
    replace_dataset(cache, name, np.arange(len(read(cache, name))))
    expect(capsys, cache, f"/{name}", "dtype int64, expected utf-8 strings")


@pytest.mark.parametrize(
    ("name", "reshape", "rank"),
    [
        ("frames/features", lambda a: a.reshape(-1), 2),
        ("frames/light", lambda a: a[:, :, None], 2),
        ("frames/logits", lambda a: a[:, 0], 2),
        ("frames/relevance", lambda a: a[:, None], 1),
        ("videos/label", lambda a: a[:, None], 1),
        ("videos/offset", lambda a: np.stack([a, a]), 1),
        ("videos/id", lambda a: a.astype(object)[:, None], 1),
    ],
)
def test_wrong_rank(capsys, cache, name, reshape, rank):
    with h5py.File(cache, "r") as f:
        dtype = f[name].dtype
    new = reshape(read(cache, name))
    replace_dataset(cache, name, new, dtype=dtype)
    expect(capsys, cache, f"/{name}", f"has shape {new.shape}", f"expected {rank} dimension(s)")


@pytest.mark.parametrize(
    "name", ["frames/light", "frames/logits", "frames/light_logits", "frames/relevance"]
)
@pytest.mark.parametrize("delta", [-1, 5])
def test_row_count_mismatch_between_frame_arrays(capsys, cache, name, delta):
    arr = read(cache, name)
    F = len(arr)
    new = arr[: F + delta] if delta < 0 else np.concatenate([arr, arr[:delta]])
    replace_dataset(cache, name, new)
    expect(capsys, cache, f"/{name}", f"has {F + delta} rows, /frames/features has {F}")


@pytest.mark.parametrize("name", ["frames/logits", "frames/light_logits"])
@pytest.mark.parametrize("delta", [-1, 1])
def test_logits_columns_differ_from_classes(capsys, cache, name, delta):
    arr = read(cache, name)
    C = arr.shape[1]
    new = arr[:, : C + delta] if delta < 0 else np.concatenate([arr, arr[:, :1]], axis=1)
    replace_dataset(cache, name, new)
    expect(capsys, cache, f"/{name}", f"has {C + delta} columns, expected one per class ({C})")


@pytest.mark.parametrize("name", ["videos/length", "videos/label", "videos/split", "videos/id"])
def test_per_video_entry_count_mismatch(capsys, cache, name):
    arr = read(cache, name)
    with h5py.File(cache, "r") as f:
        dtype = f[name].dtype
    replace_dataset(
        cache, name, arr[:-1].astype(object) if arr.dtype == object else arr[:-1], dtype
    )
    n = len(arr)
    expect(capsys, cache, f"/{name}", f"has {n - 1} entries, expected {n}")


def test_too_few_classes(capsys, cache):
    replace_dataset(cache, "classes/name", np.array(["only"], dtype=object), STR_DTYPE)
    expect(capsys, cache, "/classes/name", "1 class(es); need at least 2")


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "name", ["frames/features", "frames/light", "frames/logits", "frames/light_logits"]
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_frame_arrays(capsys, cache, name, bad):
    row = len(read(cache, name)) - 7
    edit_dataset(cache, name, lambda a: a.__setitem__((row, 1), bad))
    expect(capsys, cache, f"/{name}", f"row {row} holds NaN or inf")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_relevance(capsys, cache, bad):
    edit_dataset(cache, "frames/relevance", lambda a: a.__setitem__(11, bad))
    expect(capsys, cache, "/frames/relevance", "row 11 holds NaN or inf")


def test_zero_length_video(capsys, cache):
    vid = read(cache, "videos/id")[3]
    edit_dataset(cache, "videos/length", lambda a: a.__setitem__(3, 0))
    expect(capsys, cache, "/videos/length", f"video 3 ({vid!r}) has length 0", "at least one frame")


def test_negative_length_video(capsys, cache):
    edit_dataset(cache, "videos/length", lambda a: a.__setitem__(0, -4))
    expect(capsys, cache, "/videos/length", "video 0", "has length -4")


def test_overlapping_offsets(capsys, cache):
    offset = read(cache, "videos/offset")
    length = read(cache, "videos/length")
    vid = read(cache, "videos/id")[5]
    edit_dataset(cache, "videos/offset", lambda a: a.__setitem__(5, a[5] - 1))
    expect(
        capsys,
        cache,
        "/videos/offset",
        f"video 5 ({vid!r}) starts at row {offset[5] - 1} and overlaps video 4 "
        f"(rows {offset[4]}:{offset[4] + length[4]})",
        "back to back",
    )


def test_gap_between_videos(capsys, cache):
    offset = read(cache, "videos/offset")
    edit_dataset(cache, "videos/offset", lambda a: a.__setitem__(5, a[5] + 2))
    expect(
        capsys,
        cache,
        "/videos/offset",
        "video 5 (",
        f"starts at row {offset[5] + 2} and leaves a gap after video 4",
    )


def test_first_offset_not_zero(capsys, cache):
    edit_dataset(cache, "videos/offset", lambda a: a.__iadd__(1))
    expect(capsys, cache, "/videos/offset", "offset[0] is 1, expected 0")


def test_offsets_do_not_cover_all_rows(capsys, cache):
    length = read(cache, "videos/length")
    last = len(length) - 1
    assert length[last] > 1
    F = int(length.sum())
    edit_dataset(cache, "videos/length", lambda a: a.__setitem__(last, a[last] - 1))
    expect(capsys, cache, "/videos/length", f"videos cover {F - 1} rows", f"has {F}")


def test_offsets_run_past_the_last_row(capsys, cache):
    length = read(cache, "videos/length")
    F = int(length.sum())
    edit_dataset(cache, "videos/length", lambda a: a.__setitem__(len(a) - 1, a[-1] + 3))
    expect(capsys, cache, "/videos/length", f"videos cover {F + 3} rows", f"has {F}")


@pytest.mark.parametrize("bad", ["negative", "num_classes", "large"])
def test_label_out_of_range(capsys, cache, bad):
    C = len(read(cache, "classes/name"))
    value = {"negative": -1, "num_classes": C, "large": 10_000}[bad]
    vid = read(cache, "videos/id")[2]
    edit_dataset(cache, "videos/label", lambda a: a.__setitem__(2, value))
    expect(
        capsys,
        cache,
        "/videos/label",
        f"video 2 ({vid!r}) has label {value}, outside [0, {C}) for {C} classes",
    )


@pytest.mark.parametrize("value", [3, 255])
def test_split_code_out_of_range(capsys, cache, value):
    edit_dataset(cache, "videos/split", lambda a: a.__setitem__(4, value))
    expect(capsys, cache, "/videos/split", f"video 4 has split {value}", "0 train, 1 val, 2 test")


def test_duplicate_video_ids(capsys, cache):
    ids = read(cache, "videos/id").astype(object)
    ids[7] = ids[1]
    replace_dataset(cache, "videos/id", ids, STR_DTYPE)
    expect(capsys, cache, "/videos/id", f"id {ids[1]!r} appears twice")


@pytest.mark.parametrize("value", [1.5, -0.25])
def test_relevance_outside_unit_interval(capsys, cache, value):
    edit_dataset(cache, "frames/relevance", lambda a: a.__setitem__(9, value))
    expect(capsys, cache, "/frames/relevance", "values outside [0, 1]")


def test_relevance_in_a_non_synthetic_cache(capsys, cache):
    set_attr(cache, "synthetic", False)
    expect(
        capsys,
        cache,
        "/frames/relevance",
        "synthetic=False",
        "ground-truth relevance exists for synthetic data only",
    )


def test_non_synthetic_cache_without_relevance_is_valid(capsys, cache):
    set_attr(cache, "synthetic", False)
    with h5py.File(cache, "r+") as f:
        del f["frames/relevance"]
    assert main(["validate", str(cache)]) == 0
    capsys.readouterr()
    summary = validate(cache)
    assert not summary.has_relevance and summary.attrs["synthetic"] is False


@pytest.mark.parametrize("name", ["videos/id", "classes/name"])
def test_strings_that_are_not_utf8(capsys, cache, name):
    """Bytes that do not decode as UTF-8 are a bad file like any other: one line, exit 2."""
    strings = read(cache, name)
    raw = np.array([s.encode() for s in strings], dtype=object)
    raw[1] = b"\xff\xfe"
    with h5py.File(cache, "r+") as f:
        del f[name]
        f.create_dataset(name, shape=raw.shape, dtype=STR_DTYPE)
        f[name][...] = raw
    line = validate_fails(capsys, cache)
    assert f"{cache}: /{name}: " in line
    assert re.search(r"utf-?8", line, re.IGNORECASE), line


# ----------------------------------------------------------------------------- the loader


def test_feature_store_refuses_a_bad_file_with_the_same_error(cache):
    edit_dataset(cache, "videos/split", lambda a: a.__setitem__(0, 7))
    with pytest.raises(CacheError) as info:
        FeatureStore(cache)
    assert info.value.where == "/videos/split"
    assert str(info.value).startswith(f"{cache}: /videos/split: video 0 has split 7")


def test_feature_store_refuses_unfitted_cache_unless_asked(tiny_cache_unfitted):
    with pytest.raises(CacheError, match="fit-recognizer"):
        FeatureStore(tiny_cache_unfitted)
    store = FeatureStore(tiny_cache_unfitted, require_recognizer=False)
    with pytest.raises(KeyError):
        store.array("logits")


def test_cache_error_is_a_value_error_with_parts(tmp_path):
    err = CacheError(tmp_path / "x.h5", "/videos/id", "bad")
    assert isinstance(err, ValueError)
    assert str(err) == f"{tmp_path / 'x.h5'}: /videos/id: bad"
    assert (err.file, err.where, err.problem) == (str(tmp_path / "x.h5"), "/videos/id", "bad")
