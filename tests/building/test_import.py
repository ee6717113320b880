"""Bring your own features: ``import_features`` and ``adaframe import`` round trips and errors.

Every test makes its own tiny data (4 classes, 20 videos, D=16) in ``tmp_path``. The two CLI
imports (``.npy`` with a split column and no light folder; ``.pth`` with a light folder and no
split column) are made once per module and shared; the bad-input tests fail before any fit.
"""

from __future__ import annotations

import csv
import weakref
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch

from adaframe_env import FeatureStore, import_features, validate
from adaframe_env.build.importer import (
    FeatureImportError,
    VideoFeatures,
    carve_splits,
    light_projection,
)
from adaframe_env.build.recognizer import assign_folds, fit_and_attach, fit_heads_out_of_core
from adaframe_env.cli import main
from adaframe_env.data.schema import SPLITS

pytestmark = pytest.mark.usefixtures("single_torch_thread")

C, N, D, DL = 4, 20, 16, 8


def assert_float16_of_one_product(got, want, x, w, bias=None):
    """``got`` and ``want`` are the float16 roundings of one float32 product ``x @ w (+ bias)``
    computed along two BLAS paths (another blocking, another order of the sums): which path
    runs decides the last float32 bits, and so, near a float16 rounding boundary, one float16
    step. The bound follows from the computation, not from a tuned constant:

    - each float32 result is within ``gamma_n * (|x| @ |w| + |bias|)`` of the exact value
      (n = the terms summed, the bias one more; ``gamma_n = n u / (1 - n u)``, u = 2**-24;
      Higham, "Accuracy and Stability of Numerical Algorithms", 3.1), so the two float32
      results are within twice that of each other;
    - rounding a float32 value to float16 moves it by at most half a float16 step of the
      rounded value (``np.spacing``; at a power of two the step below is half the one above).

    So ``|got - want| <= (ulp16(got) + ulp16(want)) / 2 + 2 gamma_n (|x| @ |w| + |bias|)``:
    about one float16 ulp of the value, the float32 term being ~1e-5 of it here.
    """
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.float16 and got.shape == want.shape == (
        *np.shape(x)[:-1], np.shape(w)[-1])  # fmt: skip
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n = x64.shape[-1] + (bias is not None)
    u = 2.0**-24
    magnitude = np.abs(x64) @ np.abs(w64) + (0.0 if bias is None else np.abs(bias))
    ulps = np.abs(np.spacing(got)).astype(np.float64) + np.abs(np.spacing(want))
    bound = ulps / 2 + 2 * n * u / (1 - n * u) * magnitude
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = ~(diff <= bound)  # NaN fails too
    assert not bad.any(), (
        f"{int(bad.sum())} of {bad.size} elements differ by more than one float16 ulp (the "
        f"rounding of the product), e.g. {got[bad][:3]} vs {want[bad][:3]}"
    )


