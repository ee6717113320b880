"""MGSampler-style sampling (Zhi et al., "MGSampler: An Explainable Sampling Strategy for Video
Action Recognition", ICCV 2021), training-free: K frames spread evenly over the video's
*motion* instead of its time, then AvgPooling of the heavy recognizer over them.

MGSampler measures motion as the difference between consecutive RGB frames, accumulates it
over the video, normalizes the cumulative curve to [0, 1], cuts it into K segments of equal
motion and takes one frame per segment (a random one while training, the segment's centre at
test time). So frames are dense where the content changes and sparse where it stands still.

What we do where the setting differs from the paper's:

- **Motion signal: the L2 norm of the difference of consecutive light feature rows**
  (``frames/light``). A cache holds no pixels, and the light view (MobileNetV2's pooled
  feature on the paper's backbones) is the cheapest look at every frame that it has. It is a
  feature difference, not an image difference: it responds to a change of what is in the
  frame more than to small pixel motion (MGSampler reports that feature differences work
  about as well as image differences; its Table 5). We use the features, not the light
  logits: a change of the light *class scores* would be a semantic signal (SCSampler's kind),
  whereas MGSampler's is a low-level one.
- **Cost: the light model on every frame** (``light_frames = length``, as SCSampler is
  charged), because that is what computing the signal reads here. MGSampler's own image
  differences cost next to nothing; on cached features this charge is the honest one.
- **Frame of motion ``m_t``.** ``m_t = ||x_t - x_{t-1}||_2`` for t >= 1 and ``m_0 = 0``;
  the curve ``c_t = sum_{s <= t} m_s / sum_s m_s`` rises from 0 to 1. For segment i of K its
  centre ``(i + 0.5) / K`` picks the first frame with ``c_t >= (i + 0.5) / K``.
- **Collisions.** One large jump can hold the motion of several segments, so two centres can
  pick the same frame. The picks are then pushed apart to the nearest free frames (each at
  least one after the previous, and at most ``length - K + i``), so K *distinct* frames are
  always returned, in temporal order.
- **No motion** (a constant video, total motion 0): the K uniform frames (segment centres of
  time, :func:`baselines.sampling.uniform_frames`). A video of at most K frames: all of them.
"""

from __future__ import annotations

import numpy as np

from adaframe_env.protocol import BaseAgent, RunConfig, VideoResult
from baselines.avgpool import pooled_scores
from baselines.sampling import uniform_frames


def motion(light: np.ndarray) -> np.ndarray:
    """(T,) motion per frame: 0 for the first, ``||x_t - x_{t-1}||_2`` for the others, from a
    video's (T, D) light feature rows (computed in float32: the cache stores float16)."""
    x = np.asarray(light, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"light features must be (frames, dim), got shape {x.shape}")
    m = np.zeros(len(x), dtype=np.float64)
    if len(x) > 1:
        m[1:] = np.linalg.norm(np.diff(x, axis=0), axis=1)
    return m


def motion_frames(m: np.ndarray, k: int) -> np.ndarray:
    """K distinct frames, in temporal order, at the segment centres of the cumulative motion
    ``m`` (see the module docstring); uniform frames when there is no motion."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    m = np.asarray(m, dtype=np.float64)
    length = len(m)
    if length == 0:
        raise ValueError("a video needs at least one frame")
    if k >= length:
        return np.arange(length)
    if not np.isfinite(m).all() or (m < 0).any():
        raise ValueError("motion must be finite and non-negative")
    total = m.sum()
    if total <= 0:
        return uniform_frames(length, k)
    curve = np.cumsum(m) / total
    picks = np.searchsorted(curve, (np.arange(k) + 0.5) / k, side="left")
    picks = np.minimum(picks, length - 1)
    for i in range(1, k):  # forward: each pick after the previous one
        picks[i] = max(picks[i], picks[i - 1] + 1)
    for i in range(k - 1, -1, -1):  # backward: room for the picks after it
        picks[i] = min(picks[i], length - k + i, picks[i + 1] - 1 if i + 1 < k else length - 1)
    return picks.astype(np.int64)


class MGSamplerAgent(BaseAgent):
    """``mgsampler-K``: light features of every frame -> motion curve -> K heavy frames at its
    segment centres -> AvgPooling of the heavy recognizer over them (training-free)."""

    def __init__(self, k: int):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"mgsampler-K: K must be an integer >= 1, got {k!r}")
        self.k = int(k)
        self.description = (
            f"MGSampler-style: {k} frames evenly spaced over the cumulative motion of the light "
            "features (light model on all frames), AvgPooling of the heavy model"
        )

    def hparams(self) -> dict:
        return {"k": self.k, "motion": "light_l2", "version": 1}

    def frames(self, store, video: int) -> np.ndarray:
        """The frames this agent looks at in ``video`` (a file index)."""
        return motion_frames(motion(store.video_frames("light", int(video))), self.k)

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        frames = [self.frames(store, int(v)) for v in videos]
        scores = pooled_scores(store, videos, frames)
        return [
            VideoResult(scores=s, frames=f, light_frames=int(store.length[v]))
            for s, f, v in zip(scores, frames, videos, strict=True)
        ]
