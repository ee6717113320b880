"""The oracle (synthetic caches only): frames picked by the stored ground-truth relevance.

It bounds what frame selection can gain over uniform sampling at the same K, and the harness
reports it as a bound (``is_bound``), never as a competitor. Real caches have no relevance.
"""

from __future__ import annotations

import numpy as np

from adaframe_env.protocol import BaseAgent, RunConfig, VideoResult
from baselines.avgpool import pooled_scores
from baselines.sampling import uniform_frames


def oracle_frames(store, vid: int, k: int) -> np.ndarray:
    """K frames spread uniformly over the video's more relevant half (by ground truth)."""
    rel = store.video_frames("relevance", vid).astype(np.float32)
    evidence = np.flatnonzero(rel >= np.median(rel))
    return evidence[uniform_frames(len(evidence), k)]


class OracleAgent(BaseAgent):
    is_bound = True

    def __init__(self, k: int):
        self.k = k
        self.description = (
            "oracle bound: AvgPooling over K frames of the ground-truth relevant half "
            "(synthetic data only; a bound, not a competitor)"
        )

    def hparams(self) -> dict:
        return {"k": self.k}

    def setup(self, store, config: RunConfig) -> None:
        if not store.has_relevance:
            raise ValueError(
                f"the oracle needs ground-truth relevance, which {store.path} does not store "
                "(real data); it runs on synthetic caches only"
            )

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        frames = [oracle_frames(store, int(v), self.k) for v in videos]
        scores = pooled_scores(store, videos, frames)
        return [VideoResult(scores=s, frames=f) for s, f in zip(scores, frames, strict=True)]
