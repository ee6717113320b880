"""AvgPooling (paper Table 1): average the per-frame softmax scores of the sampled frames.

With cached logits this is exact and costs one fancy-index per split. AvgPooling-G adds the
light model's scores over the 16 global-memory frames (paper: "fuses the prediction scores of
the ResNet-101 with those from the MobileNetv2"). The paper does not say how; we use a weighted
mean ``(1 - w) * heavy + w * light`` with ``w`` chosen on the val split (:func:`fit_fusion_weight`),
since an unweighted mean lets a much weaker light model drag the heavy one down.
"""

from __future__ import annotations

import numpy as np

from adaframe_env.data.store import FeatureStore
from adaframe_env.metrics import mean_average_precision, softmax


def pooled_scores(
    store: FeatureStore, video_ids: np.ndarray, frames: list[np.ndarray], name: str = "logits"
) -> np.ndarray:
    """(B, C) mean softmax of ``frames/name`` over each video's selected frames."""
    counts = np.array([len(f) for f in frames])
    vids = np.repeat(np.asarray(video_ids), counts)
    probs = softmax(store.lookup(name, vids, np.concatenate(frames)))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(probs, starts, axis=0) / counts[:, None]


def memory_scores(store: FeatureStore, video_ids: np.ndarray) -> np.ndarray:
    """(B, C) mean softmax of the light head over the 16 global-memory frames."""
    return pooled_scores(store, video_ids, list(store.memory_frames[video_ids]), "light_logits")


def avgpool_g_scores(
    store: FeatureStore, video_ids: np.ndarray, frames: list[np.ndarray], weight: float = 0.5
) -> np.ndarray:
    """(B, C) ``(1 - weight) * AvgPooling + weight * light scores of the memory frames``."""
    heavy = pooled_scores(store, video_ids, frames)
    return (1 - weight) * heavy + weight * memory_scores(store, video_ids)


FUSION_GRID = np.round(np.arange(0.0, 0.55, 0.05), 2)


def fit_fusion_weight(
    store: FeatureStore, video_ids: np.ndarray, frames: list[np.ndarray]
) -> float:
    """The light weight in :data:`FUSION_GRID` with the best mAP on ``video_ids`` (the val split)."""
    heavy = pooled_scores(store, video_ids, frames)
    light = memory_scores(store, video_ids)
    labels = store.label[video_ids]
    maps = [mean_average_precision((1 - w) * heavy + w * light, labels) for w in FUSION_GRID]
    return float(FUSION_GRID[int(np.argmax(maps))])
