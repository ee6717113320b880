"""The per-frame recognizer: linear softmax heads on heavy and light features.

The environment's reward needs class scores that do not depend on the agent (DESIGN.md 2).
For the paper this is ResNet-101's fine-tuned classification layer; for a cache without one we
fit a softmax regression on every train-split frame, labelled with its video's label (what
fine-tuning a frame classifier on untrimmed video does), and store the logits of every frame.

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
from adaframe_env.data.schema import SPLITS, CacheError, validate
from adaframe_env.data.writer import write_datasets
from adaframe_env.metrics import mean_average_precision, softmax, top1_accuracy

_CHUNK = 1 << 16


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
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-6)
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


def fit_and_attach(arrays: dict, seed: int = 0, progress: bool = True) -> RecognizerReport:
    """Fit both heads on the train split of in-memory schema ``arrays``; add logits to them."""
    length = np.asarray(arrays["videos/length"], np.int64)
    label = np.asarray(arrays["videos/label"], np.int64)
    split = np.asarray(arrays["videos/split"])
    num_classes = len(arrays["classes/name"])
    video_of_frame = np.repeat(np.arange(len(length)), length)
    train_rows = np.flatnonzero(split[video_of_frame] == SPLITS["train"])
    if train_rows.size == 0:
        raise ValueError("the cache has no train-split videos to fit the recognizer on")
    y = label[video_of_frame[train_rows]]
    for view, key, stem in (
        ("heavy", "frames/features", "frames/logits"),
        ("light", "frames/light", "frames/light_logits"),
    ):
        x = arrays[key]
        w, b = fit_softmax(
            x[train_rows], y, num_classes, seed, progress=progress, desc=f"fit {view} head"
        )
        arrays[stem] = apply_head(x, w, b)
        arrays[f"recognizer/{view}_weight"] = w
        arrays[f"recognizer/{view}_bias"] = b
    return evaluate(arrays)


def evaluate(arrays: dict) -> RecognizerReport:
    """Per-frame and AvgPooling-over-all-frames accuracy on the test (else val) split."""
    length = np.asarray(arrays["videos/length"], np.int64)
    offset = np.asarray(arrays["videos/offset"], np.int64)
    label = np.asarray(arrays["videos/label"], np.int64)
    split = np.asarray(arrays["videos/split"])
    eval_split = "test" if (split == SPLITS["test"]).any() else "val"
    vids = np.flatnonzero(split == SPLITS[eval_split])
    if vids.size == 0:
        raise ValueError("the cache has neither test nor val videos to evaluate the recognizer")
    rows = np.concatenate([np.arange(offset[v], offset[v] + length[v]) for v in vids])
    frame_labels = np.repeat(label[vids], length[vids])
    results = {}
    for view, stem in (("", "frames/logits"), ("light_", "frames/light_logits")):
        probs = softmax(arrays[stem][rows])
        results[f"{view}frame_top1"] = top1_accuracy(probs, frame_labels)
        starts = np.concatenate([[0], np.cumsum(length[vids])[:-1]])
        video_scores = np.add.reduceat(probs, starts, axis=0) / length[vids][:, None]
        results[f"{view}avgpool_top1"] = top1_accuracy(video_scores, label[vids])
        results[f"{view}avgpool_map"] = mean_average_precision(video_scores, label[vids])
    return RecognizerReport(eval_split=eval_split, **results)


def fit_recognizer_file(
    path: str | os.PathLike, seed: int = 0, progress: bool = True
) -> RecognizerReport:
    """Fit the heads of an existing cache and write logits and weights in place, atomically."""
    path = Path(path)
    validate(path, require_recognizer=False)
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
    report = fit_and_attach(arrays, seed=seed, progress=progress)
    new = {
        k: v
        for k, v in arrays.items()
        if k.startswith(("recognizer/", "frames/logits", "frames/light_logits"))
    }
    with atomic_output(path, copy_from=path) as tmp:
        with h5py.File(tmp, "r+") as f:
            write_datasets(f, new)
            for key, value in report.as_attrs().items():
                f.attrs[key] = value
        validate(tmp)
    return report
