"""Find the videos of a labels CSV and decode them at a fixed frame rate with PyAV.

Choices:

- **Which file.** A CSV name that is a file in ``VIDEO_DIR`` (any extension, subfolders
  allowed: ``class/v_001.avi``) is that file; otherwise ``VIDEO_DIR/NAME.EXT`` for a known video
  extension (:data:`VIDEO_EXTENSIONS`), exactly one. The cache's video id is the name without
  its video extension. Hidden files and folders (names starting with ``.``) are not looked at.
- **Sampling at F fps.** Timestamps count from the first decoded frame. A decoded frame is kept
  when its timestamp reaches the next sampling time ``k / F`` (k = 0, 1, ...); the next time is
  then the first ``k / F`` after it. So a 6 s clip at F = 2 gives 12 frames (0, 0.5, ...,
  5.5 s), the first frame is always kept, and a source with fewer than F frames per second
  gives each of its frames once (no duplicated frames). Frames without a timestamp count at the
  stream's average rate.
- **Resizing.** Each kept frame is converted to RGB and resized by FFmpeg's swscale (area
  averaging, which does not alias when shrinking) to every size asked for, as a whole frame:
  ``S x S`` without cropping, so the aspect ratio is not kept. The heavy backbone sees the full
  frame at its input size (224), the light one at 112 x 112 (the paper's).
- **Batches.** A video comes out as chunks of at most ``batch`` frames (uint8, (b, S, S, 3) per
  size), so a two-hour video never sits in RAM as a whole. :class:`DecodedChunks` runs the
  decoding in ``DataLoader`` worker processes (each takes every n-th video), overlapping it with
  the backbones' inference in the main process. Each decoder uses one thread: parallelism comes
  from the workers (FFmpeg's own threads, one per core, on top of them and of torch's threads
  oversubscribe the cores: 1.6 instead of 13-15 frames/s on a busy 2-core machine).
- **Failures.** Any error while opening or decoding a video, or a video without a frame, ends
  that video with an error record (the message's first line) instead of an exception; the
  extraction reports it and goes on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adaframe_env.build.feature_files import LabelRow
from adaframe_env.build.importer import FeatureImportError
from adaframe_env.data.schema import first_line
from adaframe_env.build.extract.deps import require

VIDEO_EXTENSIONS = (
    ".mp4", ".avi", ".mkv", ".webm", ".mov", ".flv", ".m4v", ".mpg", ".mpeg", ".3gp", ".wmv",
    ".ts", ".ogv",
)  # fmt: skip


@dataclass(frozen=True)
class VideoJob:
    """One CSV row and its video file (``path`` None: no file found, with ``skip_missing``)."""

    video_id: str
    label: str
    split: str | None
    path: Path | None
    line: int


def video_id(name: str) -> str:
    """The cache's id of a CSV name: the name without a video extension."""
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in VIDEO_EXTENSIONS else name


