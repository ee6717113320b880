"""The paper's rewards: the one kernel that the single env, the vector env and the agents
call (docs/design.md, section 2).

Notation: ``s_t`` are the class scores after ``t`` observed frames (probabilities, (..., C)),
``gt`` the true class, ``m_t = s_t[gt] - max_{c != gt} s_t[c]`` the margin (paper Eq. 4).
Step ``t > 1`` pays

- margin (paper Eq. 4): ``max(0, m_t - max_{t' < t} m_t')``; an episode's return telescopes to
  ``max_t m_t - m_1``: the agent is paid for raising the best margin seen so far;
- prediction (Table 5): ``s_t[gt]``;
- prediction_transition (Table 5): ``s_t[gt] - s_{t-1}[gt]``;

minus ``frame_cost * g_t``, the env's price per GFLOP times the GFLOPs the step spent (a new
frame's ``gflops_per_frame``, 0 for a revisit). There is no reward at ``t = 1`` (the frame
observed at reset).

The kernel comes in two forms side by side, the same formula in the same order of operations
(so the two envs agree to the bit): :func:`reward_of_step` on Python floats, for the single env's
step (a NumPy call per step would cost it more than the rest of the step), and
:func:`rewards_of_steps` on arrays, for the vector env and for :func:`episode_rewards`, which
agents with a classifier of their own (AdaFrame) use to score their episodes from their own
``s_t`` and the label that ``info["label"]`` gives on the train split.
"""

from __future__ import annotations

import numpy as np

REWARDS = ("margin", "prediction", "prediction_transition")


def check_reward_name(name: str) -> str:
    """``name`` if it is a known reward, else a ValueError listing the choices."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}")
    return name


# --------------------------------------------------------------------------- the kernel
def reward_of_step(
    kind: str,
    margin: float,
    gt_score: float,
    best_margin: float,
    prev_gt_score: float,
    frame_cost: float = 0.0,
    gflops: float = 0.0,
) -> float:
    """Reward of one step ``t > 1`` of one episode: ``m_t``, ``s_t[gt]`` after the step,
    ``max_{t'<t} m_t'`` and ``s_{t-1}[gt]`` before it, ``gflops`` it spent at ``frame_cost``
    per GFLOP."""
    if kind == "margin":
        reward = max(0.0, margin - best_margin)
    elif kind == "prediction":
        reward = gt_score
    else:
        reward = gt_score - prev_gt_score
    if frame_cost:
        reward -= frame_cost * gflops
    return reward


def rewards_of_steps(
    kind: str,
    margin: np.ndarray,
    gt_score: np.ndarray,
    best_margin: np.ndarray,
    prev_gt_score: np.ndarray,
    frame_cost: float = 0.0,
    gflops: np.ndarray | float = 0.0,
) -> np.ndarray:
    """:func:`reward_of_step` for arrays of episodes (any matching shapes)."""
    if kind == "margin":
        reward = np.maximum(0.0, margin - best_margin)
    elif kind == "prediction":
        reward = np.array(gt_score)  # a copy: callers may change the rewards in place
    else:
        reward = gt_score - prev_gt_score
    if frame_cost:
        reward = reward - frame_cost * np.asarray(gflops)
    return reward


# --------------------------------------------------------------------------- from scores
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


def episode_rewards(kind: str, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rewards of whole episodes: ``scores`` (B, T, C) over steps -> rewards (B, T), by the
    kernel (:func:`rewards_of_steps`), without a cost term.

    ``rewards[:, 0]`` is 0 (no reward for the first frame); ``rewards[:, t]`` is the reward of
    step ``t + 1`` in the paper's 1-based notation.
    """
    check_reward_name(kind)
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must be (batch, steps, classes), got shape {scores.shape}")
    labels = np.asarray(labels)[:, None]
    m, g = margin(scores, labels), gt_score(scores, labels)
    best_before = np.maximum.accumulate(m, axis=1)[:, :-1]
    out = np.zeros(scores.shape[:2], dtype=np.result_type(scores.dtype, np.float32))
    out[:, 1:] = rewards_of_steps(kind, m[:, 1:], g[:, 1:], best_before, g[:, :-1])
    return out


def step_reward(
    kind: str,
    scores: np.ndarray,
    labels: np.ndarray,
    best_margin: np.ndarray | None = None,
    prev_gt_score: np.ndarray | None = None,
) -> np.ndarray:
    """Reward of one step ``t > 1`` from the scores ``s_t`` after it (by the kernel).

    Args:
        kind: one of :data:`REWARDS`.
        scores: ``s_t`` (B, C) (or (C,)).
        labels: true classes (B,) (or a scalar).
        best_margin: ``max_{t' < t} m_t'`` (B,), needed by ``"margin"``.
        prev_gt_score: ``s_{t-1}[gt]`` (B,), needed by ``"prediction_transition"``.
    """
    check_reward_name(kind)
    if kind == "margin" and best_margin is None:
        raise ValueError("the margin reward needs best_margin (max of earlier margins)")
    if kind == "prediction_transition" and prev_gt_score is None:
        raise ValueError("the prediction_transition reward needs prev_gt_score (s_{t-1}[gt])")
    m = margin(scores, labels) if kind == "margin" else None
    g = gt_score(scores, labels)
    return rewards_of_steps(kind, m, g, best_margin, prev_gt_score)


def cost_penalty(frame_cost: float, gflops: np.ndarray) -> np.ndarray:
    """The cost term ``frame_cost * gflops`` (lambda per GFLOP) that the kernel subtracts."""
    return frame_cost * np.asarray(gflops, dtype=np.float64)
