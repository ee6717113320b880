"""The per-frame recognizer: linear softmax heads on heavy and light features.

The environment's reward needs class scores that do not depend on the agent (docs/design.md 2).
For the paper this is ResNet-101's fine-tuned classification layer; for a cache without one we
fit a softmax regression on every train-split frame, labelled with its video's label (what
fine-tuning a frame classifier on untrimmed video does), and store the logits of every frame.

Cross-fitting (schema v2). A head scores the videos it was fit on far better than new ones
(on the first fcvid proxy: AvgPooling top-1 98.8% on train videos against 73.4% on test), so
in-sample train logits would hand an agent a reward that is saturated whatever frames it picks.
Train videos are therefore split into ``folds`` folds, stratified by class (seeded), and a train
video in fold k is scored by a head fit on the other folds; val and test videos are scored by
the head fit on all train videos. Both the full heads and the fold heads are stored. A class
with a single train video is never seen by that video's fold head: its out-of-fold score is
honest, and poor.

Choices where the paper is silent: features are standardized with train-split statistics
(folded back into the stored weights, so ``logits = features @ W.T + b`` on raw features),
AdamW with lr 1e-2 decayed linearly to 0, weight decay 1e-4, batch 4096, ``epochs`` passes
(at least ``min_steps`` steps) over at most ``max_rows`` randomly chosen train frames (a linear
head saturates long before all 500k train frames of the fcvid proxy are seen). Deterministic for a seed on a given machine.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from adaframe_env.data.atomic import atomic_output
from adaframe_env.data.schema import SCHEMA_VERSION, SPLITS, CacheError, validate
from adaframe_env.data.writer import write_datasets
from adaframe_env.metrics import mean_average_precision, softmax, top1_accuracy

_CHUNK = 1 << 16
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class RecognizerReport:
    """Test-split accuracy of both heads (val split when a cache has no test videos)."""

    eval_split: str
    frame_top1: float
    light_frame_top1: float
    avgpool_top1: float
    avgpool_map: float
    light_avgpool_top1: float
    light_avgpool_map: float
    train_avgpool_top1: float = float("nan")  # out-of-fold heads, over all frames
    val_avgpool_top1: float = float("nan")
    folds: int = 0

    def as_attrs(self) -> dict:
        # Fixed-length bytes: HDF5 rewrites them in place, while a variable-length string
        # attribute leaks 4 KiB of file space every time fit-recognizer rewrites it.
        return {
            f"recognizer_{k}": np.bytes_(v) if isinstance(v, str) else v
            for k, v in self.__dict__.items()
        }

    def lines(self) -> list[str]:
        return [
            f"evaluated on the {self.eval_split} split",
            f"heavy head: per-frame top-1 {self.frame_top1:.3f}, AvgPooling over all frames "
            f"top-1 {self.avgpool_top1:.3f}, mAP {self.avgpool_map:.3f}",
            f"light head: per-frame top-1 {self.light_frame_top1:.3f}, AvgPooling over all frames "
            f"top-1 {self.light_avgpool_top1:.3f}, mAP {self.light_avgpool_map:.3f}",
            f"AvgPooling top-1 over all frames by split: train {self.train_avgpool_top1:.3f} "
            f"({self.folds}-fold out-of-fold heads), val {self.val_avgpool_top1:.3f}",
        ]


def fit_softmax(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seed: int = 0,
    epochs: int = 4,
    max_rows: int = 300_000,
    min_steps: int = 300,
    progress: bool = False,
    desc: str = "fit head",
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a linear softmax head; return ``(W (C, D), b (C,))`` in float32 for raw features."""
    with _threads_for(len(x) * x.shape[1]):
        return _fit_softmax(x, y, num_classes, seed, epochs, max_rows, min_steps, progress, desc)