def test_float16_products_compare_within_their_rounding():
    """The comparison of the derived light view (and of logits) accepts what two BLAS paths
    can produce (the one-step disagreement seen in CI: -1.7783 vs -1.7773, which exact
    equality rejected) and nothing more."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 64)).astype(np.float16).astype(np.float32)
    w = light_projection(64, 32, seed=0)
    want = (x @ w).astype(np.float16)  # one BLAS call on the whole matrix
    rows = np.concatenate([x[i : i + 7] @ w for i in range(0, len(x), 7)])  # other shapes
    assert_float16_of_one_product(rows.astype(np.float16), want, x, w)
    # the CI case: two float16 neighbours
    a, b = np.float16(-1.7773), np.nextafter(np.float16(-1.7773), np.float16(-2))
    assert b == np.float16(-1.7783)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(np.array([b]), np.array([a]))
    one = np.ones((1, 1), np.float32)  # the product 1 x 1: a float32 term of 1e-7
    assert_float16_of_one_product(np.array([[b]]), np.array([[a]]), one, one)
    # two steps apart is beyond any rounding of the product
    c = np.nextafter(b, np.float16(-2))
    with pytest.raises(AssertionError, match="more than one float16 ulp"):
        assert_float16_of_one_product(np.array([[c]]), np.array([[a]]), one, one)


def make_videos(seed: int = 0, n: int = N, d: int = D) -> list[dict]:
    """Videos whose class shows in every frame (so the recognizer has something to learn)."""
    rng = np.random.default_rng(seed)
    means = 3 * rng.standard_normal((C, d))
    splits = ["train", "train", "val", "test", "train"]
    videos = []
    for i in range(n):
        c, t = i % C, int(rng.integers(3, 25))
        heavy = (means[c] + rng.standard_normal((t, d))).astype(np.float32)
        light = (heavy[:, :DL] + rng.standard_normal((t, DL))).astype(np.float32)
        videos.append(
            {"id": f"vid{i:02d}", "label": f"class_{c}", "split": splits[(i // C) % 5],
             "heavy": heavy, "light": light}
        )  # fmt: skip
    return videos


def save(path: Path, x: np.ndarray, fmt: str) -> None:
    if fmt == "npy":
        np.save(path.with_suffix(".npy"), x)
    else:
        torch.save({"fea": torch.from_numpy(x)}, path.with_suffix(".pth"))


def write_folder(root: Path, videos, fmt="npy", light=False, split_column=True, names=None):
    """Feature folder(s) and a labels CSV for ``videos``; returns (features, light, csv)."""
    feat, light_dir = root / "features", root / "light"
    feat.mkdir(parents=True)
    if light:
        light_dir.mkdir()
    rows = [["video", "label"] + (["split"] if split_column else [])]
    for i, v in enumerate(videos):
        save(feat / v["id"], v["heavy"], fmt)
        if light:
            save(light_dir / v["id"], v["light"], fmt)
        name = names(i, v) if names else v["id"]
        rows.append([name, v["label"]] + ([v["split"]] if split_column else []))
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return feat, (light_dir if light else None), labels


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main(["import", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_round_trip(path: Path, videos, light_given: bool) -> FeatureStore:
    validate(path)
    store = FeatureStore(path, lazy=True)  # contiguous datasets: servable from disk
    assert list(store.video_id) == [v["id"] for v in videos]
    assert list(store.class_names) == [f"class_{c}" for c in range(C)]
    for i, v in enumerate(videos):
        np.testing.assert_array_equal(store.video_frames("features", i), v["heavy"].astype("f2"))
        assert store.class_names[store.label[i]] == v["label"]
        if light_given:
            np.testing.assert_array_equal(store.video_frames("light", i), v["light"].astype("f2"))
    assert not store.synthetic and not store.has_relevance
    return store


@pytest.fixture(scope="module")
def npy_import(tmp_path_factory):
    """CLI import of .npy files with a split column, no light folder, one unlabelled file."""
    root = tmp_path_factory.mktemp("npy")
    videos = make_videos(0)
    feat, _, labels = write_folder(root, videos, "npy")
    np.save(feat / "stray.npy", np.zeros((3, D), np.float32))
    out = root / "out" / "mine.h5"
    rc = main(["import", str(feat), "--labels", str(labels), "--out", str(out), "--no-progress"])
    assert rc == 0
    return out, videos


@pytest.fixture(scope="module")
def pth_import(tmp_path_factory):
    """CLI import of LiteEval-style .pth files with a light folder and no split column."""
    root = tmp_path_factory.mktemp("pth")
    videos = make_videos(1)
    # Some rows give the file name with its extension, some without.
    names = lambda i, v: v["id"] + (".pth" if i % 2 else "")  # noqa: E731
    feat, light, labels = write_folder(root, videos, "pth", light=True, split_column=False,
                                       names=names)  # fmt: skip
    out = root / "imported.h5"
    args = ["import", feat, "--labels", labels, "--out", out, "--light-dir", light,
            "--test-fraction", "0.25", "--seed", "3", "--dataset", "mine", "--backbone", "r2plus1d",
            "--gflops", "20", "--light-gflops", "0.5", "--no-progress"]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    return out, videos


# ----------------------------------------------------------------------------- round trips


@pytest.mark.slow
def test_npy_folder_with_splits_and_derived_light(npy_import):
    out, videos = npy_import
    store = assert_round_trip(out, videos, light_given=False)
    # Splits come from the CSV; val was given, so nothing is carved.
    assert [int(s) for s in store.split] == [SPLITS[v["split"]] for v in videos]
    a = store.attrs
    assert a["import_val_from_train"] == 0 and a["import_test_from_train"] == 0
    assert a["dataset"] == "mine" and a["backbone"] == "resnet101"
    assert a["gflops_per_frame"] == pytest.approx(7.82)
    # The derived light view: the stored heavy features through the seeded projection, at the
    # heavy backbone's cost plus the projection's.
    assert store.light_dim == min(128, D)
    p = light_projection(D, store.light_dim, seed=0)
    x = store.array("features").astype(np.float32)
    # the importer projects video by video, this one matrix: another BLAS path, so the same
    # float16 values up to one step where the float32 result lies at a rounding boundary
    assert_float16_of_one_product(store.array("light"), (x @ p).astype(np.float16), x, p)
    assert (
        a["light_backbone"] == f"resnet101+randproj{D}" and "light_projection" in a["light_derived"]
    )
    assert a["light_gflops_per_frame"] == pytest.approx(7.82 + 2 * D * D / 1e9)
    assert store.memory_gflops == pytest.approx(16 * a["light_gflops_per_frame"])
    # The recognizer is fitted, cross-fitted, and learns the easy classes.
    assert a["recognizer_folds"] == 5 and a["recognizer_eval_split"] == "test"
    assert a["recognizer_avgpool_top1"] > 0.9
    # The unlabelled file was left out, and nothing was left beside the output.
    assert "stray" not in set(store.video_id)
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine.h5"]


@pytest.mark.slow
def test_streamed_fit_matches_the_in_ram_fit(npy_import):
    """On a cache smaller than ``fit_rows`` the out-of-core heads are the in-RAM fit's heads
    (same folds, seeds and rows), and the logits agree up to float16 rounding."""
    out, _ = npy_import
    with h5py.File(out, "r") as f:
        stored = {name: f[name][()] for name in ("frames/logits", "frames/light_logits")}
        stored.update({f"recognizer/{k}": v[()] for k, v in f["recognizer"].items()})
        arrays = {name: f[name][()] for name in ("frames/features", "frames/light",
                  "videos/offset", "videos/length", "videos/label", "videos/split")}  # fmt: skip
        arrays["classes/name"] = f["classes/name"].asstr()[:]
    fit_and_attach(arrays, seed=0, progress=False)
    for name, value in stored.items():
        if name.startswith("recognizer/"):
            np.testing.assert_array_equal(value, arrays[name], err_msg=name)
        else:
            np.testing.assert_allclose(value, arrays[name], rtol=1e-3, atol=1e-3, err_msg=name)


@pytest.mark.slow
def test_cli_prints_summary_warns_about_unlabelled_and_checks_splits_first(tmp_path, capsys):
    videos = make_videos(0)[:8]  # all train
    feat, _, labels = write_folder(tmp_path, videos, "npy")
    np.save(feat / "extra.npy", np.zeros((3, D), np.float32))
    (feat / "vid07.npy").write_bytes(b"")  # never read: the split check comes first
    rc, out, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5",
                       "--val-fraction", "0")  # fmt: skip
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"adaframe import: {labels}: no val or test videos"), err
    np.save(feat / "vid07.npy", videos[7]["heavy"])
    rc, out, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5")
    assert rc == 0, err
    assert err.count("\n") == 1 and "warning: 1 feature file(s)" in err and "extra.npy" in err
    assert "imported 8 videos" in out and "val 1 (carved from train, seed 0)" in out
    assert "derived from the heavy features" in out and "7.82 GFLOPs/frame" in out
    assert "evaluated on the val split" in out and "no test videos" in out


@pytest.mark.slow
def test_pth_folder_with_light_and_without_split_column(pth_import):
    out, videos = pth_import
    store = assert_round_trip(out, videos, light_given=True)
    a = store.attrs
    assert a["dataset"] == "mine" and a["backbone"] == "r2plus1d" and a["gflops_per_frame"] == 20
    assert a["light_backbone"] == "mobilenetv2-112" and a["light_gflops_per_frame"] == 0.5
    assert "light_derived" not in a
    # No split column: test (25%) then val (10%) carved from train, stratified and seeded.
    assert a["import_test_from_train"] == 0.25 and a["import_val_from_train"] == 0.1
    assert a["import_seed"] == 3
    label = store.label
    want, carved = carve_splits(label, np.zeros(N, np.uint8), 0.1, 0.25, seed=3)
    np.testing.assert_array_equal(store.split, want)
    assert carved == {"train": 0, "val": 2, "test": 5}
    for c in range(C):  # every class gives its share of test
        assert (store.split[label == c] == SPLITS["test"]).sum() in (1, 2)


@pytest.mark.slow
def test_in_memory_generator_streams_one_video_at_a_time(tmp_path):
    videos = make_videos(2)
    refs: list[weakref.ref] = []

    def stream():
        for i, v in enumerate(videos):
            # Only the previous video (the importer's loop variable) may still be alive.
            held = [j // 2 for j, r in enumerate(refs[:-2]) if r() is not None]
            assert not held, f"at video {i}, video {held[0]} is still held"
            heavy, light = v["heavy"].copy(), v["light"].copy()
            refs.extend([weakref.ref(heavy), weakref.ref(light)])
            features = heavy if i % 2 else (lambda h=heavy: h)  # arrays or loaders
            yield VideoFeatures(v["id"], C - 1 - int(v["label"][-1]), features, v["split"], light)
            del heavy, light, features

    names = [f"class_{c}" for c in reversed(range(C))]  # integer labels index these names
    report = import_features(tmp_path / "mem.h5", stream(), class_names=names, folds=2,
                             fit_rows=40, light_gflops_per_frame=0.1)  # fmt: skip
    assert report.num_videos == N and not report.light_derived and report.light_dim == DL
    assert report.num_frames == sum(len(v["heavy"]) for v in videos)
    with h5py.File(tmp_path / "mem.h5", "r") as f:
        assert list(f["classes/name"].asstr()[:]) == names
    store = FeatureStore(tmp_path / "mem.h5")
    for i, v in enumerate(videos):
        np.testing.assert_array_equal(store.video_frames("features", i), v["heavy"].astype("f2"))
        np.testing.assert_array_equal(store.video_frames("light", i), v["light"].astype("f2"))
        assert store.class_names[store.label[i]] == v["label"]
    assert store.attrs["recognizer_folds"] == 2


def test_recognizer_fit_reads_at_most_fit_rows_frames_per_head():
    """What bounds the fit's RAM on a cache larger than RAM: each head reads a sample."""

    class Recording:
        def __init__(self, a):
            self.a, self.reads = a, []

        def __getitem__(self, rows):
            self.reads.append(len(rows))
            return self.a[rows]

    videos = make_videos(0)
    length = np.array([len(v["heavy"]) for v in videos])
    label = np.arange(N) % C
    split = np.array([SPLITS[v["split"]] for v in videos], np.uint8)
    fold = assign_folds(label, split, 2, seed=0)
    x = Recording(np.concatenate([v["heavy"] for v in videos]).astype(np.float16))
    heads = fit_heads_out_of_core(x, length, label, fold, C, seed=0, max_rows=30)
    assert x.reads == [30, 30, 30] and heads.fold_weight.shape == (2, C, D)
    # Each train video is scored by the head of the other fold.
    rows = np.repeat(np.arange(N), length)
    logits = heads.logits(x.a, fold[rows])
    k = fold[rows] == 0
    xk, wk, bk = x.a[k].astype(np.float32), heads.fold_weight[0].T, heads.fold_bias[0]
    assert_float16_of_one_product(logits[k], (xk @ wk + bk).astype("f2"), xk, wk, bk)


