"""The paper's rewards as pure, batched NumPy functions (DESIGN.md 2).

The environment computes them from its recognizer's running class scores; an agent with a
classifier of its own (AdaFrame) computes the same rewards from its own scores with
:func:`episode_rewards` and the label that ``info["label"]`` gives on the train split.

Notation: ``s_t`` are the class scores after ``t`` observed frames (probabilities, (..., C)),
``gt`` the true class.

- margin (paper Eq. 4): ``m_t = s_t[gt] - max_{c != gt} s_t[c]``, reward
  ``r_t = max(0, m_t - max_{t' < t} m_t')`` for ``t > 1``. The episode return telescopes to
  ``max_t m_t - m_1``: the agent is paid for raising the best margin seen so far.
- prediction (Table 5): ``r_t = s_t[gt]``.
- prediction_transition (Table 5): ``r_t = s_t[gt] - s_{t-1}[gt]``.

There is no reward at ``t = 1`` (the frame observed at reset). An optional cost term subtracts
``frame_cost * gflops`` of each step (:func:`cost_penalty`).
"""

from __future__ import annotations

import numpy as np

REWARDS = ("margin", "prediction", "prediction_transition")


def check_reward_name(name: str) -> str:
    """``name`` if it is a known reward, else a ValueError listing the choices."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}")
    return name


def gt_score(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``s[gt]``: the score of the true class, shape ``scores.shape[:-1]``."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    return np.take_along_axis(scores, labels[..., None].astype(np.intp), axis=-1)[..., 0]


def margin(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``m = s[gt] - max_{c != gt} s[c]`` (paper Eq. 4), shape ``scores.shape[:-1]``.

    ``scores`` (..., C) with C >= 2; ``labels`` broadcastable to ``scores.shape[:-1]``.
    """
    scores = np.asarray(scores)
    labels = np.broadcast_to(np.asarray(labels), scores.shape[:-1]).astype(np.intp)
    true = np.take_along_axis(scores, labels[..., None], axis=-1)
    others = scores.copy() if scores.dtype.kind == "f" else scores.astype(np.float64)
    np.put_along_axis(others, labels[..., None], -np.inf, axis=-1)
    return (true[..., 0] - others.max(axis=-1)).astype(np.result_type(scores.dtype, np.float32))


def step_reward(
    kind: str,
    scores: np.ndarray,
    labels: np.ndarray,
    best_margin: np.ndarray | None = None,
    prev_gt_score: np.ndarray | None = None,
) -> np.ndarray:
    """Reward of one step ``t > 1`` from the scores ``s_t`` after it.

    Args:
        kind: one of :data:`REWARDS`.
        scores: ``s_t`` (B, C) (or (C,)).
        labels: true classes (B,) (or a scalar).
        best_margin: ``max_{t' < t} m_t'`` (B,), needed by ``"margin"``.
        prev_gt_score: ``s_{t-1}[gt]`` (B,), needed by ``"prediction_transition"``.
    """
    check_reward_name(kind)
    if kind == "margin":
        if best_margin is None:
            raise ValueError("the margin reward needs best_margin (max of earlier margins)")
        return np.maximum(0.0, margin(scores, labels) - best_margin)
    s_gt = gt_score(scores, labels)
    if kind == "prediction":
        return s_gt
    if prev_gt_score is None:
        raise ValueError("the prediction_transition reward needs prev_gt_score (s_{t-1}[gt])")
    return s_gt - prev_gt_score


def episode_rewards(kind: str, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rewards of whole episodes: ``scores`` (B, T, C) over steps -> rewards (B, T).

    ``rewards[:, 0]`` is 0 (no reward for the first frame); ``rewards[:, t]`` is the reward of
    step ``t + 1`` in the paper's 1-based notation. Without a cost term; subtract
    :func:`cost_penalty` for that.
    """
    check_reward_name(kind)
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must be (batch, steps, classes), got shape {scores.shape}")
    labels = np.asarray(labels)[:, None]
    out = np.zeros(scores.shape[:2], dtype=np.result_type(scores.dtype, np.float32))
    if kind == "margin":
        m = margin(scores, labels)
        best_before = np.maximum.accumulate(m, axis=1)[:, :-1]
        out[:, 1:] = np.maximum(0.0, m[:, 1:] - best_before)
    elif kind == "prediction":
        out[:, 1:] = gt_score(scores, labels)[:, 1:]
    else:
        g = gt_score(scores, labels)
        out[:, 1:] = np.diff(g, axis=1)
    return out


def cost_penalty(frame_cost: float, gflops: np.ndarray) -> np.ndarray:
    """The cost term ``frame_cost * gflops`` (lambda per GFLOP) subtracted from a reward."""
    return frame_cost * np.asarray(gflops, dtype=np.float64)
