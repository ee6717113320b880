"""Video-level metrics shared by the calibration, the harness and the tests (docs/design.md 6)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """mAP: mean over classes of the average precision of the video-level ``scores`` (N, C).

    Classes without a positive video among ``labels`` are left out (their AP is undefined),
    as in the usual FCVID / ActivityNet evaluation.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    onehot = np.zeros_like(scores, dtype=bool)
    onehot[np.arange(len(labels)), labels] = True
    present = onehot.any(axis=0)
    return float(average_precision_score(onehot[:, present], scores[:, present], average="macro"))


def top1_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float32 (logits are stored as float16)."""
    x = np.asarray(logits, dtype=np.float32)
    x = x - x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x
