"""Resumable extraction: videos -> per-video feature files -> a fitted cache.

:func:`extract` decodes every video of a labels CSV (:mod:`~adaframe_env.build.extract.decode`), runs
the heavy and the light backbone on its frames (:mod:`~adaframe_env.build.extract.backbones`), and
saves the result as one pair of files per video in a **work folder** beside ``--out``
(``FILE.h5`` -> ``FILE.extract/``):

```
FILE.extract/extract.json        the settings that fix the features (backbones, weights' sha256,
                                 sizes, fps, measured GFLOPs); a resume with other settings stops
FILE.extract/heavy/<video>.npy   (T, D) float16, the heavy backbone's features
FILE.extract/light/<video>.npy   (T, Dl) float16, the light backbone's, same T
FILE.extract/failed/<video>.txt  why a video was skipped (removed once it extracts)
FILE.extract/tmp/                files being written (a folder per writing process)
```

Then :func:`build_cache` hands the folder to :func:`~adaframe_env.build.importer.import_features`
(the ``adaframe import`` machinery: validation, carved splits, cross-fitted recognizer, atomic
write), in CSV order, with the measured GFLOPs and the settings as attributes.

**Resume.** Each file is written under ``tmp/``, fsynced and renamed into place (light first,
heavy last), so a video is finished exactly when both files exist, and a kill at any moment
loses only the videos being decoded (one per decoding worker). The same command skips finished
videos, retries failed ones (the file may have been replaced), and rebuilds the cache only if
something changed: the cache records a fingerprint of its inputs (``extract_fingerprint``: the
settings, the import options, the videos with their labels and splits, the failures), and a
cache that already holds the same fingerprint is left alone. The cache itself is written
atomically (never half-written under its name). ``tmp/`` folders of dead processes on this host
are swept at the start.

**Failures.** A video that fails to decode (or whose file is missing, with ``skip_missing``) is
reported, recorded under ``failed/`` and left out of the cache; the list is printed at the end
and stored in the cache attribute ``extract_failed`` (JSON: id -> reason).

**Sharding** (:mod:`~adaframe_env.build.extract.shard`): under ``torchrun`` each rank extracts its
share of the videos into the same folder, and rank 0 builds the cache after a barrier.

Features are stored in float16 (the cache's dtype), so the folder is as large as the cache's
feature arrays: ``frames x (D + Dl) x 2`` bytes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from adaframe_env.data.atomic import _alive, fsync_path
from adaframe_env.build.feature_files import class_names, load_features, read_classes, read_labels
from adaframe_env.build.importer import (
    FeatureImportError,
    ImportReport,
    VideoFeatures,
    carve_splits,
    import_features,
)
from adaframe_env.data.schema import SPLITS
from adaframe_env.build.extract.backbones import Backbone, load_backbone
from adaframe_env.build.extract.decode import (
    DecodedChunks,
    VideoJob,
    find_videos,
    jobs_of,
    worker_init,
)
from adaframe_env.build.extract.deps import require
from adaframe_env.build.extract.shard import Dist, dist_from_env, process_group, shard
from adaframe_env import distributed

MANIFEST = "extract.json"
MANIFEST_FORMAT = 1


def default_work_dir(out: str | os.PathLike) -> Path:
    """``FILE.h5`` -> ``FILE.extract`` beside it."""
    return Path(out).with_suffix(".extract")


def settings_of(fps: float, heavy: Backbone, light: Backbone) -> dict:
    """What fixes the features of a video: a resume must use the same."""

    def one(b: Backbone) -> dict:
        return {
            "name": b.name,
            "label": b.label,
            "size": b.size,
            "dim": b.dim,
            "gflops": round(b.gflops, 6),
            "weights": b.weights.name,
            "weights_sha256": b.weights_sha256,
            "normalisation": b.normalisation,
        }

    return {
        "format": MANIFEST_FORMAT,
        "fps": float(fps),
        "frames": "full frame resized to S x S (swscale area), RGB, sampled at fps from the "
        "first frame's timestamp",
        "heavy": one(heavy),
        "light": one(light),
    }


class WorkFolder:
    """The per-video files of an extraction (module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def heavy(self, vid: str) -> Path:
        return self.root / "heavy" / f"{vid}.npy"

    def light(self, vid: str) -> Path:
        return self.root / "light" / f"{vid}.npy"

    def failed(self, vid: str) -> Path:
        return self.root / "failed" / f"{vid}.txt"

    def done(self, vid: str) -> bool:
        return self.heavy(vid).is_file() and self.light(vid).is_file()

    def failure(self, vid: str) -> str | None:
        try:
            return self.failed(vid).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    # --- manifest

    def read_settings(self) -> dict:
        path = self.root / MANIFEST
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FeatureImportError(
                self.root, f"not an extraction work folder (no {MANIFEST}); run adaframe extract"
            ) from None
        except (OSError, ValueError) as e:
            raise FeatureImportError(path, f"unreadable: {e}") from None

    def claim(self, settings: dict) -> None:
        """Start or resume: the folder must hold features made with ``settings`` (or none)."""
        path = self.root / MANIFEST
        if path.is_file():
            before = self.read_settings()
            diff = _differences(before, settings)
            if diff:
                raise FeatureImportError(
                    path,
                    f"the videos here were extracted with other settings ({'; '.join(diff[:3])}); "
                    "use the same options, another --work folder, or delete this one",
                )
            return
        self._write(path, (json.dumps(settings, indent=1) + "\n").encode())

    # --- writing

    @functools.cached_property
    def tmp(self) -> Path:
        """This process's scratch folder (dead processes' folders on this host are swept)."""
        base, host = self.root / "tmp", socket.gethostname()
        base.mkdir(parents=True, exist_ok=True)
        for d in base.iterdir():
            h, _, pid = d.name.rpartition("-")
            if h == host and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(d, ignore_errors=True)
        mine = base / f"{host}-{os.getpid()}"
        mine.mkdir(exist_ok=True)
        return mine

    def _write(self, dest: Path, data: bytes | np.ndarray) -> None:
        tmp = self.tmp / "file.partial"
        with open(tmp, "wb") as f:
            if isinstance(data, np.ndarray):
                np.save(f, data, allow_pickle=False)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)

    def save(self, vid: str, heavy: np.ndarray, light: np.ndarray) -> None:
        """Finish a video: light file, then heavy file (both present = finished)."""
        self._write(self.light(vid), np.ascontiguousarray(light, np.float16))
        self._write(self.heavy(vid), np.ascontiguousarray(heavy, np.float16))
        self.failed(vid).unlink(missing_ok=True)

    def fail(self, vid: str, reason: str) -> None:
        self._write(self.failed(vid), (reason + "\n").encode())

    def close(self) -> None:
        if "tmp" in self.__dict__:
            shutil.rmtree(self.tmp, ignore_errors=True)
            fsync_path(self.root)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key} was {x!r}, now {y!r}")
    return out


