"""Feature-cache schema v3 and its validator.

One HDF5 file per dataset, flat and ragged so that a batch of lookups is one fancy-index
(docs/design.md section 1). ``N`` videos, ``F`` frames in all, ``C`` classes:

==========================  ==================  ===============================================
path                        shape, dtype        meaning
==========================  ==================  ===============================================
``frames/features``         (F, D) float16      heavy backbone feature of each frame
``frames/light``            (F, Dl) float16     light backbone feature of each frame
``frames/logits``           (F, C) float16      optional (v3): heavy recognizer logits, out-of-fold
``frames/light_logits``     (F, C) float16      optional (v3): light recognizer logits, out-of-fold
``frames/relevance``        (F,) float16        synthetic only: ground truth in [0, 1]
``videos/offset``           (N,) int64          first row of each video
``videos/length``           (N,) int32          frames of each video (>= 1)
``videos/label``            (N,) int32          class index in [0, C)
``videos/split``            (N,) uint8          0 train, 1 val, 2 test
``videos/id``               (N,) utf-8 str      video identifier
``classes/name``            (C,) utf-8 str      class names
``recognizer/fold``         (N,) int8           cross-fitting fold of a train video, -1 otherwise
``recognizer/*``            float32             the linear heads that produced the logits
==========================  ==================  ===============================================

The recognizer's logits are **cross-fitted** (schema v2): a val or test video is scored by the
head fit on all train videos (``recognizer/{heavy,light}_{weight,bias}``); a train video in
fold ``k`` is scored by the head fit on the other folds (``recognizer/{view}_fold_{weight,bias}``,
stacked over folds), so it never saw that video. Scores on train are then as honest as on test,
and a reward computed from them on train says which frames help instead of being saturated by
a head that memorized the video. Schema v1 stored in-sample train logits; a v1 cache is refused
with the command that upgrades it in place (``adaframe fit-recognizer FILE``).

Schema v3 makes the stored logits optional. A frame's logits are its stored feature through the
stored linear head (its fold's head for a train video, the full head otherwise), so the
:class:`~adaframe_env.data.store.FeatureStore` computes them for the frames it serves: at the
datasets' real sizes (FCVID: ~10M frames x 239 classes) the two logit arrays would take more
disk than the features they are computed from. A v3 cache with a fitted recognizer therefore
needs the heads (``recognizer/{heavy,light}_{weight,bias,fold_weight,fold_bias}``) or both
logit arrays; when the logits are stored (every v2 cache; a v3 cache may store them too) they
are served as stored. A v2 cache is read unchanged.

Root attributes: ``schema_version``, ``dataset``, ``fps``, ``backbone``, ``light_backbone``,
``gflops_per_frame``, ``light_gflops_per_frame``, ``synthetic`` and, when synthetic, ``generator``
(the generator's parameters as JSON).

Videos are stored back to back in file order (``offset[i+1] == offset[i] + length[i]``), which
the validator enforces: it is the simplest rule that rules out overlaps and gaps, and it lets a
writer stream videos without an index.

:func:`validate` checks every rule and raises :class:`CacheError` with the file, the path inside
it and the problem, so the CLI and the environment can show one precise line instead of a
traceback from deep inside h5py or NumPy.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SCHEMA_VERSION = 3
SPLITS = {"train": 0, "val": 1, "test": 2}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}

ROOT_ATTRS = {
    "schema_version": "int",
    "dataset": "str",
    "fps": "float",
    "backbone": "str",
    "light_backbone": "str",
    "gflops_per_frame": "float",
    "light_gflops_per_frame": "float",
    "synthetic": "bool",
}

# path -> (dtype, rank). Dimensions are checked against each other in _check_shapes.
REQUIRED = {
    "frames/features": (np.float16, 2),
    "frames/light": (np.float16, 2),
    "videos/offset": (np.int64, 1),
    "videos/length": (np.int32, 1),
    "videos/label": (np.int32, 1),
    "videos/split": (np.uint8, 1),
    "videos/id": ("str", 1),
    "classes/name": ("str", 1),
}
RECOGNIZER = {
    "frames/logits": (np.float16, 2),
    "frames/light_logits": (np.float16, 2),
}
OPTIONAL = {"frames/relevance": (np.float16, 1)}
#: the linear heads, per view: ``logits = x @ weight.T + bias`` (see :func:`head_shapes`)
HEAD_PARTS = ("weight", "bias", "fold_weight", "fold_bias")
HEADS = tuple(f"recognizer/{view}_{part}" for view in ("heavy", "light") for part in HEAD_PARTS)
#: first schema version whose logits may be computed from the heads instead of stored
COMPUTED_LOGITS_VERSION = 3
FOLD = ("recognizer/fold", np.int8, 1)

# Rows scanned at a time for NaN/inf, so validating a file larger than RAM stays cheap.
_SCAN_ROWS = 1 << 16

STR_DTYPE = h5py.string_dtype("utf-8")


class CacheError(ValueError):
    """A feature cache breaks the schema. ``str()`` is one line naming file, path and problem."""

    def __init__(self, file: str | os.PathLike, where: str, problem: str):
        self.file, self.where, self.problem = str(file), where, problem
        super().__init__(f"{self.file}: {where}: {problem}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's error."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


@dataclass(frozen=True)
class CacheSummary:
    """What :func:`validate` learned about a valid cache (shapes and attributes)."""

    num_videos: int
    num_frames: int
    num_classes: int
    feature_dim: int
    light_dim: int
    has_recognizer: bool
    has_relevance: bool
    attrs: dict
    has_logits: bool = True  # the logits are stored (else the store computes them from the heads)


def validate_staged(tmp: str | os.PathLike, dest: str | os.PathLike, **kwargs) -> CacheSummary:
    """:func:`validate` a cache written under a temporary name before it is renamed to
    ``dest``; an error names ``dest`` (the file the user asked for), not the temporary one."""
    try:
        return validate(tmp, **kwargs)
    except CacheError as e:
        raise CacheError(dest, e.where, f"{e.problem} (found before writing it)") from None


def validate(
    path: str | os.PathLike, require_recognizer: bool = True, accept_v1: bool = False
) -> CacheSummary:
    """Check every schema rule of the cache at ``path``; raise :class:`CacheError` on the first.

    ``require_recognizer=False`` accepts a cache whose logits are not fitted yet, and
    ``accept_v1=True`` an old v1 cache (both what ``adaframe fit-recognizer`` consumes).
    """
    return _validate_path(Path(path), require_recognizer, accept_v1, scan=True)


def check_structure(path: str | os.PathLike, require_recognizer: bool = True) -> CacheSummary:
    """Every rule of :func:`validate` but the scans of the frame arrays for NaN, inf and
    out-of-range relevance: attributes, datasets, dtypes, shapes, declared sizes against the
    stored data, and the per-video tables (offsets, lengths, labels, splits, ids, folds).
    Reads the metadata and the ``(N,)`` tables only (milliseconds), whatever the cache's size:
    what :func:`~adaframe_env.data.store.validate_once` re-checks on every open."""
    return _validate_path(Path(path), require_recognizer, False, scan=False)


def _validate_path(path: Path, require_recognizer: bool, accept_v1: bool, scan: bool):
    _check_path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CacheError(
            path, "/", f"not a readable HDF5 file (truncated or corrupt?): {_first_line(e)}"
        ) from None
    with f:
        try:
            return _validate_open(path, f, require_recognizer, accept_v1, scan)
        except CacheError:
            raise
        except (OSError, RuntimeError, KeyError) as e:  # h5py read errors inside a damaged file
            raise CacheError(
                path, "/", f"unreadable data (truncated or corrupt?): {_first_line(e)}"
            ) from None


def _check_path(path: Path) -> None:
    """A regular file is there, or a :class:`CacheError` that says what is there instead."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CacheError(path, "/", _stat_problem(path, e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise CacheError(path, "/", "is a directory, expected an HDF5 feature cache")
    if not stat.S_ISREG(st.st_mode):
        raise CacheError(path, "/", "not a regular file (a device, pipe or socket?)")


