"""The ``adaframe`` command: info, validate, fit-recognizer, and errors without tracebacks.

Most calls go through ``adaframe_env.cli.main`` in-process; a few go through a real
``python -m adaframe_env.cli`` subprocess to prove that no traceback reaches the user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from adaframe_env.cli import main
from adaframe_env.data.schema import SCHEMA_VERSION, validate
from adaframe_env.data.store import FeatureStore

pytestmark = pytest.mark.usefixtures("single_torch_thread")

CLI = [sys.executable, "-m", "adaframe_env.cli"]


def subprocess_env() -> dict[str, str]:
    """The environment at call time (conftest points the per-user cache at a test folder)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, out: str, err: str, command: str, path) -> str:
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    line = err.rstrip("\n")
    assert line.startswith(f"adaframe {command}: {path}"), line
    return line


def attrs_of(path) -> dict:
    with h5py.File(path, "r") as f:
        return dict(f.attrs)


# ----------------------------------------------------------------------------- info


def test_info_summarizes_a_fitted_cache(capsys, tiny_cache):
    rc, out, err = run(capsys, "info", tiny_cache)
    assert rc == 0 and err == ""
    with h5py.File(tiny_cache, "r") as f:
        split = f["videos/split"][:]
        length = f["videos/length"][:]
        C = len(f["classes/name"])
        D, Dl = f["frames/features"].shape[1], f["frames/light"].shape[1]
        a = dict(f.attrs)
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert str(tiny_cache) in lines["file"]
    assert "tiny-proxy" in lines["dataset"] and f"schema v{SCHEMA_VERSION}" in lines["dataset"]
    assert "SYNTHETIC" in lines["dataset"]
    counts = [(split == s).sum() for s in (0, 1, 2)]
    assert lines["videos"].split(None, 1)[1] == (
        f"{len(split)}: train {counts[0]}, val {counts[1]}, test {counts[2]}"
    )
    assert lines["classes"].split() == ["classes", str(C)]
    assert f"{length.sum()} at 1 fps" in lines["frames"]
    assert f"min {length.min()}, max {length.max()}" in lines["frames"]
    heavy = lines["heavy"]
    assert a["backbone"] in heavy and f"dim {D}" in heavy and "7.82 GFLOPs/frame" in heavy
    light = lines["light"]
    assert a["light_backbone"] in light and f"dim {Dl}" in light and "1.32 GFLOPs" in light
    assert "stored" in lines["relevance"]
    rec = lines["recognizer"]
    assert "test split" in rec
    assert f"{a['recognizer_frame_top1']:.3f}" in rec
    assert f"{a['recognizer_avgpool_top1']:.3f}" in rec
    assert f"mAP {a['recognizer_avgpool_map']:.3f}" in rec


def test_info_on_unfitted_cache_says_how_to_fit(capsys, tiny_cache_unfitted):
    rc, out, err = run(capsys, "info", tiny_cache_unfitted)
    assert rc == 0 and err == ""
    assert f"NOT FITTED: run `adaframe fit-recognizer {tiny_cache_unfitted}`" in out