@dataclass
class ExtractStats:
    """What one process extracted."""

    assigned: int = 0  # videos of this rank
    already_done: int = 0
    extracted: int = 0
    frames: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        rate = (
            f" in {self.seconds:.1f} s ({self.extracted / self.seconds:.2f} videos/s, "
            f"{self.frames_per_s:.1f} frames/s)"
            if self.seconds
            else ""
        )
        return (
            f"extracted {self.extracted} videos ({self.frames} frames){rate}; "
            f"{self.already_done} were already done, {len(self.failed)} failed, "
            f"of {self.assigned}"
        )


def extract_videos(
    jobs: Sequence[VideoJob],
    work: WorkFolder,
    heavy: Backbone,
    light: Backbone,
    fps: float,
    batch: int = 32,
    workers: int = 1,
    progress: bool = False,
    desc: str = "extract",
) -> ExtractStats:
    """Extract the unfinished ``jobs`` into ``work``; failures are recorded, not raised."""
    stats = ExtractStats(assigned=len(jobs))
    pending = []
    for job in jobs:
        if work.done(job.video_id):
            stats.already_done += 1
        elif job.path is None:
            reason = "no video file found"
            work.fail(job.video_id, reason)
            stats.failed.append((job.video_id, reason))
        else:
            pending.append(job)
    if not pending:
        return stats
    data = DecodedChunks(
        [(i, job.path) for i, job in enumerate(pending)], fps, (heavy.size, light.size), batch
    )
    workers = max(0, min(workers, len(pending)))
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=worker_init if workers else None,
        pin_memory=heavy.device.type == "cuda",
        persistent_workers=False,
    )
    partial: dict[int, tuple[list, list]] = {}
    t0 = time.perf_counter()
    with tqdm(total=len(pending), desc=desc, unit="video", disable=not progress,
              smoothing=0.1) as bar:  # fmt: skip
        for item in loader:
            i = int(item["index"])
            if not item["end"]:
                h, lt = item["frames"]
                feats = partial.setdefault(i, ([], []))
                feats[0].append(heavy(h))
                feats[1].append(light(lt))
                stats.frames += len(h)
                elapsed = time.perf_counter() - t0
                bar.set_postfix_str(f"{stats.frames / elapsed:.1f} frames/s", refresh=False)
                continue
            feats = partial.pop(i, None)
            vid = pending[i].video_id
            if item["error"] or feats is None:
                reason = item["error"] or "no frame could be decoded"
                work.fail(vid, reason)
                stats.failed.append((vid, reason))
            else:
                work.save(vid, np.concatenate(feats[0]), np.concatenate(feats[1]))
                stats.extracted += 1
            bar.update(1)
    stats.seconds = time.perf_counter() - t0
    return stats