def _stat_problem(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "a symlink loop (ELOOP): its symlinks point at each other; point it at the file"
    if e.errno == errno.ENOENT and os.path.islink(path):
        return f"a symlink to {os.readlink(path)}, which does not exist"
    if e.errno == errno.ENOENT:
        return "no such file"
    code = errno.errorcode.get(e.errno, str(e.errno))
    return f"cannot be read: {e.strerror or type(e).__name__} ({code})"


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _validate_open(
    path: Path, f: h5py.File, require_recognizer: bool, accept_v1: bool, scan: bool = True
) -> CacheSummary:
    attrs = _check_attrs(path, f, accept_v1)
    version = attrs["schema_version"]
    for name, (dtype, rank) in REQUIRED.items():
        _check_dataset(path, f, name, dtype, rank)
    has_logits = all(name in f for name in RECOGNIZER)
    has_heads = all(name in f for name in HEADS)
    computable = version >= COMPUTED_LOGITS_VERSION and has_heads
    if require_recognizer and not has_logits and not computable:
        if version >= COMPUTED_LOGITS_VERSION and not any(name in f for name in RECOGNIZER):
            missing = next(name for name in HEADS if name not in f)
            raise CacheError(
                path, "/" + missing, "missing dataset: the recognizer's heads (or stored logits) "
                f"are needed; fit them with `adaframe fit-recognizer {path}`"
            )  # fmt: skip
        for name, (dtype, rank) in RECOGNIZER.items():  # names the missing one
            _check_dataset(path, f, name, dtype, rank)
    if has_logits:
        for name, (dtype, rank) in RECOGNIZER.items():
            _check_dataset(path, f, name, dtype, rank)
    has_recognizer = has_logits or computable
    has_relevance = "frames/relevance" in f
    if has_relevance:
        _check_dataset(path, f, "frames/relevance", *OPTIONAL["frames/relevance"])
    _check_storage(path, f)  # before reading any data: declared sizes are held by the file

    n, num_frames, c = _check_shapes(path, f, has_logits, has_relevance)
    _check_videos(path, f, n, num_frames, c)
    if has_recognizer and version >= 2:
        _check_folds(path, f, n)
    if computable:
        _check_heads(path, f, c)
    finite = ["frames/features", "frames/light"]
    if has_logits:
        finite += list(RECOGNIZER)
    for name in finite if scan else ():
        _check_finite(path, f[name], name)
    if has_relevance and scan:
        _check_finite(path, f["frames/relevance"], "frames/relevance")
        rel = f["frames/relevance"][:]
        if rel.min() < 0 or rel.max() > 1:
            raise CacheError(path, "/frames/relevance", "values outside [0, 1]")
    if not attrs["synthetic"] and has_relevance:
        raise CacheError(
            path,
            "/frames/relevance",
            "present in a cache with synthetic=False; "
            "ground-truth relevance exists for synthetic data only",
        )
    return CacheSummary(
        num_videos=n,
        num_frames=num_frames,
        num_classes=c,
        feature_dim=f["frames/features"].shape[1],
        light_dim=f["frames/light"].shape[1],
        has_recognizer=has_recognizer,
        has_relevance=has_relevance,
        attrs=attrs,
        has_logits=has_logits,
    )


def _check_attrs(path: Path, f: h5py.File, accept_v1: bool = False) -> dict:
    if "schema_version" not in f.attrs:
        raise CacheError(
            path,
            "/@schema_version",
            "missing: not an adaframe-gym feature cache "
            "(write one with `adaframe synth` or the extraction tools)",
        )
    version = f.attrs["schema_version"]
    if not np.issubdtype(np.asarray(version).dtype, np.integer):
        raise CacheError(path, "/@schema_version", f"must be an integer, got {version!r}")
    if int(version) > SCHEMA_VERSION:
        raise CacheError(
            path,
            "/@schema_version",
            f"version {int(version)} is newer than this adaframe-gym "
            f"reads (up to {SCHEMA_VERSION}); upgrade adaframe-gym",
        )
    if int(version) < 1:
        raise CacheError(path, "/@schema_version", f"unknown version {int(version)}")
    if int(version) == 1 and not accept_v1:
        raise CacheError(
            path,
            "/@schema_version",
            "version 1: its train-split logits are in-sample (scored by a head that saw those "
            f"videos); refit them out-of-fold with `adaframe fit-recognizer {path}` (upgrades "
            "the file to v2 in place) or regenerate it",
        )
    attrs = {}
    for name, kind in ROOT_ATTRS.items():
        if name not in f.attrs:
            raise CacheError(path, f"/@{name}", "missing root attribute")
        value = f.attrs[name]
        try:
            attrs[name] = _coerce_attr(value, kind)
        except (TypeError, ValueError):
            raise CacheError(path, f"/@{name}", f"expected {kind}, got {value!r}") from None
    for name in ("gflops_per_frame", "light_gflops_per_frame", "fps"):
        if not (np.isfinite(attrs[name]) and attrs[name] > 0):
            raise CacheError(path, f"/@{name}", f"must be a positive number, got {attrs[name]}")
    for name, value in f.attrs.items():
        if name not in attrs:
            attrs[name] = value.decode() if isinstance(value, bytes) else value
    return attrs


def _coerce_attr(value, kind: str):
    if kind == "str":
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError
        return value
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise TypeError
    if kind == "bool":
        if arr.dtype.kind not in "bi" or int(arr) not in (0, 1):
            raise TypeError
        return bool(arr)
    if arr.dtype.kind not in "iuf":
        raise TypeError
    return int(arr) if kind == "int" else float(arr)


def _check_dataset(path: Path, f: h5py.File, name: str, dtype, rank: int) -> None:
    where = "/" + name
    if name not in f:
        hint = ""
        if name in RECOGNIZER:
            hint = f"; fit it with `adaframe fit-recognizer {path}`"
        raise CacheError(path, where, "missing dataset" + hint)
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise CacheError(path, where, "is a group, expected a dataset")
    if ds.ndim != rank:
        raise CacheError(path, where, f"has shape {ds.shape}, expected {rank} dimension(s)")
    if dtype == "str":
        if h5py.check_string_dtype(ds.dtype) is None:
            raise CacheError(path, where, f"dtype {ds.dtype}, expected utf-8 strings")
    elif ds.dtype != np.dtype(dtype):
        raise CacheError(path, where, f"dtype {ds.dtype}, expected {np.dtype(dtype).name}")


def _datasets(f: h5py.File) -> list[h5py.Dataset]:
    found: list[h5py.Dataset] = []
    f.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def _check_storage(path: Path, f: h5py.File) -> None:
    """Every dataset's declared size is held by the file, checked from metadata alone.

    A few KB of HDF5 can declare billions of rows that were never written: HDF5 reads a chunk
    that is not stored (or a contiguous array with no storage) as the fill value, so scanning
    or loading it costs its declared size in time and RAM and finds zeros, which no writer of
    this package leaves. Chunked data: the chunks stored (``get_num_chunks``) against the
    chunks the shape needs; chunk *counts*, because compressed chunks take fewer bytes than
    the array. Contiguous data: the bytes stored against ``nbytes``, and stored inside the
    file. Data kept in other files (virtual or external datasets) is refused."""
    file_size = os.path.getsize(path)
    for ds in _datasets(f):
        where = ds.name
        if ds.is_virtual or ds.external:
            raise CacheError(
                path, where, "its data lives in other files (a virtual or external dataset); "
                "copy it into the cache (h5repack, or h5py) and validate again"
            )  # fmt: skip
        if ds.shape is None or ds.size == 0:
            continue
        if ds.chunks is not None:
            needed = math.prod(-(-s // c) for s, c in zip(ds.shape, ds.chunks, strict=True))
            stored = ds.id.get_num_chunks()
            if stored < needed:
                raise CacheError(
                    path, where, f"declares shape {ds.shape} but stores {stored} of its {needed} "
                    f"chunks of {ds.chunks}: never fully written (unwritten rows read as the "
                    "fill value); rewrite the cache"
                )  # fmt: skip
            continue
        stored = ds.id.get_storage_size()
        if stored < ds.nbytes:
            raise CacheError(
                path, where, f"declares shape {ds.shape} ({ds.nbytes} bytes) but stores only "
                f"{stored} bytes of it: never fully written; rewrite the cache"
            )  # fmt: skip
        offset = ds.id.get_offset()
        if offset is not None and offset + stored > file_size:
            raise CacheError(
                path, where, f"its {stored} bytes at offset {offset} extend past the end of "
                f"the file ({file_size} bytes): truncated; copy or write it again"
            )  # fmt: skip


def _check_shapes(path: Path, f: h5py.File, has_recognizer: bool, has_relevance: bool):
    num_frames = f["frames/features"].shape[0]
    n = f["videos/offset"].shape[0]
    c = f["classes/name"].shape[0]
    if num_frames == 0 or n == 0:
        raise CacheError(path, "/frames/features", "the cache holds no frames or no videos")
    if c < 2:
        raise CacheError(path, "/classes/name", f"{c} class(es); need at least 2")
    frame_sets = ["frames/light"] + (list(RECOGNIZER) if has_recognizer else [])
    frame_sets += ["frames/relevance"] if has_relevance else []
    for name in frame_sets:
        if f[name].shape[0] != num_frames:
            raise CacheError(
                path,
                "/" + name,
                f"has {f[name].shape[0]} rows, /frames/features has {num_frames}",
            )
    if has_recognizer:
        for name in RECOGNIZER:
            if f[name].shape[1] != c:
                raise CacheError(
                    path,
                    "/" + name,
                    f"has {f[name].shape[1]} columns, expected one per class ({c})",
                )
    for name in ("videos/length", "videos/label", "videos/split", "videos/id"):
        if f[name].shape[0] != n:
            raise CacheError(path, "/" + name, f"has {f[name].shape[0]} entries, expected {n}")
    return n, num_frames, c


def _check_videos(path: Path, f: h5py.File, n: int, num_frames: int, c: int) -> None:
    offset = f["videos/offset"][:]
    length = f["videos/length"][:]
    label = f["videos/label"][:]
    split = f["videos/split"][:]
    bad = np.flatnonzero(length < 1)
    if bad.size:
        raise CacheError(
            path,
            "/videos/length",
            f"video {bad[0]} ({_video_id(f, bad[0])}) has length {length[bad[0]]}; "
            "every video needs at least one frame",
        )
    if offset[0] != 0:
        raise CacheError(path, "/videos/offset", f"offset[0] is {offset[0]}, expected 0")
    ends = offset + length
    bad = np.flatnonzero(offset[1:] != ends[:-1])
    if bad.size:
        i = bad[0] + 1
        kind = "overlaps" if offset[i] < ends[i - 1] else "leaves a gap after"
        raise CacheError(
            path,
            "/videos/offset",
            f"video {i} ({_video_id(f, i)}) starts at row {offset[i]} and {kind} video {i - 1} "
            f"(rows {offset[i - 1]}:{ends[i - 1]}); videos must be stored back to back",
        )
    if ends[-1] != num_frames:
        raise CacheError(
            path,
            "/videos/length",
            f"videos cover {ends[-1]} rows but /frames/features has {num_frames}",
        )
    bad = np.flatnonzero((label < 0) | (label >= c))
    if bad.size:
        raise CacheError(
            path,
            "/videos/label",
            f"video {bad[0]} ({_video_id(f, bad[0])}) has label {label[bad[0]]}, "
            f"outside [0, {c}) for {c} classes",
        )
    bad = np.flatnonzero(split > 2)
    if bad.size:
        raise CacheError(
            path,
            "/videos/split",
            f"video {bad[0]} has split {split[bad[0]]}; expected 0 train, 1 val, 2 test",
        )
    ids = _read_strings(path, f, "videos/id")
    _read_strings(path, f, "classes/name")
    uniq, counts = np.unique(ids, return_counts=True)
    if counts.max() > 1:
        raise CacheError(path, "/videos/id", f"id {uniq[counts.argmax()]!r} appears twice")


def _check_folds(path: Path, f: h5py.File, n: int) -> None:
    """``recognizer/fold``: a fold >= 0 for every train video, -1 for every other."""
    name, dtype, rank = FOLD
    if name not in f:
        raise CacheError(
            path,
            "/" + name,
            f"missing dataset; refit the recognizer with `adaframe fit-recognizer {path}`",
        )
    _check_dataset(path, f, name, dtype, rank)
    fold = f[name][:]
    if fold.shape[0] != n:
        raise CacheError(path, "/" + name, f"has {fold.shape[0]} entries, expected {n}")
    train = f["videos/split"][:] == SPLITS["train"]
    bad = np.flatnonzero(train != (fold >= 0))
    if bad.size:
        i = bad[0]
        raise CacheError(
            path,
            "/" + name,
            f"video {i} ({_video_id(f, i)}) has fold {fold[i]}; train videos need a fold >= 0, "
            "val and test videos -1",
        )


def head_shapes(num_classes: int, dim: int, folds: int) -> dict[str, tuple[int, ...]]:
    """The shape of each part of one view's heads."""
    return {"weight": (num_classes, dim), "bias": (num_classes,),
            "fold_weight": (folds, num_classes, dim), "fold_bias": (folds, num_classes)}  # fmt: skip


def _check_heads(path: Path, f: h5py.File, c: int) -> None:
    """The heads that compute the logits (v3 without stored logits): float32, shaped for the
    classes, the view's feature dim and the folds of ``recognizer/fold``, and finite (they are
    small: checked on every open, not only on a full pass)."""
    folds = int(f[FOLD[0]][:].max()) + 1
    for view, frames in (("heavy", "frames/features"), ("light", "frames/light")):
        dim = f[frames].shape[1]
        for part, shape in head_shapes(c, dim, folds).items():
            name = f"recognizer/{view}_{part}"
            _check_dataset(path, f, name, np.float32, len(shape))
            if f[name].shape[1 if part.startswith("fold") else 0] != c:
                raise CacheError(
                    path, "/" + name, f"has shape {f[name].shape}, expected one row per class ({c})"
                )  # fmt: skip
            if f[name].shape != shape:
                raise CacheError(
                    path, "/" + name, f"has shape {f[name].shape}, expected {shape} "
                    f"({c} classes, {frames} dim {dim}, {folds} folds in /recognizer/fold)"
                )  # fmt: skip
            if not np.isfinite(f[name][()]).all():
                raise CacheError(path, "/" + name, "holds NaN or inf")


def _read_strings(path: Path, f: h5py.File, name: str) -> np.ndarray:
    try:
        return f[name].asstr()[:]
    except UnicodeDecodeError as e:
        raise CacheError(
            path, "/" + name, f"holds bytes that are not valid UTF-8 ({e.reason} at byte {e.start})"
        ) from None


def _video_id(f: h5py.File, i: int) -> str:
    try:
        return repr(f["videos/id"].asstr()[int(i)])
    except Exception:  # the id dataset may itself be the broken part
        return "id unreadable"


def _check_finite(path: Path, ds: h5py.Dataset, name: str) -> None:
    for start in range(0, ds.shape[0], _SCAN_ROWS):
        block = ds[start : start + _SCAN_ROWS]
        ok = np.isfinite(block)
        if not ok.all():
            row = start + int(np.argwhere(~ok)[0][0])
            raise CacheError(path, "/" + name, f"row {row} holds NaN or inf")
