"""adaframe_env.rewards against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from adaframe_env import rewards

S = np.array(  # scores over 4 steps, 3 classes, true class 1
    [
        [0.5, 0.3, 0.2],  # m = 0.3 - 0.5 = -0.2
        [0.4, 0.4, 0.2],  # m = 0.0
        [0.45, 0.35, 0.2],  # m = -0.1 (worse than the best so far)
        [0.2, 0.7, 0.1],  # m = 0.5
    ]
)


def test_margin_and_gt_score():
    np.testing.assert_allclose(rewards.margin(S, 1), [-0.2, 0.0, -0.1, 0.5], atol=1e-12)
    np.testing.assert_allclose(rewards.gt_score(S, np.ones(4, int)), S[:, 1])
    batch = np.stack([S[0], S[3]])
    np.testing.assert_allclose(rewards.margin(batch, np.array([0, 1])), [0.2, 0.5])


def test_episode_rewards_by_hand():
    b = S[None]
    np.testing.assert_allclose(
        rewards.episode_rewards("margin", b, [1])[0], [0, 0.2, 0.0, 0.5], atol=1e-12
    )
    np.testing.assert_allclose(
        rewards.episode_rewards("prediction", b, [1])[0], [0, 0.4, 0.35, 0.7]
    )
    np.testing.assert_allclose(
        rewards.episode_rewards("prediction_transition", b, [1])[0],
        [0, 0.1, -0.05, 0.35],
        atol=1e-12,
    )
    # the margin return telescopes to max_t m_t - m_1
    assert rewards.episode_rewards("margin", b, [1]).sum() == pytest.approx(0.5 - (-0.2))


def test_step_reward_matches_episode_rewards():
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(5), size=(3, 6))
    labels = np.array([0, 2, 4])
    for kind in rewards.REWARDS:
        whole = rewards.episode_rewards(kind, scores, labels)
        m = rewards.margin(scores, labels[:, None])
        for t in range(1, 6):
            r = rewards.step_reward(
                kind,
                scores[:, t],
                labels,
                best_margin=m[:, :t].max(axis=1),
                prev_gt_score=rewards.gt_score(scores[:, t - 1], labels),
            )
            np.testing.assert_allclose(r, whole[:, t], atol=1e-12)


def test_cost_and_errors():
    np.testing.assert_allclose(rewards.cost_penalty(0.01, [7.82, 0.0]), [0.0782, 0.0])
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        rewards.check_reward_name("nope")
    with pytest.raises(ValueError, match="best_margin"):
        rewards.step_reward("margin", S[1], 1)
    with pytest.raises(ValueError, match="prev_gt_score"):
        rewards.step_reward("prediction_transition", S[1], 1)
    with pytest.raises(ValueError, match="batch, steps, classes"):
        rewards.episode_rewards("margin", S, [1])