def test_carve_splits_is_stratified_seeded_and_keeps_a_train_video_per_class():
    label = np.repeat(np.arange(5), 10)
    label = np.concatenate([label, [5]])  # a class with a single train video
    split = np.zeros(len(label), np.uint8)
    a, carved = carve_splits(label, split, 0.1, seed=0)
    b, _ = carve_splits(label, split, 0.1, seed=0)
    c, _ = carve_splits(label, split, 0.1, seed=1)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert carved["val"] == 5 and carved["test"] == 0
    assert [int((a[label == k] == SPLITS["val"]).sum()) for k in range(6)] == [1] * 5 + [0]
    given = split.copy()
    given[0] = SPLITS["val"]
    same, carved = carve_splits(label, given, 0.1)  # a val split given: nothing carved
    np.testing.assert_array_equal(same, given)
    assert carved["val"] == 0
    with pytest.raises(FeatureImportError, match="no val or test videos"):
        carve_splits(label, split, 0.0)
    with pytest.raises(FeatureImportError, match="1 train video"):
        carve_splits(np.array([0, 1]), np.array([0, 2]), 0.0)


# ----------------------------------------------------------------------------- consumers


@pytest.mark.slow
def test_gym_env_runs_on_an_imported_cache(npy_import):
    out, _ = npy_import
    env = gym.make("AdaFrame-v0", data=str(out), split="test", budget=3)
    obs, info = env.reset(seed=0)
    assert obs["frame"].shape == (D,) and obs["memory"].shape == (16, D)
    assert not info["synthetic"]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
        assert np.isfinite(reward)
        done = terminated or truncated
    env.close()


