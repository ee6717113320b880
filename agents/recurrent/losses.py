"""The training objective of paper Eq. 3-9: ``L_cls + L_utl - J_sel`` from one rollout."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adaframe_env.rewards import episode_rewards
from agents.recurrent.network import AdaFrameSettings
from agents.recurrent.rollout import Rollout


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``R_t = sum_{i>=0} gamma^i r_{t+i}`` along axis 1 (paper Eq. 6)."""
    out = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out


def losses(r: Rollout, s: AdaFrameSettings,
           looking_steps: float | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """``L_cls``, ``L_utl``, ``J_sel`` (Eq. 3, 7, 9) and the total ``L_cls + L_utl - J_sel``,
    plus the episode rewards (from the agent's own scores, Eq. 4) for logging.

    With a stop policy, only the steps an episode was still looking count: rewards after its
    stop are 0, ``L_cls`` is taken at the stop step, and ``J_sel`` adds the log-probability of
    each stop-or-continue decision (weighted by the same advantage ``R_t - V_t``). With
    ``perstep_loss``, ``L_cls`` averages over the looking steps; ``looking_steps`` replaces
    their count (a ``torchrun`` shard divides by its batch's, see ``_backward``).
    """
    device = r.logits.device
    y = torch.as_tensor(r.labels, device=device)
    b, k = r.logits.shape[:2]
    alive = r.alive if r.alive is not None else torch.ones(b, k, dtype=torch.bool, device=device)
    if s.perstep_loss:
        per_step = nn.functional.cross_entropy(
            r.logits.flatten(0, 1), y.repeat_interleave(k), reduction="none"
        ).view(b, k)
        l_cls = (per_step * alive).sum() / (alive.sum() if looking_steps is None else looking_steps)
    else:
        l_cls = nn.functional.cross_entropy(r.final_logits(), y)
    probs = torch.softmax(r.logits.detach(), -1).cpu().numpy()
    rewards = episode_rewards(s.reward, probs, r.labels)
    rewards[:, 1:] -= s.step_cost
    rewards *= alive.cpu().numpy()
    returns = torch.as_tensor(discounted_returns(rewards, s.gamma), dtype=torch.float32,
                              device=device)  # fmt: skip
    l_utl = (0.5 * (r.utility - returns) ** 2 * alive).sum(1).mean()
    advantage = (returns - r.utility).detach()[:, : k - 1]
    j_sel = torch.zeros((), device=device)
    if r.log_prob is not None:  # the location (or jump) of step t + 1, taken if still looking
        j_sel = j_sel + (advantage * r.log_prob * alive[:, 1:]).sum(1).mean()
    if r.stop_log_prob is not None:  # the decision at step t, made if looking at step t
        j_sel = j_sel + (advantage * r.stop_log_prob * alive[:, :-1]).sum(1).mean()
    total = l_utl - j_sel + (l_cls if l_cls.requires_grad else 0.0)
    return {"total": total, "cls": l_cls, "utl": l_utl, "sel": j_sel,
            "rewards": torch.as_tensor(rewards)}  # fmt: skip
