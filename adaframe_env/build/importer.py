"""Bring your own features: build a validated, recognizer-fitted cache from per-video arrays.

:func:`import_features` takes an iterable of :class:`VideoFeatures` (one video each: a (T, D)
heavy array, optionally a (T, Dl) light array, a label, a split) and writes a cache in the
current schema (docs/design.md 1) that the environment, the baselines and the harness read like the
synthetic proxies. ``adaframe import`` (``adaframe_env.build.feature_files``) feeds it from a
folder of ``.npy`` / ``.pth`` files.

Streaming, so that a cache larger than RAM can be written:

1. **Stage.** Videos are consumed one at a time (a generator, or a list whose arrays are
   zero-argument loaders, works) and appended as float16 rows to raw scratch files beside the
   destination (``scratch_file``). Only the per-video table (id, label, split, length) stays in
   RAM. The total frame count is unknown until the iterable ends, and lazy loading
   (``FeatureStore(lazy=True)``) needs contiguous datasets whose size is fixed when they are
   created, hence the staging instead of resizable chunked datasets.
2. **Fit.** The recognizer's heads (docs/design.md 2: a full head for val/test, out-of-fold heads for
   train) are fit on at most ``fit_rows`` sampled train frames per head, read from the memory-
   mapped scratch (:func:`~adaframe_env.build.recognizer.fit_heads_out_of_core`).
3. **Write.** The final file gets contiguous datasets of known size, filled block by block:
   features copied from the scratch, logits computed from the same block.

Peak RAM: one video in stage 1; ``fit_rows x max(D, Dl) x 10`` bytes in stage 2 (the default
300,000 rows of 2048-d features: about 6 GB; lower ``fit_rows`` on a small machine), plus
about 10 bytes per frame of row indices; one block of about 64 MiB per frame array in stage 3.
Disk: the scratch (``F x (D + Dl) x 2`` bytes) and the cache (the same plus ``F x C x 4``)
exist together until the end; the scratch is removed whatever happens (after a SIGKILL, by the
next write to the same destination).

Choices:

- **Derived light view.** With no light arrays, the light view is a fixed random projection of
  the stored (float16) heavy feature to ``light_dim`` dims (default ``min(128, D)``):
  ``light = heavy @ P`` with ``P`` ~ N(0, 1/light_dim), (D, light_dim), drawn from
  ``light_projection(D, light_dim, seed)``. It keeps the memory-based agents (AdaFrame, the
  ``-G`` variants) running, and it is honest about cost: it needs the heavy feature of each
  memory frame, so it costs the heavy backbone's GFLOPs per frame plus the projection's
  ``2 x D x light_dim`` FLOPs. A 16-frame memory then costs 16 heavy frames (125 GFLOPs for
  ResNet-101) instead of the paper's 1.32: bring real light features to compare with the
  paper's memory cost. Recorded in the attributes ``light_backbone`` (``BACKBONE+randprojDL``),
  ``light_gflops_per_frame`` and ``light_derived`` (the recipe and seed).
- **Carved splits.** When no video is in val, ``val_fraction`` (default 10%) of the train videos
  become val; when no video is in test and ``test_fraction`` > 0, that share becomes test (test
  first, then val). Carving is stratified by class (each class gives its share, remainders by
  largest fraction, a class never gives its last train video) and seeded. Recorded in the
  attributes ``import_val_from_train`` / ``import_test_from_train`` (the fraction, 0 when the
  split was given) and ``import_seed``.
- **Labels** are class names (``class_names`` fixes their order; default: sorted names seen) or
  indices into ``class_names``. A video without a split is train.
- **Defaults** for the backbones are the paper's: ResNet-101 (7.82 GFLOPs/frame) for the heavy
  view, MobileNetV2 at 112x112 (1.32 / 16 GFLOPs/frame) for a given light view.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from adaframe_env.data.atomic import atomic_output, scratch_file
from adaframe_env.build.recognizer import (
    DEFAULT_FOLDS,
    RecognizerReport,
    assign_folds,
    evaluate,
    fit_heads_out_of_core,
)
from adaframe_env.data.schema import SCHEMA_VERSION, SPLITS, CacheError, validate_staged
from adaframe_env.data.writer import write_datasets

DEFAULT_BACKBONE = ("resnet101", 7.82)
DEFAULT_LIGHT_BACKBONE = ("mobilenetv2-112", 1.32 / 16)
DEFAULT_LIGHT_DIM = 128
FLOAT16_MAX = float(np.finfo(np.float16).max)

Frames = np.ndarray | Callable[[], np.ndarray]
# Root attributes import_features writes itself (and the recognizer's ``recognizer_*``).
_OWN_ATTRS = frozenset(
    {"schema_version", "dataset", "fps", "backbone", "gflops_per_frame", "synthetic",
     "light_backbone", "light_gflops_per_frame", "light_derived", "import_val_from_train",
     "import_test_from_train", "import_seed"}
)  # fmt: skip


class FeatureImportError(CacheError):
    """Bad input to an import; ``str()`` is one line naming the input (a file, a CSV line)."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.file, self.where, self.problem = str(source), "", problem
        ValueError.__init__(self, f"{source}: {problem}")


