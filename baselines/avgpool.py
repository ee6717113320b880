"""AvgPooling (paper Table 1): average the per-frame softmax scores of the sampled frames.

With cached logits this is exact and costs one fancy-index per split. AvgPooling-G adds the
light model's scores over the 16 global-memory frames (paper: "fuses the prediction scores of
the ResNet-101 with those from the MobileNetv2"); the fusion is an unweighted mean of the two
video-level score vectors.
"""

from __future__ import annotations

import numpy as np

from adaframe_env.data.store import FeatureStore
from adaframe_env.metrics import softmax


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
    store: FeatureStore, video_ids: np.ndarray, frames: list[np.ndarray]
) -> np.ndarray:
    return 0.5 * (pooled_scores(store, video_ids, frames) + memory_scores(store, video_ids))