@contextlib.contextmanager
def _threads_for(work: int):
    """One torch thread for small fits: on a busy 2-core machine, two threads oversubscribe
    and a tiny fit takes seconds instead of a fraction of one."""
    before = torch.get_num_threads()
    if work < 5_000_000:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_softmax(x, y, num_classes, seed, epochs, max_rows, min_steps, progress, desc):
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        keep = np.sort(rng.choice(len(x), max_rows, replace=False))
        x, y = x[keep], y[keep]
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    # Real CNN features have dims that are (nearly) constant on the train frames: dead ReLU
    # channels, or ones a few videos never move. Dividing by their ~0 std makes their weights
    # huge, and a val/test frame that does move them gets logits beyond float16. A floor of 1%
    # of the root-mean-square std bounds those weights; dims above it are scaled as before.
    std = xt.std(0)
    mean, std = xt.mean(0), std.clamp_min(max(1e-6, 1e-2 * float(std.square().mean().sqrt())))
    xt = (xt - mean) / std
    torch.manual_seed(seed)
    head = torch.nn.Linear(xt.shape[1], num_classes)
    batch = 4096
    steps_per_epoch = max(1, -(-len(xt) // batch))
    epochs = max(epochs, -(-min_steps // steps_per_epoch))  # small caches need more passes
    steps = epochs * steps_per_epoch
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    bar = tqdm(total=steps, desc=desc, disable=not progress, unit="step", leave=False)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            loss = torch.nn.functional.cross_entropy(head(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
    bar.close()
    with torch.no_grad():
        w = (head.weight / std).numpy().astype(np.float32)
        b = (head.bias - (head.weight * (mean / std)).sum(1)).numpy().astype(np.float32)
    return w, b


def apply_head(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float16 logits of every row of ``x``, in chunks to bound memory."""
    out = np.empty((len(x), len(b)), np.float16)
    for i in range(0, len(x), _CHUNK):
        out[i : i + _CHUNK] = np.asarray(x[i : i + _CHUNK], np.float32) @ w.T + b
    return out


def assign_folds(label: np.ndarray, split: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) int8 cross-fitting fold of every train video (-1 for val/test): within each class
    the train videos are shuffled and dealt round-robin, so every fold holds every class that
    has at least ``folds`` train videos."""
    rng = np.random.default_rng([seed, 0xF01D])
    fold = np.full(len(label), -1, np.int8)
    train = np.flatnonzero(split == SPLITS["train"])
    for c in np.unique(label[train]):
        members = rng.permutation(train[label[train] == c])
        fold[members] = (np.arange(len(members)) + rng.integers(folds)) % folds
    return fold


def fit_and_attach(
    arrays: dict, seed: int = 0, folds: int = DEFAULT_FOLDS, progress: bool = True
) -> RecognizerReport:
    """Fit both heads on the train split of in-memory schema ``arrays`` and add cross-fitted
    logits (see the module docstring), the heads and the folds to them."""
    length = np.asarray(arrays["videos/length"], np.int64)
    label = np.asarray(arrays["videos/label"], np.int64)
    split = np.asarray(arrays["videos/split"])
    num_classes = len(arrays["classes/name"])
    video_of_frame = np.repeat(np.arange(len(length)), length)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    train_videos = np.flatnonzero(split == SPLITS["train"])
    if train_videos.size < 2:
        raise ValueError(
            f"the cache has {train_videos.size} train-split video(s); cross-fitting the "
            "recognizer needs at least 2"
        )
    folds = int(min(folds, train_videos.size))
    fold = assign_folds(label, split, folds, seed)
    frame_fold = fold[video_of_frame]
    train_rows = np.flatnonzero(frame_fold >= 0)
    other_rows = np.flatnonzero(frame_fold < 0)
    y = label[video_of_frame]
    # A context manager, so that Ctrl-C closes the bar before the CLI prints its message.
    with tqdm(
        total=2 * (folds + 1), desc="fit recognizer", disable=not progress, unit="head", leave=False
    ) as bar:
        for view, key, stem in (
            ("heavy", "frames/features", "frames/logits"),
            ("light", "frames/light", "frames/light_logits"),
        ):
            x = arrays[key]
            logits = np.empty((len(x), num_classes), np.float16)
            w, b = fit_softmax(x[train_rows], y[train_rows], num_classes, seed)
            logits[other_rows] = apply_head(x[other_rows], w, b)
            bar.update()
            fold_w, fold_b = [], []
            for k in range(folds):
                fit_rows = train_rows[frame_fold[train_rows] != k]
                held = np.flatnonzero(frame_fold == k)
                wk, bk = fit_softmax(x[fit_rows], y[fit_rows], num_classes, seed + 1 + k)
                logits[held] = apply_head(x[held], wk, bk)
                fold_w.append(wk)
                fold_b.append(bk)
                bar.update()
            arrays[stem] = logits
            arrays[f"recognizer/{view}_weight"] = w
            arrays[f"recognizer/{view}_bias"] = b
            arrays[f"recognizer/{view}_fold_weight"] = np.stack(fold_w)
            arrays[f"recognizer/{view}_fold_bias"] = np.stack(fold_b)
    arrays["recognizer/fold"] = fold
    return evaluate(arrays)


def evaluate(arrays: dict, max_train_videos: int | None = None) -> RecognizerReport:
    """Per-frame and AvgPooling-over-all-frames accuracy on the test (else val) split, and the
    AvgPooling top-1 of the heavy head on train (out-of-fold) and val.

    ``max_train_videos``: the train top-1 on that many train videos drawn at random (seeded),
    not all of them: with computed logits (schema v3) scoring the 7.5M train frames of the
    real-size fcvid proxy would be the slowest step of building it, for one summary number."""
    length = np.asarray(arrays["videos/length"], np.int64)
    label = np.asarray(arrays["videos/label"], np.int64)
    split = np.asarray(arrays["videos/split"])
    eval_split = "test" if (split == SPLITS["test"]).any() else "val"
    vids = np.flatnonzero(split == SPLITS[eval_split])
    if vids.size == 0:
        raise ValueError("the cache has neither test nor val videos to evaluate the recognizer")
    results = {}
    for view, stem in (("", "frames/logits"), ("light_", "frames/light_logits")):
        video_scores, frame_hits = _pooled(arrays, stem, vids)
        results[f"{view}frame_top1"] = frame_hits / length[vids].sum()
        results[f"{view}avgpool_top1"] = top1_accuracy(video_scores, label[vids])
        results[f"{view}avgpool_map"] = mean_average_precision(video_scores, label[vids])
    for name in ("train", "val"):
        v = np.flatnonzero(split == SPLITS[name])
        if name == "train" and max_train_videos is not None and v.size > max_train_videos:
            v = np.sort(np.random.default_rng(0).choice(v, max_train_videos, replace=False))
        top1 = top1_accuracy(_pooled(arrays, "frames/logits", v)[0], label[v]) if v.size else np.nan
        results[f"{name}_avgpool_top1"] = float(top1)
    folds = arrays.get("recognizer/fold")
    results["folds"] = int(np.max(folds)) + 1 if folds is not None else 0
    return RecognizerReport(eval_split=eval_split, **results)


def _pooled(arrays: dict, stem: str, vids: np.ndarray) -> tuple[np.ndarray, int]:
    """(B, C) mean softmax over all frames of each video, and the count of frames whose own
    argmax is the label; a few videos at a time, so memory stays bounded on big caches."""
    offset = np.asarray(arrays["videos/offset"], np.int64)
    length = np.asarray(arrays["videos/length"], np.int64)
    label = np.asarray(arrays["videos/label"], np.int64)
    logits = arrays[stem]
    scores = np.empty((len(vids), logits.shape[1]), np.float32)
    hits = 0
    group = np.cumsum(length[vids]) // _CHUNK
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        chunk = vids[idx]
        rows = np.concatenate([np.arange(offset[v], offset[v] + length[v]) for v in chunk])
        probs = softmax(logits[rows])
        hits += int((probs.argmax(1) == np.repeat(label[chunk], length[chunk])).sum())
        starts = np.concatenate([[0], np.cumsum(length[chunk])[:-1]])
        scores[idx] = np.add.reduceat(probs, starts, axis=0) / length[chunk][:, None]
    return scores, hits


def fit_recognizer_file(
    path: str | os.PathLike, seed: int = 0, progress: bool = True
) -> RecognizerReport:
    """Fit the heads of an existing cache and write logits and weights in place, atomically."""
    path = Path(path)
    validate(path, require_recognizer=False, accept_v1=True)
    with h5py.File(path, "r") as f:
        split = f["videos/split"][:]
    if not (split == SPLITS["train"]).any():
        raise CacheError(path, "/videos/split", "no train-split videos to fit the recognizer on")
    if not np.isin(split, [SPLITS["val"], SPLITS["test"]]).any():
        raise CacheError(
            path, "/videos/split", "no val or test videos to evaluate the recognizer on"
        )
    names = (
        "frames/features",
        "frames/light",
        "videos/offset",
        "videos/length",
        "videos/label",
        "videos/split",
        "classes/name",
    )
    with h5py.File(path, "r") as f:
        arrays = {name: f[name][:] for name in names}
        stored = "frames/logits" in f  # keep storing them (v1/v2), else computed (v3)
    report = fit_and_attach(arrays, seed=seed, progress=progress)
    kept = ("recognizer/", "frames/logits", "frames/light_logits") if stored else ("recognizer/",)
    new = {k: v for k, v in arrays.items() if k.startswith(kept)}
    with atomic_output(path, copy_from=path) as tmp:
        with h5py.File(tmp, "r+") as f:
            write_datasets(f, new, progress)
            f.attrs["schema_version"] = SCHEMA_VERSION
            for key, value in report.as_attrs().items():
                f.attrs[key] = value
        validate(tmp)
    return report


# ------------------------------------------------------------------ out-of-core (import)


@dataclass(frozen=True)
class CrossFittedHeads:
    """One view's heads: the one fit on all train videos and one per fold (see module doc)."""

    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    fold_weight: np.ndarray  # (folds, C, D)
    fold_bias: np.ndarray  # (folds, C)

    def logits(self, x: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """float16 logits of rows ``x`` whose videos are in folds ``fold`` (-1: val/test, scored
        by the full head; k: scored by fold k's head, which never saw that video)."""
        x = np.asarray(x, np.float32)
        out = np.empty((len(x), len(self.bias)), np.float32)
        held = fold < 0
        out[held] = x[held] @ self.weight.T + self.bias
        for k in np.unique(fold[~held]):
            rows = fold == k
            out[rows] = x[rows] @ self.fold_weight[k].T + self.fold_bias[k]
        return out.astype(np.float16)

    def arrays(self, view: str) -> dict[str, np.ndarray]:
        """The schema's ``recognizer/{view}_*`` datasets."""
        return {
            f"recognizer/{view}_weight": self.weight,
            f"recognizer/{view}_bias": self.bias,
            f"recognizer/{view}_fold_weight": self.fold_weight,
            f"recognizer/{view}_fold_bias": self.fold_bias,
        }


def fit_heads_out_of_core(
    x,
    length: np.ndarray,
    label: np.ndarray,
    fold: np.ndarray,
    num_classes: int,
    seed: int = 0,
    max_rows: int = 300_000,
    bar=None,
) -> CrossFittedHeads:
    """Fit one view's cross-fitted heads reading only the rows each fit uses.

    ``x`` is the (F, D) frame array of the view, possibly a ``np.memmap`` of a file larger than
    RAM; ``fold`` is :func:`assign_folds`' (N,) output. Each head is fit on at most ``max_rows``
    of its train frames, drawn (seeded) *before* they are read, so a fit holds about
    ``max_rows x D x 10`` bytes (the float16 rows, their float32 copy, the standardized copy)
    whatever the size of the cache. Same seeds and choices as :func:`fit_and_attach`, which
    keeps its in-RAM path for the caches the proxies write.
    """
    length = np.asarray(length, np.int64)
    label = np.asarray(label, np.int64)
    ends = np.cumsum(length)
    frame_fold = np.repeat(np.asarray(fold, np.int8), length)
    train_rows = np.flatnonzero(frame_fold >= 0)
    folds = int(fold.max()) + 1

    def fit(rows: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
        if len(rows) > max_rows:
            rng = np.random.default_rng(s)
            rows = rows[np.sort(rng.choice(len(rows), max_rows, replace=False))]
        y = label[np.searchsorted(ends, rows, side="right")]
        head = fit_softmax(np.asarray(x[rows]), y, num_classes, s, max_rows=max_rows)
        if bar is not None:
            bar.update()
        return head

    w, b = fit(train_rows, seed)
    fold_heads = [fit(train_rows[frame_fold[train_rows] != k], seed + 1 + k) for k in range(folds)]
    return CrossFittedHeads(
        weight=w,
        bias=b,
        fold_weight=np.stack([h[0] for h in fold_heads]),
        fold_bias=np.stack([h[1] for h in fold_heads]),
    )