@dataclass(frozen=True)
class VideoFeatures:
    """One video to import.

    ``features`` (T, D) and ``light`` (T, Dl) are arrays (anything ``np.asarray`` takes, torch
    tensors included) or zero-argument callables returning one, so that a list of videos can
    load each file only when its turn comes. ``source`` names the video in error messages (a
    file path; default ``video 'ID'``), ``light_source`` its light arrays (default ``source``).
    """

    video_id: str
    label: str | int
    features: Frames
    split: str | None = None
    light: Frames | None = None
    source: str | None = None
    light_source: str | None = None

    def where(self, light: bool = False) -> str:
        return (light and self.light_source) or self.source or f"video {self.video_id!r}"


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_features` wrote."""

    path: Path
    num_videos: int
    num_frames: int
    feature_dim: int
    light_dim: int
    split_counts: dict[str, int]
    carved: dict[str, int]  # videos moved out of train into "val" / "test"
    light_derived: bool
    attrs: dict = field(repr=False)
    recognizer: RecognizerReport = field(repr=False)

    def lines(self) -> list[str]:
        splits = []
        for name in ("train", "val", "test"):
            n = self.split_counts[name]
            how = (
                f" (carved from train, seed {self.attrs['import_seed']})"
                if self.carved[name]
                else ""
            )
            splits.append(f"{name} {n}{how}")
        a = self.attrs
        light = (
            f"derived from the heavy features ({a['light_backbone']}): costs "
            f"{a['light_gflops_per_frame']:g} GFLOPs/frame, the heavy backbone's"
            if self.light_derived
            else f"given ({a['light_backbone']}, {a['light_gflops_per_frame']:g} GFLOPs/frame)"
        )
        return [
            f"imported {self.num_videos} videos ({self.num_frames} frames, heavy dim "
            f"{self.feature_dim}, light dim {self.light_dim}) into {self.path}",
            "splits: " + ", ".join(splits),
            f"heavy backbone: {a['backbone']}, {a['gflops_per_frame']:g} GFLOPs/frame",
            f"light view: {light}",
        ]


def light_projection(feature_dim: int, light_dim: int, seed: int = 0) -> np.ndarray:
    """(D, Dl) float32 matrix of the derived light view: N(0, 1/Dl) entries, fixed by ``seed``."""
    rng = np.random.default_rng([seed, 0x11647])
    return (rng.standard_normal((feature_dim, light_dim)) / math.sqrt(light_dim)).astype(np.float32)


def carve_splits(
    label: np.ndarray,
    split: np.ndarray,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    source: str = "videos",
) -> tuple[np.ndarray, dict[str, int]]:
    """``(split, carved)``: the split codes after carving val (and test) out of train when none
    is given (see the module docstring), and how many videos each carve moved. Raises
    :class:`FeatureImportError` (naming ``source``) when the result cannot be fitted and
    evaluated: fewer than 2 train videos, or no val and no test video."""
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac}")
    rng = np.random.default_rng([seed, 0x5B117])
    label = np.asarray(label)
    split = np.array(split, np.uint8)
    carved = {"train": 0, "val": 0, "test": 0}
    for name, frac in (("test", test_fraction), ("val", val_fraction)):
        code = SPLITS[name]
        if frac > 0 and not (split == code).any():
            take = _stratified(label, np.flatnonzero(split == SPLITS["train"]), frac, rng)
            split[take] = code
            carved[name] = len(take)
    n_train = int((split == SPLITS["train"]).sum())
    if n_train < 2:
        raise FeatureImportError(
            source, f"{n_train} train video(s); fitting the recognizer needs at least 2"
        )
    if not np.isin(split, [SPLITS["val"], SPLITS["test"]]).any():
        raise FeatureImportError(
            source,
            "no val or test videos to evaluate the recognizer on: give some a split, or carve "
            "them from train (val_fraction / --val-fraction > 0)",
        )
    return split, carved


def _stratified(label: np.ndarray, train: np.ndarray, frac: float, rng) -> np.ndarray:
    """Indices of about ``frac`` of the ``train`` videos, the same share of every class."""
    classes, counts = np.unique(label[train], return_counts=True)
    if len(classes) == 0:
        return np.empty(0, np.int64)
    quota = frac * counts
    take = np.floor(quota).astype(np.int64)
    target = max(1, int(math.floor(frac * len(train) + 0.5)))
    # Largest remainders first, ties in seeded random order.
    for i in np.lexsort((rng.random(len(classes)), -(quota - take))):
        if take.sum() >= target:
            break
        take[i] += 1
    take = np.minimum(take, counts - 1)  # a class keeps at least one train video
    chosen = [
        rng.permutation(train[label[train] == c])[:k] for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def import_features(
    dest: str | os.PathLike,
    videos: Iterable[VideoFeatures],
    *,
    class_names: Sequence[str] | None = None,
    fps: float = 1.0,
    backbone: str = DEFAULT_BACKBONE[0],
    gflops_per_frame: float = DEFAULT_BACKBONE[1],
    light_backbone: str = DEFAULT_LIGHT_BACKBONE[0],
    light_gflops_per_frame: float = DEFAULT_LIGHT_BACKBONE[1],
    light_dim: int | None = None,
    dataset: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    folds: int = DEFAULT_FOLDS,
    fit_rows: int = 300_000,
    num_videos: int | None = None,
    progress: bool = False,
    attrs: Mapping[str, object] | None = None,
) -> ImportReport:
    """Write the cache of ``videos`` to ``dest`` atomically; return what was written.

    Args:
        dest: the .h5 file to write (replaced atomically; absent or old on any failure).
        videos: one :class:`VideoFeatures` per video, consumed once, in file order.
        class_names: class names in index order; default: the sorted names seen as labels.
        fps: frames per second of the features.
        backbone, gflops_per_frame: the heavy backbone (default the paper's ResNet-101).
        light_backbone, light_gflops_per_frame: the light backbone, when videos carry light
            arrays (default the paper's MobileNetV2 at 112x112); ignored otherwise.
        light_dim: dims of the derived light view when no video has light arrays.
        dataset: the ``dataset`` attribute (results folders are named after it); default the
            file's stem.
        val_fraction, test_fraction, seed: split carving (module docstring); ``seed`` also
            fixes the light projection, the folds and the heads.
        folds: cross-fitting folds of the recognizer.
        fit_rows: train frames each recognizer head is fit on, at most (bounds the fit's RAM).
        num_videos: length of ``videos`` for the progress bar, when it has no ``len``.
        progress: show progress bars.
        attrs: extra root attributes recorded as given (provenance, e.g. ``adaframe extract``'s
            settings); a name the import itself writes is refused.

    Raises :class:`FeatureImportError` (a :class:`CacheError`) with one line naming the video
    for bad input: a shape that is not (T, D) with T >= 1, a D or Dl that differs from the
    first video's, NaN/inf or values beyond float16, a duplicate id, an unknown class or split,
    light arrays for some videos only or with another T.
    """
    dest = Path(dest)
    for name, value in (
        ("fps", fps),
        ("gflops_per_frame", gflops_per_frame),
        ("light_gflops_per_frame", light_gflops_per_frame),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    if fit_rows < 1 or folds < 2:
        raise ValueError(f"fit_rows must be >= 1 and folds >= 2, got {fit_rows}, {folds}")
    clash = sorted(k for k in attrs or () if k in _OWN_ATTRS or k.startswith("recognizer_"))
    if clash:
        raise ValueError(f"attrs may not set {clash}: import_features writes them")
    if num_videos is None and isinstance(videos, Sized):
        num_videos = len(videos)
    with (
        atomic_output(dest) as tmp,
        scratch_file(dest, "heavy") as heavy_path,
        scratch_file(dest, "light") as light_path,
    ):
        index = None
        if class_names is not None:
            index = {str(n): i for i, n in enumerate(class_names)}
            if len(index) != len(class_names):
                raise ValueError("class_names holds a name twice")
        staged = _Stager(heavy_path, light_path, light_dim, seed, index)
        try:
            with tqdm(videos, total=num_videos, desc="import", unit="video",
                      disable=not progress) as it:  # fmt: skip
                for video in it:
                    staged.add(video)
        finally:
            staged.close()
        if not staged.ids:
            raise FeatureImportError(dest, "no videos to import")
        names, label = _labels(staged)
        split, carved = carve_splits(
            label, staged.split, val_fraction, test_fraction, seed, source=str(dest)
        )
        length = np.asarray(staged.length, np.int64)
        attrs = {
            "schema_version": SCHEMA_VERSION,
            "dataset": dataset or dest.stem,
            "fps": float(fps),
            "backbone": backbone,
            "gflops_per_frame": float(gflops_per_frame),
            "synthetic": False,
            "import_val_from_train": float(val_fraction) if carved["val"] else 0.0,
            "import_test_from_train": float(test_fraction) if carved["test"] else 0.0,
            "import_seed": int(seed),
            **(attrs or {}),
        }
        if staged.derived:
            d, dl = staged.dims
            attrs["light_backbone"] = f"{backbone}+randproj{dl}"
            attrs["light_gflops_per_frame"] = float(gflops_per_frame) + 2 * d * dl / 1e9
            attrs["light_derived"] = (
                f"frames/features @ P, P ~ N(0, 1/{dl}) of shape ({d}, {dl}) drawn by "
                f"adaframe_env.build.importer.light_projection({d}, {dl}, seed={seed}); costs "
                "the heavy backbone's GFLOPs plus the projection's"
            )
        else:
            attrs["light_backbone"] = light_backbone
            attrs["light_gflops_per_frame"] = float(light_gflops_per_frame)
        arrays = {
            "videos/offset": np.concatenate([[0], np.cumsum(length)[:-1]]),
            "videos/length": length,
            "videos/label": label,
            "videos/split": split,
            "videos/id": np.asarray(staged.ids, dtype=object),
            "classes/name": np.asarray(names, dtype=object),
            "recognizer/fold": assign_folds(
                label, split, int(min(folds, (split == SPLITS["train"]).sum())), seed
            ),
        }
        report = _fit_and_write(tmp, staged, arrays, attrs, len(names), seed, fit_rows, progress)
        with h5py.File(tmp, "r+") as f:
            for key, value in report.as_attrs().items():
                f.attrs[key] = value
        validate_staged(tmp, dest)
    counts = {name: int((split == code).sum()) for name, code in SPLITS.items()}
    return ImportReport(
        path=dest,
        num_videos=len(length),
        num_frames=int(length.sum()),
        feature_dim=staged.dims[0],
        light_dim=staged.dims[1],
        split_counts=counts,
        carved=carved,
        light_derived=staged.derived,
        attrs={**attrs, **report.as_attrs()},
        recognizer=report,
    )


class _Stager:
    """Stage 1: check each video and append its float16 rows to the scratch files."""

    def __init__(self, heavy: Path, light: Path, light_dim: int | None, seed: int, index):
        self.paths = (heavy, light)
        self.files = (open(heavy, "wb"), open(light, "wb"))  # noqa: SIM115 (closed in close())
        self.light_dim, self.seed = light_dim, seed
        self.index: dict[str, int] | None = index
        self.ids: list[str] = []
        self.seen: set[str] = set()
        self.labels: list[str | int] = []
        self.split: list[int] = []
        self.length: list[int] = []
        self.dims: tuple[int, int] = (0, 0)
        self.first = self.first_light = ""
        self.derived = False
        self.projection: np.ndarray | None = None

    def add(self, video: VideoFeatures) -> None:
        src = video.where()
        vid = str(video.video_id)
        if not vid:
            raise FeatureImportError(src, "empty video id")
        if vid in self.seen:
            raise FeatureImportError(src, f"video id {vid!r} appears twice")
        if video.split is None:
            code = SPLITS["train"]
        elif video.split in SPLITS:
            code = SPLITS[video.split]
        else:
            raise FeatureImportError(
                src, f"unknown split {video.split!r}; expected train, val or test"
            )
        _check_label(video.label, self.index, src)
        heavy = _frames(video.features, src, "features")
        has_light = video.light is not None
        if not self.ids:
            self.first, self.derived = src, not has_light
            if self.derived:
                dl = self.light_dim or min(DEFAULT_LIGHT_DIM, heavy.shape[1])
                self.projection = light_projection(heavy.shape[1], dl, self.seed)
                self.dims = (heavy.shape[1], dl)
        else:
            self._same("features", heavy.shape[1], self.dims[0], src, self.first)
            if has_light == self.derived:
                has, lacks = ("has", "lacks") if has_light else ("lacks", "has")
                raise FeatureImportError(
                    src, f"{has} light features but {self.first} {lacks} them; give all or none"
                )
        if self.derived:
            light = _float16(heavy.astype(np.float32) @ self.projection, src, "derived light")
        else:
            light_src = video.where(light=True)
            light = _frames(video.light, light_src, "light features")
            if not self.ids:
                self.dims, self.first_light = (heavy.shape[1], light.shape[1]), light_src
            self._same("light features", light.shape[1], self.dims[1], light_src, self.first_light)
            if len(light) != len(heavy):
                raise FeatureImportError(
                    light_src,
                    f"light features have {len(light)} frames, the heavy ones {len(heavy)} ({src})",
                )
        self.files[0].write(heavy.tobytes())
        self.files[1].write(light.tobytes())
        self.ids.append(vid)
        self.seen.add(vid)
        self.labels.append(video.label)
        self.split.append(code)
        self.length.append(len(heavy))

    @staticmethod
    def _same(what: str, got: int, want: int, src: str, first: str) -> None:
        if got != want:
            raise FeatureImportError(
                src,
                f"{what} have {got} dims per frame but {first} has {want}; "
                "every video needs the same",
            )

    def close(self) -> None:
        for f in self.files:
            f.close()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The staged (F, D) and (F, Dl) float16 rows, memory-mapped."""
        rows = int(sum(self.length))
        return tuple(
            np.memmap(p, np.float16, "r", shape=(rows, d))
            for p, d in zip(self.paths, self.dims, strict=True)
        )


def _frames(value: Frames, src: str, what: str) -> np.ndarray:
    """A video's (T, D) rows in float16, or a :class:`FeatureImportError` naming ``src``."""
    x = np.asarray(value() if callable(value) else value)
    if x.dtype.kind not in "fiu":
        raise FeatureImportError(src, f"{what} have dtype {x.dtype}, expected numbers")
    if x.ndim != 2:
        raise FeatureImportError(
            src, f"{what} have shape {x.shape}, expected (T, D): one row per frame"
        )
    if x.shape[0] == 0:
        raise FeatureImportError(src, f"{what} have 0 frames; every video needs at least one")
    if x.shape[1] == 0:
        raise FeatureImportError(src, f"{what} have 0 dims per frame")
    bad = ~np.isfinite(x)
    if bad.any():
        raise FeatureImportError(src, f"{what}: frame {np.argwhere(bad)[0][0]} holds NaN or inf")
    return _float16(x, src, what)


def _float16(x: np.ndarray, src: str, what: str) -> np.ndarray:
    """The cache stores float16: values beyond its range would turn into inf."""
    big = np.abs(x) > FLOAT16_MAX
    if big.any():
        row = np.argwhere(big)[0][0]
        raise FeatureImportError(
            src,
            f"{what}: frame {row} holds {float(np.abs(x[row]).max()):.4g}, beyond float16's "
            f"range ({FLOAT16_MAX:g}), which the cache stores; rescale the features",
        )
    return np.ascontiguousarray(x, dtype=np.float16)


def _check_label(value, index: dict[str, int] | None, src: str) -> None:
    """At staging time, so that a streamed import fails on a bad label before the next video."""
    if isinstance(value, str):
        if index is not None and value not in index:
            raise FeatureImportError(
                src, f"class {value!r} is not one of the {len(index)} class names"
            )
    elif index is None:
        raise FeatureImportError(src, f"integer label {value!r} needs class_names")
    elif not (isinstance(value, int | np.integer) and 0 <= value < len(index)):
        raise FeatureImportError(src, f"label {value!r} is outside [0, {len(index)})")


def _labels(staged: _Stager) -> tuple[list[str], np.ndarray]:
    """Class names and each video's class index (labels were checked by the stager)."""
    index = staged.index
    if index is None:
        index = {n: i for i, n in enumerate(sorted(set(staged.labels)))}
    label = np.array([index.get(v, v) if isinstance(v, str) else v for v in staged.labels])
    if len(index) < 2:
        raise FeatureImportError(
            staged.first, f"{len(index)} class(es) in all; a recognizer needs at least 2"
        )
    return list(index), label.astype(np.int32)


def _block_rows(dim: int) -> int:
    """Rows per block of stage 3: about 64 MiB of float32 per frame array."""
    return max(1024, (64 << 20) // (4 * dim))


def _fit_and_write(
    tmp: Path,
    staged: _Stager,
    arrays: dict,
    attrs: dict,
    num_classes: int,
    seed: int,
    fit_rows: int,
    progress: bool,
) -> RecognizerReport:
    """Stages 2 and 3: fit both views' heads on the scratch, write the cache block by block,
    and measure the recognizer on the written logits."""
    heavy, light = staged.arrays()
    length, label, fold = arrays["videos/length"], arrays["videos/label"], arrays["recognizer/fold"]
    heads = {}
    folds = int(fold.max()) + 1
    with tqdm(total=2 * (folds + 1), desc="fit recognizer", unit="head", disable=not progress,
              leave=False) as bar:  # fmt: skip
        for view, x in (("heavy", heavy), ("light", light)):
            heads[view] = fit_heads_out_of_core(
                x, length, label, fold, num_classes, seed, fit_rows, bar
            )
            arrays.update(heads[view].arrays(view))
    frame_fold = np.repeat(fold, length)
    rows = len(heavy)
    with h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        out = {
            name: f.create_dataset(name, shape=(rows, dim), dtype=np.float16)
            for name, dim in (
                ("frames/features", heavy.shape[1]),
                ("frames/light", light.shape[1]),
                ("frames/logits", num_classes),
                ("frames/light_logits", num_classes),
            )
        }
        block = _block_rows(max(heavy.shape[1], light.shape[1], num_classes))
        with tqdm(total=rows, desc="write cache", unit="frame", disable=not progress,
                  leave=False) as bar:  # fmt: skip
            for start in range(0, rows, block):
                s = slice(start, min(rows, start + block))
                for view, x, feat, logit in (
                    ("heavy", heavy, "frames/features", "frames/logits"),
                    ("light", light, "frames/light", "frames/light_logits"),
                ):
                    chunk = np.asarray(x[s])
                    out[feat][s] = chunk
                    out[logit][s] = heads[view].logits(chunk, frame_fold[s])
                bar.update(s.stop - s.start)
        write_datasets(f, arrays)
    return _evaluate_file(tmp, arrays)


def _evaluate_file(path: Path, arrays: dict) -> RecognizerReport:
    """The recognizer's accuracy, reading the written logits through memory maps."""
    from adaframe_env.data.store import FeatureStore

    store = FeatureStore(path, lazy=True, validate_file=False)
    try:
        return evaluate(
            {
                **{k: v for k, v in arrays.items() if k.startswith(("videos/", "recognizer/fold"))},
                "classes/name": arrays["classes/name"],
                "frames/logits": store.array("logits"),
                "frames/light_logits": store.array("light_logits"),
            }
        )
    finally:
        store.close()


__all__ = [
    "FeatureImportError",
    "ImportReport",
    "VideoFeatures",
    "carve_splits",
    "import_features",
    "light_projection",
]