def test_info_on_fitted_cache_without_recorded_accuracy(capsys, make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        for key in [k for k in f.attrs if k.startswith("recognizer_")]:
            del f.attrs[key]
    rc, out, _ = run(capsys, "info", path)
    assert rc == 0
    assert "fitted (no accuracy recorded)" in out


def test_info_on_real_features_cache(capsys, make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        f.attrs["synthetic"] = False
        del f["frames/relevance"]
    rc, out, _ = run(capsys, "info", path)
    assert rc == 0
    assert "real features" in out and "SYNTHETIC" not in out
    assert "relevance         none" in out


@pytest.mark.parametrize("command", ["info", "validate", "fit-recognizer"])
def test_missing_file_is_one_line(capsys, tmp_path, command):
    path = tmp_path / "missing.h5"
    line = assert_one_line_error(*run(capsys, command, path), command, path)
    assert line == f"adaframe {command}: {path}: /: no such file"


def test_info_on_broken_file_is_one_line(capsys, make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        f["videos/label"][0] = 99
    line = assert_one_line_error(*run(capsys, "info", path), "info", path)
    assert f"{path}: /videos/label: video 0" in line and "has label 99" in line


def test_validate_valid_file(capsys, tiny_cache):
    rc, out, err = run(capsys, "validate", tiny_cache)
    assert rc == 0 and err == ""
    assert out.startswith(f"{tiny_cache}: valid schema v{SCHEMA_VERSION} cache (")


def test_synth_into_a_directory_is_refused(capsys, tmp_path):
    rc, out, err = run(capsys, "synth", "--preset", "tiny", "--out", tmp_path)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--out {tmp_path} is a directory" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_exit_2_via_argparse(capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "--preset", "nope", "--out", "x.h5"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ----------------------------------------------------------------------------- fit-recognizer


@pytest.fixture
def refitted(capsys, make_cache_copy, tiny_cache_unfitted):
    """An unfitted cache fitted in place by ``adaframe fit-recognizer``; (path, rc, stdout)."""
    path = make_cache_copy("fit.h5", source=tiny_cache_unfitted)
    rc, out, err = run(capsys, "fit-recognizer", path, "--no-progress")
    assert err == ""
    return path, rc, out


@pytest.mark.slow
def test_fit_recognizer_reports_accuracy(refitted):
    path, rc, out = refitted
    assert rc == 0
    assert f"fitted the recognizer heads of {path}" in out
    assert "evaluated on the test split" in out
    for head in ("heavy head", "light head"):
        line = next(line for line in out.splitlines() if line.startswith(head))
        assert "per-frame top-1" in line and "AvgPooling over all frames top-1" in line
        assert "mAP" in line
    a = attrs_of(path)
    for key in ("frame_top1", "avgpool_top1", "avgpool_map", "light_frame_top1"):
        assert 0.0 <= a[f"recognizer_{key}"] <= 1.0
        assert f"{a[f'recognizer_{key}']:.3f}" in out
    # Far above chance (6 classes: top-1 0.17), well below what tiny seeds 0-2 give (heavy
    # per-frame top-1 0.42-0.66, AvgPooling top-1 0.50-0.75 / mAP 0.64-0.84, light per-frame
    # 0.25-0.45): a generator or a head that produced noise fails here.
    assert a["recognizer_frame_top1"] > 0.3
    assert a["recognizer_avgpool_top1"] > 0.4 and a["recognizer_avgpool_map"] > 0.5
    assert a["recognizer_light_frame_top1"] > 0.2
    assert a["recognizer_train_avgpool_top1"] > 0.4  # out-of-fold, and still far from chance
    split = a["recognizer_eval_split"]  # stored as fixed-length bytes (rewritten in place)
    assert (split.decode() if isinstance(split, bytes) else split) == "test"


@pytest.mark.slow
def test_fit_recognizer_writes_consistent_logits(refitted):
    """Val/test logits come from the full-train head, train logits from the head of the
    video's fold (cross-fitting, schema v2); all of them equal ``features @ W.T + b`` (schema
    v3: the store computes them, fit-recognizer stores only the heads of an unfitted cache)."""
    path, rc, _ = refitted
    assert rc == 0
    summary = validate(path)  # the fitted file passes every rule, logits required
    assert summary.has_recognizer
    with h5py.File(path, "r") as f:
        C = len(f["classes/name"])
        fold = f["recognizer/fold"][:]
        frame_fold = np.repeat(fold, f["videos/length"][:])
        for view, feats, logits in (
            ("heavy", "frames/features", "frames/logits"),
            ("light", "frames/light", "frames/light_logits"),
        ):
            x = f[feats][:].astype(np.float32)
            w, b = f[f"recognizer/{view}_weight"][:], f[f"recognizer/{view}_bias"][:]
            fw, fb = f[f"recognizer/{view}_fold_weight"][:], f[f"recognizer/{view}_fold_bias"][:]
            assert w.shape == (C, x.shape[1]) and b.shape == (C,)
            assert fw.shape == (fold.max() + 1, C, x.shape[1]) and fb.shape == (fold.max() + 1, C)
            assert w.dtype == b.dtype == fw.dtype == np.float32
            assert logits not in f  # v3: computed from the heads, which the store does
            stored = FeatureStore(path).array(logits.split("/")[1])[:]
            assert stored.dtype == np.float16 and stored.shape == (len(x), C)
            expected = x @ w.T + b
            for k in range(fold.max() + 1):
                rows = frame_fold == k
                expected[rows] = x[rows] @ fw[k].T + fb[k]
            np.testing.assert_allclose(stored.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
            # a fold head differs from the full head: the train logits are not in-sample ones
            train = frame_fold >= 0
            assert not np.allclose(stored[train], (x[train] @ w.T + b), atol=1e-2)


@pytest.mark.slow
def test_fit_recognizer_keeps_data_and_matches_synth(
    refitted, tiny_cache_computed, assert_same_cache
):
    """Fitting in place changes nothing but the recognizer: the result equals what
    ``adaframe synth`` writes with the heads fitted (same seed, same data)."""
    path, rc, _ = refitted
    assert rc == 0
    assert_same_cache(path, tiny_cache_computed)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.slow
def test_fit_recognizer_twice_does_not_grow_the_file(capsys, make_cache_copy):
    path = make_cache_copy()
    sizes = []
    for _ in range(2):
        rc, _, _ = run(capsys, "fit-recognizer", path, "--no-progress")
        assert rc == 0
        sizes.append(path.stat().st_size)
    validate(path)
    assert sizes[1] <= sizes[0], f"file grew from {sizes[0]} to {sizes[1]} bytes on a refit"


@pytest.mark.slow
def test_fit_recognizer_refit_is_deterministic(capsys, make_cache_copy, tiny_cache):
    path = make_cache_copy()
    assert run(capsys, "fit-recognizer", path, "--no-progress", "--seed", "0")[0] == 0
    with h5py.File(path, "r") as f, h5py.File(tiny_cache, "r") as g:
        for name in ("frames/logits", "frames/light_logits", "recognizer/heavy_weight"):
            assert np.array_equal(f[name][:], g[name][:]), name


def test_fit_recognizer_without_train_videos_is_one_line(
    capsys, make_cache_copy, tiny_cache_unfitted
):
    """A valid cache that cannot be fitted (no train split) is a user error, not a crash."""
    path = make_cache_copy("notrain.h5", source=tiny_cache_unfitted)
    with h5py.File(path, "r+") as f:
        split = f["videos/split"][:]
        split[split == 0] = 2
        f["videos/split"][...] = split
    before = path.read_bytes()
    line = assert_one_line_error(*run(capsys, "fit-recognizer", path), "fit-recognizer", path)
    assert "train" in line
    assert path.read_bytes() == before


def test_fit_recognizer_on_broken_file_is_one_line(capsys, make_cache_copy):
    path = make_cache_copy()
    with h5py.File(path, "r+") as f:
        del f["frames/light"]
    before = path.read_bytes()
    line = assert_one_line_error(*run(capsys, "fit-recognizer", path), "fit-recognizer", path)
    assert line.endswith(f"{path}: /frames/light: missing dataset")
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------- real processes


def _run_subprocesses(cmds: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            CLI + cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for cmd in cmds
    ]
    done = []
    for cmd, p in zip(cmds, procs, strict=True):
        out, err = p.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(cmd, p.returncode, out, err))
    return done


@pytest.mark.slow
def test_no_traceback_reaches_the_user_of_a_real_process(make_cache_copy, tmp_path):
    truncated = make_cache_copy("truncated.h5")
    os.truncate(truncated, truncated.stat().st_size // 2)
    bad_dtype = make_cache_copy("dtype.h5")
    with h5py.File(bad_dtype, "r+") as f:
        x = f["frames/features"][:]
        del f["frames/features"]
        f["frames/features"] = x.astype(np.float32)
    missing = tmp_path / "missing.h5"
    cases = [
        (["validate", str(truncated)], f"{truncated}: /: not a readable HDF5 file"),
        (["validate", str(bad_dtype)], f"{bad_dtype}: /frames/features: dtype float32"),
        (["info", str(missing)], f"{missing}: /: no such file"),
    ]
    results = _run_subprocesses([cmd for cmd, _ in cases])
    for (cmd, expected), r in zip(cases, results, strict=True):
        assert r.returncode == 2, (cmd, r.returncode, r.stderr)
        assert r.stdout == ""
        assert "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"adaframe {cmd[0]}: {expected}"), r.stderr


@pytest.mark.slow
def test_console_script_is_installed(tiny_cache):
    script = Path(sys.executable).parent / "adaframe"
    if not script.exists():
        pytest.skip("the adaframe console script is not installed next to this interpreter")
    r = subprocess.run(
        [str(script), "validate", str(tiny_cache)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert r.returncode == 0 and f"valid schema v{SCHEMA_VERSION} cache" in r.stdout