@pytest.mark.slow
def test_benchmark_harness_runs_on_an_imported_cache(npy_import, tmp_path, capsys):
    out, _ = npy_import
    from adaframe_env.cli import run as run_py

    rc = run_py.main(["--agent", "avgpool-u5", "--dataset", str(out), "--out", str(tmp_path),
                      "--checkpoints", str(tmp_path / "ckpt"), "--no-plot", "--no-progress"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert "avgpool-u5" in stdout and (tmp_path / "mine").is_dir()


# ----------------------------------------------------------------------------- bad input


def _bad_inputs(root: Path):
    """name -> (break the folder, expected words in the one-line error)."""
    return {
        "missing video": (lambda f, labels: (f / "vid03.npy").unlink(),
                          ["labels.csv:5", "vid03", "features"]),
        "ragged dimension": (lambda f, labels: np.save(f / "vid04.npy", np.ones((5, 32), "f4")),
                             ["vid04.npy", "32 dims", "vid00.npy has 16"]),
        "unknown split": (lambda f, labels: _edit_csv(labels, 3, split="dev"),
                          ["labels.csv:4", "unknown split 'dev'"]),
        "nan": (lambda f, labels: _poke(f / "vid05.npy", np.nan), ["vid05.npy", "frame 1", "NaN"]),
        "inf": (lambda f, labels: _poke(f / "vid05.npy", np.inf), ["vid05.npy", "NaN or inf"]),
        "beyond float16": (lambda f, labels: _poke(f / "vid05.npy", 1e6),
                           ["vid05.npy", "float16"]),
        "empty file": (lambda f, labels: (f / "vid06.npy").write_bytes(b""),
                       ["vid06.npy", "empty file"]),
        "no frames": (lambda f, labels: np.save(f / "vid06.npy", np.zeros((0, D), "f4")),
                      ["vid06.npy", "0 frames"]),
        "not a frame matrix": (lambda f, labels: np.save(f / "vid06.npy", np.zeros(D, "f4")),
                               ["vid06.npy", "expected (T, D)"]),
        "corrupt file": (lambda f, labels: (f / "vid06.npy").write_bytes(b"garbage"),
                         ["vid06.npy", "not a readable .npy"]),
        "duplicate row": (lambda f, labels: _edit_csv(labels, 2, video="vid00"),
                          ["labels.csv:3", "already on line 2"]),
        "bad header": (lambda f, labels: labels.write_text("name,class\nvid00,a\n"),
                       ["labels.csv:1", "video,label[,split]"]),
        "unknown class": (lambda f, labels: _edit_csv(labels, 1, label="class_9"),
                          ["labels.csv:2", "'class_9'", "classes.txt"]),
    }  # fmt: skip


BAD = list(_bad_inputs(Path()))


def _edit_csv(labels: Path, row: int, **cells) -> None:
    rows = list(csv.reader(labels.open()))
    header = rows[0]
    for key, value in cells.items():
        rows[row][header.index(key)] = value
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _poke(path: Path, value: float) -> None:
    x = np.load(path)
    x[1, 2] = value
    np.save(path, x)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_naming_the_file(case, tmp_path, capsys):
    feat, _, labels = write_folder(tmp_path, make_videos(0), "npy")
    classes = tmp_path / "classes.txt"
    classes.write_text("".join(f"class_{c}\n" for c in range(C)))
    breaks, words = _bad_inputs(tmp_path)[case]
    breaks(feat, labels)
    out = tmp_path / "out" / "x.h5"
    rc, stdout, err = cli(capsys, feat, "--labels", labels, "--out", out, "--classes", classes)
    assert rc == 2, (stdout, err)
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("adaframe import: "), err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], leftovers  # neither a partial cache nor the staging scratch


def test_light_folder_errors_name_the_light_file(tmp_path, capsys):
    videos = make_videos(0)
    feat, light, labels = write_folder(tmp_path, videos, "npy", light=True)
    np.save(light / "vid02.npy", np.ones((len(videos[2]["heavy"]) + 1, DL), "f4"))
    rc, _, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5",
                     "--light-dir", light)  # fmt: skip
    assert rc == 2 and "light/vid02.npy" in err and "frames" in err, err
    (light / "vid02.npy").unlink()
    rc, _, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5",
                     "--light-dir", light)  # fmt: skip
    assert rc == 2 and "labels.csv:4" in err and str(light) in err, err