# ----------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class CacheOptions:
    """Options of the cache build (``adaframe import``'s)."""

    classes: str | os.PathLike | None = None  # class names, one a line, in index order
    dataset: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    fit_rows: int = 300_000

    def fingerprint_part(self) -> dict:
        return {
            "classes": read_classes(self.classes) if self.classes is not None else None,
            "dataset": self.dataset,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "fit_rows": self.fit_rows,
        }


def labelled_jobs(labels: str | os.PathLike) -> list[VideoJob]:
    """The CSV's videos without their files (what a merge needs)."""
    return jobs_of(read_labels(labels)[0], labels)


def check_splits(jobs: Sequence[VideoJob], names: list[str], labels, options: CacheOptions):
    """Fail on splits the cache build cannot use now, not after hours of extraction."""
    index = {n: i for i, n in enumerate(names)}
    carve_splits(
        np.array([index[j.label] for j in jobs]),
        np.array([SPLITS[j.split or "train"] for j in jobs]),
        options.val_fraction,
        options.test_fraction,
        options.seed,
        source=str(labels),
    )


@dataclass(frozen=True)
class CacheResult:
    path: Path
    report: ImportReport | None  # None: the cache was up to date
    failed: list[tuple[str, str]]


def build_cache(
    work: WorkFolder,
    jobs: Sequence[VideoJob],
    out: str | os.PathLike,
    labels: str | os.PathLike,
    options: CacheOptions = CacheOptions(),
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> CacheResult:
    """Write the cache of ``jobs`` (CSV order) from ``work``; skip it when ``out`` already holds
    the same fingerprint. Every job must be finished or failed; the failed ones are logged."""
    out = Path(out)
    settings = work.read_settings()
    names = class_names(jobs, labels, options.classes)  # failed videos' too: fixed indices
    done, failed, missing = [], [], []
    for job in jobs:
        if work.done(job.video_id):
            done.append(job)
        elif (reason := work.failure(job.video_id)) is not None:
            failed.append((job.video_id, reason))
        else:
            missing.append(job)
    if missing:
        raise FeatureImportError(
            work.root,
            f"{len(missing)} video(s) of {labels} are not extracted yet (first: "
            f"{missing[0].video_id!r}, line {missing[0].line}); run adaframe extract again with "
            "the same options to finish them",
        )
    if failed:
        log(f"{len(failed)} video(s) failed and are left out of the cache (reasons in "
            f"{work.root / 'failed'}):")  # fmt: skip
        for vid, reason in failed:
            log(f"  {vid}: {reason}")
    if not done:
        raise FeatureImportError(work.root, "no video was extracted")
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "settings": settings,
                "cache": options.fingerprint_part(),
                "class_names": names,
                "videos": [(j.video_id, j.label, j.split) for j in done],
                "failed": failed,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    if _fingerprint(out) == fingerprint:
        return CacheResult(out, None, failed)
    videos = [
        VideoFeatures(
            video_id=j.video_id,
            label=j.label,
            split=j.split,
            features=functools.partial(load_features, work.heavy(j.video_id)),
            light=functools.partial(load_features, work.light(j.video_id)),
            source=str(work.heavy(j.video_id)),
            light_source=str(work.light(j.video_id)),
        )
        for j in done
    ]
    h, lt = settings["heavy"], settings["light"]
    report = import_features(
        out,
        videos,
        class_names=names,
        fps=settings["fps"],
        backbone=h["label"],
        gflops_per_frame=h["gflops"],
        light_backbone=lt["label"],
        light_gflops_per_frame=lt["gflops"],
        dataset=options.dataset,
        val_fraction=options.val_fraction,
        test_fraction=options.test_fraction,
        seed=options.seed,
        fit_rows=options.fit_rows,
        progress=progress,
        attrs={
            "extract_settings": json.dumps(settings, sort_keys=True),
            "extract_failed": json.dumps(dict(failed), sort_keys=True),
            "extract_fingerprint": fingerprint,
        },
    )
    return CacheResult(out, report, failed)


def _fingerprint(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("extract_fingerprint")
    except (OSError, FileNotFoundError):
        return None
    return value.decode() if isinstance(value, bytes) else value


# ----------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class ExtractOptions:
    """``adaframe extract``'s settings (see the CLI's help for each)."""

    fps: float = 1.0
    backbone: str = "efficientnet-lite0"
    weights: str | os.PathLike | None = None
    size: int = 224
    light_backbone: str = "efficientnet-lite0"
    light_weights: str | os.PathLike | None = None
    light_size: int = 112
    batch: int = 32
    workers: int | None = None  # default: see default_workers
    device: str = "auto"
    skip_missing: bool = False


def cpus() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(d: Dist, device: torch.device) -> int:
    """Decoding processes per rank, from the rank's share of this node's cores: with a GPU all
    but one (decoding is then the bottleneck), at most 16; on a CPU half (the backbones need
    the other half), at most 8; at least 1."""
    share = cpus() // d.local_world
    if device.type == "cuda":
        return max(1, min(16, share - 1))
    return max(1, min(8, share // 2))


@contextlib.contextmanager
def inference_threads(device: torch.device, workers: int, d: Dist) -> Iterator[None]:
    """On a CPU, torch's threads take the rank's cores left by the decoding workers (at least
    one), unless ``OMP_NUM_THREADS`` says otherwise (torchrun sets it to 1). Restored after."""
    before = torch.get_num_threads()
    if device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, cpus() // d.local_world - workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pick_device(device: str, d: Dist) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise FeatureImportError("--device cuda", "no CUDA device is available to torch")
        return torch.device("cuda", d.local_rank % torch.cuda.device_count())
    return torch.device(device)


@dataclass(frozen=True)
class ExtractResult:
    dist: Dist
    work: Path
    stats: ExtractStats
    heavy: tuple[str, float, str]  # label, GFLOPs, device
    light: tuple[str, float, str]
    cache: CacheResult | None  # None on ranks other than 0, or with build=False


def extract(
    video_dir: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike,
    options: ExtractOptions = ExtractOptions(),
    cache: CacheOptions = CacheOptions(),
    work: str | os.PathLike | None = None,
    build: bool = True,
    progress: bool = False,
    log: Callable[[str], None] = print,
    dist: Dist | None = None,
) -> ExtractResult:
    """Extract ``video_dir``'s videos listed in ``labels`` and (rank 0, ``build``) write the
    cache ``out``. Resumable; see the module docstring. Errors in the input are one-line
    :class:`FeatureImportError`; a video that fails to decode is not an error."""
    d = dist or dist_from_env()
    if not (options.fps > 0 and options.batch >= 1):
        raise FeatureImportError("adaframe extract", "--fps must be > 0 and --batch >= 1")
    require("av", "decoding videos (PyAV)")
    out = Path(out)
    wf = WorkFolder(work if work is not None else default_work_dir(out))
    all_jobs = find_videos(video_dir, read_labels(labels)[0], labels, options.skip_missing)
    names = class_names(all_jobs, labels, cache.classes)
    check_splits(all_jobs, names, labels, cache)
    device = pick_device(options.device, d)
    heavy = load_backbone(options.backbone, options.size, options.weights, device)
    light = load_backbone(options.light_backbone, options.light_size, options.light_weights, device)
    if d.rank == 0:
        log(
            f"heavy backbone {heavy.label} ({heavy.dim}-d, {heavy.gflops:.4g} GFLOPs/frame), "
            f"light {light.label} ({light.dim}-d, {light.gflops:.4g} GFLOPs/frame), on {device}"
            + (f", {d.world} ranks" if d.world > 1 else "")
        )
    with process_group(d):
        wf.root.mkdir(parents=True, exist_ok=True)
        wf.claim(settings_of(options.fps, heavy, light))
        mine = shard(all_jobs, d.rank, d.world)
        workers = default_workers(d, device) if options.workers is None else options.workers
        try:
            with inference_threads(device, workers, d):
                stats = extract_videos(
                    mine, wf, heavy, light, options.fps, options.batch, workers,
                    progress=progress and d.rank == 0, desc=f"{d.tag}extract",
                )  # fmt: skip
        finally:
            wf.close()
        log(f"{d.tag}{stats.line()}")
        distributed.barrier()
    result = None
    if build and d.rank == 0:
        result = build_cache(wf, all_jobs, out, labels, cache, progress, log)
    return ExtractResult(
        dist=d,
        work=wf.root,
        stats=stats,
        heavy=(heavy.label, heavy.gflops, str(device)),
        light=(light.label, light.gflops, str(device)),
        cache=result,
    )


def merge(
    work: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike,
    cache: CacheOptions = CacheOptions(),
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> CacheResult:
    """``adaframe merge``: the cache of a work folder (e.g. shards copied together)."""
    wf = WorkFolder(work)
    if not wf.root.is_dir():
        raise FeatureImportError(wf.root, "no such folder")
    jobs = labelled_jobs(labels)
    names = class_names(jobs, labels, cache.classes)
    check_splits(jobs, names, labels, cache)
    return build_cache(wf, jobs, out, labels, cache, progress, log)
