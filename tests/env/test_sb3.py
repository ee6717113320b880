"""The SB3 VecEnv adapter, and SB3 PPO learning on the env (the README example)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from adaframe_env.sb3 import SB3VecEnv, make_sb3_env
from adaframe_env.vector_env import AdaFrameVectorEnv


def test_adapter_follows_sb3_conventions(tiny_cache):
    venv = SB3VecEnv(AdaFrameVectorEnv(3, data=tiny_cache, budget=3, stop_action=True))
    obs = venv.reset()
    assert set(obs) == set(venv.observation_space.spaces)
    assert obs["probs"].shape == (3, venv.observation_space["probs"].shape[0])
    assert len(venv.reset_infos) == 3 and "video_id" in venv.reset_infos[0]
    a = np.array([[0.5, 0.0], [0.5, 0.0], [0.5, 1.0]], np.float32)  # env 2 stops
    obs, rewards, dones, infos = venv.step(a)
    assert rewards.dtype == np.float32 and list(dones) == [False, False, True]
    assert infos[2]["TimeLimit.truncated"] is False  # terminated by stop
    term = infos[2]["terminal_observation"]
    assert term["step"][0] == pytest.approx(1 / 3)  # the stop step observed nothing new
    assert obs["step"][2, 0] == pytest.approx(1 / 3)  # already the next episode's first obs
    assert "terminal_observation" not in infos[0]
    obs, rewards, dones, infos = venv.step(a * [1, 0])
    assert list(dones) == [True, True, False]
    assert infos[0]["TimeLimit.truncated"] is True  # the budget was used
    assert infos[0]["terminal_observation"]["step"][0] == pytest.approx(1.0)
    np.testing.assert_allclose(obs["step"][:2, 0], 1 / 3)
    assert "is_correct" in infos[0]
    assert venv.get_attr("budget") == [3, 3, 3]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 3
    venv.close()


def test_adapter_rejects_other_envs():
    with pytest.raises(TypeError, match="AdaFrameVectorEnv"):
        SB3VecEnv(gym.make_vec("CartPole-v1", num_envs=2))


@pytest.mark.usefixtures("env_vars")
def test_make_sb3_env_and_vec_check():
    venv = make_sb3_env("AdaFrame-FCVID-v0", num_envs=4, budget=3)
    venv.reset()
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(5):
        _, _, dones, infos = venv.step(rng.random((4, 1), np.float32))
        episodes += [info["episode"] for info, done in zip(infos, dones, strict=True) if done]
    assert len(episodes) == 8 and all(e["l"] == 2 for e in episodes)  # VecMonitor's records


def _evaluate(env, policy, rng) -> float:
    """Mean episode return over every video of env's split, once each."""
    returns = []
    for i in range(len(env.unwrapped.split_videos)):
        obs, _ = env.reset(options={"video": i})
        total, done = 0.0, False
        while not done:
            obs, r, te, tr, _ = env.step(policy(obs, rng))
            total += r
            done = te or tr
        returns.append(total)
    return float(np.mean(returns))


# The docs/environment.md example: look at frames at a price (frame_cost: ~0.02 reward per new frame)
# and stop when it is worth no more. On the tiny preset (cross-fitted train logits), PPO seeds 0-2
# reach a mean return of 0.298-0.322; the best fixed "n uniform frames, then stop" policy gets
# 0.248 (n = 4), the random-location policy that never stops 0.225.
PPO_ENV = {"budget": 10, "memory": False, "stop_action": True, "frame_cost": 0.0026}


def uniform_then_stop(n: int, budget: int):
    """Look at frame 0 (reset) and the centres of n - 1 equal segments, then stop."""

    def policy(obs, rng):
        used = int(round(obs["step"][0] * budget))
        if used >= n:
            return np.array([0.0, 1.0], np.float32)
        return np.array([(2 * used - 1) / (2 * max(n - 1, 1)), 0.0], np.float32)

    return policy


@pytest.mark.slow
def test_ppo_learns_and_beats_random(tiny_cache, single_torch_thread):
    """SB3 PPO (MultiInputPolicy) through the SB3 adapter on the tiny preset, against the best
    fixed uniform-then-stop policy and a random-location policy on the same (train) videos."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    kw = {"data": str(tiny_cache), **PPO_ENV}
    venv = gym.make_vec("AdaFrame-v0", num_envs=8, **kw)
    # SB3's Gaussian policy lives in [-1, 1]
    venv = gym.wrappers.vector.RescaleAction(venv, np.float32(-1), np.float32(1))
    model = PPO(
        "MultiInputPolicy", VecMonitor(SB3VecEnv(venv)), n_steps=128, batch_size=256,
        n_epochs=5, learning_rate=1e-3, gamma=0.9, seed=0,
        policy_kwargs={"net_arch": [64, 64]},
    )  # fmt: skip
    model.learn(40_000)

    env = gym.make("AdaFrame-v0", **kw)

    def ppo(obs, rng):
        action, _ = model.predict(obs, deterministic=True)
        return ((action + 1) / 2).astype(np.float32)

    def random_location(obs, rng):
        return np.array([rng.random(), 0.0], np.float32)  # never stops

    learned = _evaluate(env, ppo, np.random.default_rng(0))
    random = np.mean([_evaluate(env, random_location, np.random.default_rng(s)) for s in range(5)])
    budget = PPO_ENV["budget"]
    fixed = {n: _evaluate(env, uniform_then_stop(n, budget), None) for n in range(1, budget + 1)}
    assert learned > random + 0.04, (learned, random)
    # Where to look and when to stop, learned: better than any fixed count of uniform frames.
    assert learned > max(fixed.values()) + 0.02, (learned, fixed)