def test_pth_errors(tmp_path, capsys):
    videos = make_videos(0)
    feat, _, labels = write_folder(tmp_path, videos, "pth")
    torch.save({"features": torch.zeros(3, D)}, feat / "vid01.pth")
    rc, _, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5")
    assert rc == 2 and "vid01.pth" in err and "'fea'" in err, err
    np.save(feat / "vid01.npy", np.zeros((3, D), np.float32))  # both vid01.npy and vid01.pth
    rc, _, err = cli(capsys, feat, "--labels", labels, "--out", tmp_path / "x.h5")
    assert rc == 2 and "vid01.npy and vid01.pth" in err, err


@pytest.mark.parametrize(
    "change, words",
    [
        ({"split": "dev"}, ["video 'vid03'", "unknown split 'dev'"]),
        ({"light": np.zeros((4, DL))}, ["video 'vid03'", "has light features but video 'vid00'"]),
        ({"label": "nope"}, ["video 'vid03'", "class 'nope'"]),
        ({"label": 7}, ["video 'vid03'", "label 7 is outside [0, 4)"]),
        ({"video_id": "vid00"}, ["video 'vid00'", "appears twice"]),
    ],
)
def test_in_memory_errors_name_the_video(change, words, tmp_path):
    def stream():
        for i, v in enumerate(make_videos(0)):
            kw = {"video_id": v["id"], "label": v["label"], "features": v["heavy"],
                  "split": v["split"]}  # fmt: skip
            yield VideoFeatures(**{**kw, **(change if i == 3 else {})})

    with pytest.raises(FeatureImportError) as e:
        import_features(tmp_path / "x.h5", stream(), class_names=[f"class_{c}" for c in range(C)])
    for word in words:
        assert word in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_info_says_what_the_import_chose(npy_import, pth_import, capsys):
    out, _ = npy_import
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "light view        derived: frames/features @ P" in text  # no light folder given
    out, _ = pth_import
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "light view" not in text  # a light folder was given
    assert "carved splits     val 10% of train, test 25% of train (seed 3)" in text
