"""SCSampling (Korbar et al. 2019, as in paper Table 1): the light model scores every frame,
the K frames it is most confident about (highest max softmax) go through the heavy model, whose
softmax scores are averaged. Its cost counts the light model over every frame."""

from __future__ import annotations

import numpy as np

from adaframe_env.metrics import softmax
from adaframe_env.protocol import BaseAgent, RunConfig, VideoResult
from baselines.avgpool import pooled_scores


def salient_frames(store, video: int, k: int) -> np.ndarray:
    """The ``k`` frames of ``video`` with the most confident light-model prediction, in
    temporal order (all frames when the video is shorter)."""
    conf = softmax(store.video_frames("light_logits", video)).max(axis=1)
    if k >= len(conf):
        return np.arange(len(conf))
    top = np.argpartition(-conf, k - 1)[:k]
    return np.sort(top)


class SCSamplerAgent(BaseAgent):
    def __init__(self, k: int):
        self.k = k
        self.description = (
            f"SCSampling: light model on all frames, its {k} most confident frames "
            "through the heavy model"
        )

    def hparams(self) -> dict:
        return {"k": self.k}

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        frames = [salient_frames(store, int(v), self.k) for v in videos]
        scores = pooled_scores(store, videos, frames)
        return [
            VideoResult(scores=s, frames=f, light_frames=int(store.length[v]))
            for s, f, v in zip(scores, frames, videos, strict=True)
        ]
