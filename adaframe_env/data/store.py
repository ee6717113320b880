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
import time
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from adaframe_env.data import schema as _schema
from adaframe_env.data.atomic import write_json
from adaframe_env.data.paths import cache_dir
from adaframe_env.data.schema import SPLITS, CacheError, CacheSummary, check_structure, validate

MEMORY_SIZE = 16  # light frames in the global memory (paper section 4.1)
FRAME_ARRAYS = ("features", "light", "logits", "light_logits", "relevance")
#: logits array -> (the frame array it is computed from, the heads' view)
LOGIT_SOURCES = {"logits": ("features", "heavy"), "light_logits": ("light", "light")}


#: OpenBLAS runs a GEMM of more multiply-adds than this on all its threads. For the env's
#: batches (hundreds of rows x D x C) that is slower, not faster: measured on the 2-core
#: machine while busy, (256, 128) @ (128, 239) took 23 ms on 2 threads and 1.3 ms on one,
#: the threads spinning against each other and everything else running. Such products run
#: on one BLAS thread (threadpoolctl, which scikit-learn already requires).
_BLAS_SERIAL_WORK = 65536 * 4
_CONTROLLER = None


def _one_blas_thread():
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn requires it
        import contextlib

        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


class ComputedLogits:
    """A read-only (F, C) float16 array of recognizer logits, computed from the features on
    each read (schema v3, docs/cache-format.md): row ``r`` is ``x[r] @ W[h].T + b[h]``, with
    ``h`` the head that scores that frame's video (fold ``k``'s head for a train video in fold
    ``k``, the full head for a val or test video), as :mod:`adaframe_env.build.recognizer`
    computed the logits a v2 cache stores, float32 then rounded to float16. The same values
    as the stored ones to float16 rounding (float32 matmuls of other shapes may round the last
    bit differently), at the cost of one small matmul per read.

    It indexes like the NumPy array it stands for, on the first axis only, which is all that
    reads a frame array: an int (one (C,) row), a slice, or an integer array of any shape
    (``shape + (C,)``). Rows with mixed heads are grouped by head, one matmul per head.

    Args:
        x: the (F, D) float16 frame array the heads read (in RAM, or a memmap when lazy).
        weights: (H, C, D) float32, the fold heads then the full head.
        biases: (H, C) float32.
        head_of_row: (F,) int8, the head of every row.
    """

    def __init__(self, x, weights: np.ndarray, biases: np.ndarray, head_of_row: np.ndarray):
        self._x = x
        # (H, D, C) contiguous: x @ wt is a plain GEMM with no transposed operand to copy
        self._wt = np.ascontiguousarray(np.transpose(weights, (0, 2, 1)), dtype=np.float32)
        self._b = np.ascontiguousarray(biases, dtype=np.float32)
        self._head = head_of_row
        self.shape = (len(x), self._b.shape[1])
        self.dtype = np.dtype(np.float16)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):  # the single env's step: one row
            h = self._head[key]
            return (self._x[key].astype(np.float32) @ self._wt[h] + self._b[h]).astype(np.float16)
        if isinstance(key, slice):
            rows = np.arange(*key.indices(len(self)))
        elif isinstance(key, tuple) or key is None or key is Ellipsis:
            raise IndexError("computed logits index on the first axis only (rows)")
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            elif rows.dtype.kind not in "iu":
                raise IndexError(f"rows must be integers, got dtype {rows.dtype}")
        flat = rows.reshape(-1)
        x = np.asarray(self._x[flat], np.float32)
        head = self._head[flat]
        c = self.shape[1]
        if x.size * c > _BLAS_SERIAL_WORK:
            with _one_blas_thread():
                return self._matmul(x, head, flat.size, c).reshape(rows.shape + (c,))
        return self._matmul(x, head, flat.size, c).reshape(rows.shape + (c,))

    def _matmul(self, x: np.ndarray, head: np.ndarray, n: int, c: int) -> np.ndarray:
        if n == 0 or head.min() == head.max():  # one head: val/test, or one lane
            h = int(head[0]) if n else 0
            return (x @ self._wt[h] + self._b[h]).astype(np.float16)
        out = np.empty((n, c), np.float16)
        order = np.argsort(head, kind="stable")
        bounds = np.cumsum(np.bincount(head[order], minlength=len(self._b)))
        start = 0
        for h, end in enumerate(bounds):
            if end > start:
                idx = order[start:end]
                out[idx] = x[idx] @ self._wt[h] + self._b[h]
            start = end
        return out

    def __repr__(self) -> str:
        return f"ComputedLogits(shape={self.shape}, heads={len(self._b)})"


