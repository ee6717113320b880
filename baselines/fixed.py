"""AvgPooling and AvgPooling-G over K uniform (U) / random (R) frames or all frames, as
harness agents (paper Table 1). The scoring itself lives in :mod:`baselines.avgpool`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adaframe_env.protocol import BaseAgent, RunConfig, VideoResult
from baselines.avgpool import avgpool_g_scores, fit_fusion_weight, pooled_scores
from baselines.sampling import select_frames

STRATEGY = {"u": "uniform", "r": "random", "all": "all"}


def sampled_frames(store, videos, strategy: str, k: int | None, seed: int) -> list[np.ndarray]:
    """Frames of ``select_frames``, with the random draw depending on (seed, video) only, so a
    video gets the same frames whichever batch it is evaluated in."""
    if strategy != "random":
        return select_frames(store.length[videos], strategy, k)
    return [select_frames(store.length[[v]], "random", k, seed=seed * 1_000_003 + int(v))[0]
            for v in videos]  # fmt: skip


class AvgPoolAgent(BaseAgent):
    """Mean softmax of the heavy recognizer over the sampled frames; ``global_memory`` fuses in
    the light model's mean softmax over the 16 memory frames (AvgPooling-G)."""

    def __init__(self, strategy: str, k: int | None, global_memory: bool = False):
        self.strategy, self.k, self.global_memory = strategy, k, global_memory
        g = "-G" if global_memory else ""
        what = "all frames" if strategy == "all" else f"{k} {strategy} frames"
        self.description = f"AvgPooling{g} over {what} (paper Table 1)"

        # AvgPooling-G learns one number: the light model's fusion weight, on the val split.
        self.trainable = global_memory
        self.weight = 0.5

    def hparams(self) -> dict:
        return {"strategy": self.strategy, "k": self.k, "global_memory": self.global_memory}

    def fit(self, store, train_videos, config: RunConfig) -> None:
        if not self.global_memory:
            return
        val = store.videos("val")
        if val.size == 0:
            raise ValueError(
                f"{store.path}: AvgPooling-G picks its fusion weight on the val "
                "split, which has no videos"
            )
        frames = sampled_frames(store, val, self.strategy, self.k, config.seed)
        self.weight = fit_fusion_weight(store, val, frames)

    def save(self, directory: Path) -> None:
        (Path(directory) / "fusion.json").write_text(json.dumps({"weight": self.weight}))

    def load(self, directory: Path) -> None:
        self.weight = json.loads((Path(directory) / "fusion.json").read_text())["weight"]

    def num_parameters(self) -> int:
        return int(self.global_memory)

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        frames = sampled_frames(store, videos, self.strategy, self.k, config.seed)
        if self.global_memory:
            scores = avgpool_g_scores(store, videos, frames, self.weight)
        else:
            scores = pooled_scores(store, videos, frames)
        return [
            VideoResult(scores=s, frames=f, memory=self.global_memory)
            for s, f in zip(scores, frames, strict=True)
        ]
