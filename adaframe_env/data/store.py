"""FeatureStore: a validated feature cache, served by batched lookups.

Everything the environment, the baselines and the agents read goes through here, so one
batch of ``(video_ids, frame_ids)`` costs one fancy-index of a flat array, whether the array
lives in RAM (default) or is mapped from disk (``lazy=True``, for caches larger than RAM).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from adaframe_env.data.atomic import write_json
from adaframe_env.data.paths import cache_dir
from adaframe_env.data.schema import SPLITS, CacheError, CacheSummary, validate

MEMORY_SIZE = 16  # light frames in the global memory (paper section 4.1)
FRAME_ARRAYS = ("features", "light", "logits", "light_logits", "relevance")


def memory_frame_index(length: np.ndarray, size: int = MEMORY_SIZE) -> np.ndarray:
    """(N, size) frame indices of the global memory: the centres of ``size`` equal segments.

    The paper samples 16 frames "uniformly"; segment centres avoid always including the first
    and last frame (often black or a title card in real video). Videos shorter than ``size``
    repeat frames.
    """
    length = np.asarray(length, dtype=np.int64)[:, None]
    j = np.arange(size)[None, :]
    return np.minimum((2 * j + 1) * length // (2 * size), length - 1)


def frame_of_location(location: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Frame index ``round(loc * (T - 1))`` of a normalized location in [0, 1] (docs/design.md 3)."""
    loc = np.clip(np.asarray(location, dtype=np.float64), 0.0, 1.0)
    return np.rint(loc * (np.asarray(length) - 1)).astype(np.int64)