def head_of_row(length: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """(F,) int8 index of the head that scores each row: the video's fold for a train video,
    ``folds`` (the full head, stacked last) for a val or test video."""
    fold = np.asarray(fold, np.int8)
    folds = int(fold.max()) + 1
    return np.repeat(np.where(fold >= 0, fold, folds).astype(np.int8), length)


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


def file_version(path: str | os.PathLike) -> dict:
    """What tells one version of a file from another without reading it: inode, size, mtime
    and ctime (nanoseconds). ``touch -d`` / ``os.utime`` can put mtime back after an in-place
    edit; ctime it cannot: the kernel sets it to the current time on every write, truncate,
    utime, chmod, chown, link or rename of the inode, and no system call sets it to a chosen
    value."""
    st = os.stat(path)
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}  # fmt: skip


#: the rules a stamp vouches for: a digest of the validator's source, so that a stamp written
#: by another version of adaframe-gym (other rules) is not trusted
def _rules() -> str:
    try:
        return hashlib.sha1(Path(_schema.__file__).read_bytes()).hexdigest()[:16]
    except OSError:  # no readable source: the schema version, at least
        return f"schema-v{_schema.SCHEMA_VERSION}"


RULES = _rules()


def stamp_path(path: str | os.PathLike) -> Path | None:
    """Where the validation stamp of ``path`` lives (keyed by its resolved path), or None for
    a path that does not resolve (a symlink loop)."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None
    name = hashlib.sha1(str(resolved).encode()).hexdigest()[:20]
    return cache_dir() / "validated" / f"{name}.json"


def forget(path: str | os.PathLike) -> None:
    """Remove the validation stamp of ``path`` (if any): the next open validates it."""
    stamp = stamp_path(path)
    if stamp is not None:
        try:
            stamp.unlink(missing_ok=True)
        except OSError:
            pass


def validate_once(path: str | os.PathLike, require_recognizer: bool = True,
                  force: bool = False) -> CacheSummary:  # fmt: skip
    """:func:`validate`, remembered per file version: a real cache is ~100 GB, and every open
    (each harness run, each ``torchrun`` rank) would read all of it again.

    A stamp in the per-user cache (``validated/``, one JSON file per resolved path) records
    the :func:`file_version` (inode, size, mtime, **ctime**) and the validator's :data:`RULES`
    when the file passed. When both match, the full pass is skipped, but
    :func:`~adaframe_env.data.schema.check_structure` still runs (milliseconds): attributes,
    dtypes, shapes, declared sizes against the stored data, and the per-video tables. What the
    stamp stands in for is only the scan of the frame arrays for NaN, inf and out-of-range
    relevance.

    Why ctime and no content digest: an in-place edit with mtime restored always moves ctime,
    so on POSIX file systems (ext4, XFS, Btrfs, tmpfs, APFS, NFS) ctime alone notices it. A digest that notices one
    changed value must read the whole file, which is what the stamp exists to avoid; one of
    sampled chunks notices only edits that hit the samples, so it would promise what it does
    not keep. Where ctime is no change time (Windows, where it is the creation time; a FUSE
    or network file system that fakes it), an edit of the frame arrays with mtime restored is
    not noticed until ``adaframe validate FILE``; edits of the tables still are, by the
    structure check. ``chmod`` and the like also move ctime: one extra validation, no harm.

    A stamp is written only when the file is the same version after the pass as before it
    (nothing wrote to it meanwhile), and not when its ctime is a whole second (a file system
    with one-second times) that the pass began in: a later edit in that second would leave
    every time as it was. Any failed validation removes the stamp. ``force``: validate
    anyway (``adaframe validate``). Without a writable cache folder it validates every time.
    """
    path = Path(path)
    if not path.is_file():
        forget(path)
        return validate(path, require_recognizer)  # its error says what is there instead
    stamp = stamp_path(path)
    try:
        before = file_version(path)
    except OSError:
        before = None
    try:
        if not force and before is not None and _trusted(stamp, before, require_recognizer):
            return check_structure(path, require_recognizer)
        started = _clock()
        summary = validate(path, require_recognizer)
    except CacheError:
        forget(path)
        raise
    try:
        after = file_version(path)
    except OSError:
        after = None
    coarse = before is not None and before["ctime_ns"] % 1_000_000_000 == 0
    racy = coarse and before["ctime_ns"] + 1_000_000_000 > started
    if stamp is None or after is None or after != before or racy:
        forget(path)
        return summary
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        write_json(stamp, {"path": str(path.resolve()), "version": before, "rules": RULES,
                           "summary": dataclasses.asdict(summary)})  # fmt: skip
    except OSError:
        pass  # a read-only home: nothing remembered, nothing lost
    return summary


_clock = time.time_ns  # when a validation pass begins (a test sets it)


def _trusted(stamp: Path | None, version: dict, require_recognizer: bool) -> bool:
    """The stamp vouches for this version of the file under these rules."""
    if stamp is None:
        return False
    try:
        saved = json.loads(stamp.read_text())
        # a pass with require_recognizer=False on a fitted cache ran every recognizer rule too
        return (saved["version"] == version and saved["rules"] == RULES
                and (saved["summary"]["has_recognizer"] or not require_recognizer))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no stamp, an unreadable one, or one of an older format: validate


class FeatureStore:
    """A feature cache opened for batched reads.

    Args:
        path: the HDF5 cache (schema v2 or v3).
        lazy: map frame arrays from disk instead of reading them into RAM.
        validate_file: check every schema rule first (on by default; costs one pass over the
            file). Errors are :class:`CacheError` naming the file, the path and the problem.
        require_recognizer: refuse caches whose logits are not fitted yet.

    Attributes (NumPy arrays, one entry per video): ``offset``, ``length``, ``label``,
    ``split``, ``video_id``; ``class_names``; ``attrs`` holds the root attributes;
    ``computed_logits``: the logits are computed from the heads (a v3 cache that does not
    store them; :class:`ComputedLogits`), else read as stored. Every reader of logits
    (``logits``, ``light_logits``, ``lookup``, ``video_frames``, ``array``) sees the same
    values either way.
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
        self.computed_logits = False
        if "logits" not in self._arrays and all(n in f for n in _schema.HEADS):
            if int(self.attrs["schema_version"]) >= _schema.COMPUTED_LOGITS_VERSION:
                self._attach_heads(f)

    def _attach_heads(self, f: h5py.File) -> None:
        """Serve ``logits`` and ``light_logits`` computed from the stored heads (v3)."""
        head = head_of_row(self.length, f["recognizer/fold"][:])
        for name, (source, view) in LOGIT_SOURCES.items():
            part = {p: f[f"recognizer/{view}_{p}"][()] for p in _schema.HEAD_PARTS}
            weights = np.concatenate([part["fold_weight"], part["weight"][None]])
            biases = np.concatenate([part["fold_bias"], part["bias"][None]])
            self._arrays[name] = ComputedLogits(self._arrays[source], weights, biases, head)
        self.computed_logits = True

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
        """The whole (F, ...) frame array ``name`` (in RAM, or a memmap when lazy; the logits
        of a v3 cache that does not store them: a :class:`ComputedLogits`, indexed the same
        way)."""
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