def find_videos(
    video_dir: str | os.PathLike,
    rows: Sequence[LabelRow],
    labels: str | os.PathLike,
    skip_missing: bool = False,
) -> list[VideoJob]:
    """The video file of every CSV row, in CSV order; one listing of ``video_dir``.

    A row without a file is a :class:`FeatureImportError` naming the CSV line, or with
    ``skip_missing`` a job whose ``path`` is None (reported as failed by the extraction).
    """
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise FeatureImportError(video_dir, "no such folder")
    exact: dict[str, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for root, dirs, files in os.walk(video_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_root = Path(root).relative_to(video_dir)
        for name in files:
            if name.startswith("."):
                continue
            rel = (rel_root / name).as_posix()
            exact[rel] = Path(root) / name
            stem, ext = os.path.splitext(rel)
            if ext.lower() in VIDEO_EXTENSIONS:
                by_stem.setdefault(stem, []).append(Path(root) / name)

    def locate(r: LabelRow) -> Path | None:
        where = f"{labels}:{r.line}"
        path = exact.get(r.video)
        if path is None:
            found = by_stem.get(r.video, [])
            if len(found) > 1:
                names = ", ".join(sorted(p.name for p in found)[:3])
                raise FeatureImportError(
                    where, f"video {r.video!r} matches several files in {video_dir} ({names}); "
                    "name one with its extension",
                )  # fmt: skip
            path = found[0] if found else None
        if path is None and not skip_missing:
            raise FeatureImportError(
                where,
                f"no video file for {r.video!r} in {video_dir} (looked for {r.video} and "
                f"{r.video}.mp4/.avi/...); fix the row, or --skip-missing to leave it out",
            )
        return path

    return jobs_of(rows, labels, locate)


def jobs_of(
    rows: Sequence[LabelRow],
    labels: str | os.PathLike,
    locate: Callable[[LabelRow], Path | None] = lambda row: None,
) -> list[VideoJob]:
    """One job per CSV row, in order, with the file ``locate`` finds for it (None: no file,
    e.g. for a merge); a video id on two rows is a :class:`FeatureImportError`."""
    jobs, first = [], {}
    for r in rows:
        path = locate(r)
        vid = video_id(r.video)
        if vid in first:
            raise FeatureImportError(
                f"{labels}:{r.line}", f"video id {vid!r} is already on line {first[vid]}"
            )
        first[vid] = r.line
        jobs.append(VideoJob(vid, r.label, r.split, path, r.line))
    return jobs


class DecodeError(Exception):
    """A video that cannot be used; ``str()`` is one line."""


def sample_frames(
    path: str | os.PathLike, fps: float, sizes: Sequence[int], batch: int, threads: int = 1
) -> Iterator[tuple[np.ndarray, ...]]:
    """Decode ``path`` at ``fps`` frames per second (module docstring); yield chunks of at most
    ``batch`` frames, one (b, S, S, 3) uint8 RGB array per size in ``sizes``. ``threads``:
    FFmpeg's decoding threads (0: as many as it likes)."""
    av = require("av", "decoding videos (PyAV)")
    chunk: list[list[np.ndarray]] = [[] for _ in sizes]
    kept = 0
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        t0, next_t = None, 0.0
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / rate
            t0 = t if t0 is None else t0
            t -= t0
            if t < next_t - 1e-6:
                continue
            next_t = (math.floor(t * fps + 1e-6) + 1) / fps
            for out, s in zip(chunk, sizes, strict=True):
                out.append(
                    frame.reformat(width=s, height=s, format="rgb24", interpolation="AREA")
                    .to_ndarray()
                )  # fmt: skip
            kept += 1
            if len(chunk[0]) == batch:
                yield tuple(np.stack(c) for c in chunk)
                chunk = [[] for _ in sizes]
    if chunk[0]:
        yield tuple(np.stack(c) for c in chunk)
    if kept == 0:
        raise DecodeError("no frame could be decoded")


class DecodedChunks(torch.utils.data.IterableDataset):
    """Items for a ``DataLoader(batch_size=None)``: for each ``(index, path)`` job, its chunks
    ``{"index": i, "frames": [array per size], "end": False, "error": ""}``, then one closing
    item with ``"end": True`` and ``"error"`` empty (done) or the reason it failed. A worker
    takes every ``num_workers``-th job; items of different videos interleave."""

    def __init__(self, jobs: Sequence[tuple[int, Path]], fps: float, sizes, batch: int):
        self.jobs, self.fps, self.sizes, self.batch = list(jobs), fps, tuple(sizes), batch
        self.threads = 1

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        mine = self.jobs[info.id :: info.num_workers] if info else self.jobs
        for index, path in mine:
            error = ""
            try:
                for arrays in sample_frames(path, self.fps, self.sizes, self.batch, self.threads):
                    yield {"index": index, "frames": list(arrays), "end": False, "error": ""}
            except Exception as e:  # any decoder error: the video is reported, not fatal
                # Name the file, not its folder: the reason goes into the cache's attributes.
                reason = first_line(e).replace(str(path), Path(path).name)
                error = f"{type(e).__name__}: {reason}"
            yield {"index": index, "frames": [], "end": True, "error": error}


def worker_init(_worker_id: int) -> None:
    """Decoding workers use one torch thread (they only move arrays)."""
    torch.set_num_threads(1)