def validate_once(path: str | os.PathLike, require_recognizer: bool = True,
                  force: bool = False) -> CacheSummary:  # fmt: skip
    """:func:`validate`, remembered per file version: a real cache is ~100 GB, and every open
    (each harness run, each ``torchrun`` rank) would read all of it again. A stamp in the
    per-user cache records the file's inode, size and mtime when it passed; an unchanged file
    is not read again, a rewritten or touched one is. ``force``: validate anyway (and stamp;
    ``adaframe validate``). Without a writable cache folder it validates every time."""
    path = Path(path)
    if not path.is_file():
        return validate(path, require_recognizer)  # its error says what is there instead
    st = path.stat()
    version = {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
               "require_recognizer": require_recognizer}  # fmt: skip
    name = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    stamp = cache_dir() / "validated" / f"{name}.json"
    try:
        saved = json.loads(stamp.read_text())
        if saved["version"] == version and not force:
            return CacheSummary(**saved["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no stamp, another version of the file, or an unreadable stamp: validate
    summary = validate(path, require_recognizer)
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        write_json(stamp, {"path": str(path.resolve()), "version": version,
                           "summary": dataclasses.asdict(summary)})  # fmt: skip
    except OSError:
        pass  # a read-only home: nothing remembered, nothing lost
    return summary


class FeatureStore:
    """A feature cache opened for batched reads.

    Args:
        path: the HDF5 cache (schema v1).
        lazy: map frame arrays from disk instead of reading them into RAM.
        validate_file: check every schema rule first (on by default; costs one pass over the
            file). Errors are :class:`CacheError` naming the file, the path and the problem.
        require_recognizer: refuse caches whose logits are not fitted yet.

    Attributes (NumPy arrays, one entry per video): ``offset``, ``length``, ``label``,
    ``split``, ``video_id``; ``class_names``; ``attrs`` holds the root attributes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        lazy: bool = False,
        validate_file: bool = True,
        require_recognizer: bool = True,
    ):
        self.path = Path(path)
        self.lazy = lazy
        if validate_file:
            self.summary: CacheSummary | None = validate_once(self.path, require_recognizer)
        else:
            self.summary = None
        with h5py.File(self.path, "r") as f:
            self._read(f)
        self._memory_layouts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.memory_frames, self.memory_rows = self.memory_layout(MEMORY_SIZE)

    def memory_layout(self, size: int = MEMORY_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """``(frames, rows)``, both (N, size): every video's memory frame indices and their rows
        in the frame arrays, for a memory of ``size`` frames (computed once per size)."""
        if size not in self._memory_layouts:
            frames = memory_frame_index(self.length, size)
            self._memory_layouts[size] = (frames, self.offset[:, None] + frames)
        return self._memory_layouts[size]

    def _read(self, f: h5py.File) -> None:
        self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        self.offset = f["videos/offset"][:]
        self.length = f["videos/length"][:].astype(np.int64)
        self.label = f["videos/label"][:].astype(np.int64)
        self.split = f["videos/split"][:]
        self.video_id = f["videos/id"].asstr()[:]
        self.class_names = f["classes/name"].asstr()[:]
        self._arrays: dict[str, np.ndarray] = {}
        for name in FRAME_ARRAYS:
            if f"frames/{name}" in f:
                self._arrays[name] = self._load(f[f"frames/{name}"])

    def _load(self, ds: h5py.Dataset) -> np.ndarray:
        if not self.lazy:
            return ds[:]
        offset = ds.id.get_offset()
        if offset is None or ds.chunks is not None or ds.compression is not None:
            raise CacheError(
                self.path,
                ds.name,
                "lazy mode needs contiguous, uncompressed datasets "
                "(as `adaframe synth` writes them); open with lazy=False or rewrite the file",
            )
        return np.memmap(self.path, mode="r", dtype=ds.dtype, shape=ds.shape, offset=offset)

    # ----------------------------------------------------------------- metadata
    @property
    def num_videos(self) -> int:
        return len(self.offset)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def feature_dim(self) -> int:
        return self._arrays["features"].shape[1]

    @property
    def light_dim(self) -> int:
        return self._arrays["light"].shape[1]

    @property
    def gflops_per_frame(self) -> float:
        return float(self.attrs["gflops_per_frame"])

    @property
    def light_gflops_per_frame(self) -> float:
        return float(self.attrs["light_gflops_per_frame"])

    @property
    def memory_gflops(self) -> float:
        """Cost of computing one video's 16-frame global memory (paper: 1.32 GFLOPs)."""
        return self.memory_cost(MEMORY_SIZE)

    def memory_cost(self, size: int = MEMORY_SIZE) -> float:
        """GFLOPs of a global memory of ``size`` light frames (paper Table 4: 12, 16, 32)."""
        return size * self.light_gflops_per_frame

    @property
    def synthetic(self) -> bool:
        return bool(self.attrs.get("synthetic", False))

    @property
    def has_relevance(self) -> bool:
        return "relevance" in self._arrays

    @cached_property
    def generator(self) -> dict | None:
        """The synthetic generator's parameters, or None for real data."""
        raw = self.attrs.get("generator")
        return json.loads(raw) if raw else None

    def videos(self, split: str) -> np.ndarray:
        """Indices of the videos of one split, in file order."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        return np.flatnonzero(self.split == SPLITS[split])

    def array(self, name: str) -> np.ndarray:
        """The whole (F, ...) frame array ``name`` (in RAM, or a memmap when lazy)."""
        if name not in self._arrays:
            raise KeyError(f"{self.path} has no frames/{name}")
        return self._arrays[name]

    # ----------------------------------------------------------------- lookups
    def rows(self, video_ids: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
        """Flat row indices of frames ``frame_ids`` of videos ``video_ids`` (broadcast)."""
        video_ids = np.asarray(video_ids)
        frame_ids = np.asarray(frame_ids)
        return self.offset[video_ids] + frame_ids

    def lookup(self, name: str, video_ids: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
        """``array(name)[rows]`` in one fancy-index; frame ids are not bounds-checked (hot path)."""
        return self._arrays[name][self.rows(video_ids, frame_ids)]

    def features(self, video_ids, frame_ids) -> np.ndarray:
        return self.lookup("features", video_ids, frame_ids)

    def logits(self, video_ids, frame_ids) -> np.ndarray:
        return self.lookup("logits", video_ids, frame_ids)

    def light_logits(self, video_ids, frame_ids) -> np.ndarray:
        return self.lookup("light_logits", video_ids, frame_ids)

    def relevance(self, video_ids, frame_ids) -> np.ndarray:
        if not self.has_relevance:
            raise KeyError(f"{self.path} stores no ground-truth relevance (real data)")
        return self.lookup("relevance", video_ids, frame_ids)

    def memory(self, video_ids, size: int = MEMORY_SIZE) -> np.ndarray:
        """(B, size, Dl) global memory: light features of ``size`` uniformly spaced frames."""
        return self._arrays["light"][self.memory_layout(size)[1][np.asarray(video_ids)]]

    def memory_positions(self, video_ids, size: int = MEMORY_SIZE) -> np.ndarray:
        """(B, size) normalized temporal positions in [0, 1] of the memory frames."""
        video_ids = np.asarray(video_ids)
        denom = np.maximum(self.length[video_ids] - 1, 1)[..., None]
        return (self.memory_layout(size)[0][video_ids] / denom).astype(np.float32)

    def video_frames(self, name: str, video_id: int) -> np.ndarray:
        """All rows of ``frames/name`` for one video (a view; copy before writing)."""
        start = self.offset[video_id]
        return self._arrays[name][start : start + self.length[video_id]]

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Drop the arrays (and with them any memory maps of the file)."""
        self._arrays = {}

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        # Pickle by path so vector envs and subprocess workers reopen instead of copying GBs.
        return {"path": str(self.path), "lazy": self.lazy}

    def __setstate__(self, state):
        self.__init__(state["path"], lazy=state["lazy"], validate_file=False)

    def __repr__(self) -> str:
        mode = "lazy" if self.lazy else "in RAM"
        return (
            f"FeatureStore({str(self.path)!r}, {self.num_videos} videos, "
            f"{len(self._arrays['features'])} frames, {self.num_classes} classes, {mode})"
        )
