"""AdaFrame: the losses on a hand-made case, Algorithm 2 on scripted utilities, batched
inference through the env, checkpoints, and a short training run on the tiny preset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cfg

from adaframe_env.build.synth import preset, synthesize
from adaframe_env.env import open_store
from adaframe_env.harness.registry import make_agent
from adaframe_env.harness.runner import run_agent
from agents.adaframe import AdaFrameAgent
from agents.recurrent import (
    AdaFrameSettings,
    Rollout,
    discounted_returns,
    lookahead_exit,
    losses,
)


# ------------------------------------------------------------------ losses
def test_discounted_returns_include_the_current_step():
    r = np.array([[0.0, 0.4, 0.0, 1.0]])
    expected = [0.9 * 0.4 + 0.9**3, 0.4 + 0.9**2, 0.9, 1.0]
    assert np.allclose(discounted_returns(r, 0.9), [expected])


def test_loss_terms_on_a_hand_made_episode():
    # label 0; probabilities per step (0.5, 0.5), (0.7, 0.3), (0.6, 0.4): margins 0, 0.4, 0.2,
    # margin rewards 0, 0.4, 0 (the margin fell), returns 0.36, 0.4, 0 with gamma 0.9
    probs = torch.tensor([[[0.5, 0.5], [0.7, 0.3], [0.6, 0.4]]])
    utility = torch.tensor([[0.1, 0.2, 0.3]], requires_grad=True)
    log_prob = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    r = Rollout(logits=torch.log(probs).requires_grad_(), utility=utility, log_prob=log_prob,
                location=torch.zeros(1, 3), frames=np.zeros((1, 3), int), labels=np.array([0]))  # fmt: skip
    terms = losses(r, AdaFrameSettings())
    assert terms["rewards"].numpy()[0] == pytest.approx([0.0, 0.4, 0.0])
    assert terms["cls"].item() == pytest.approx(-math.log(0.6))
    assert terms["utl"].item() == pytest.approx(0.5 * ((0.1 - 0.36) ** 2 + 0.2**2 + 0.3**2))
    assert terms["sel"].item() == pytest.approx((0.36 - 0.1) * -1.0 + (0.4 - 0.2) * -2.0)
    total = terms["cls"] + terms["utl"] - terms["sel"]
    assert terms["total"].item() == pytest.approx(total.item())
    terms["total"].backward()
    # REINFORCE: the advantage is a constant for the policy (no gradient into the utility
    # through J_sel), and pushes up log-probabilities of better-than-expected actions
    assert log_prob.grad.numpy()[0] == pytest.approx([-0.26, -0.2])
    assert utility.grad.numpy()[0] == pytest.approx([0.1 - 0.36, 0.2 - 0.4, 0.3])


def test_perstep_loss_and_other_rewards():
    probs = torch.tensor([[[0.5, 0.5], [0.7, 0.3], [0.6, 0.4]]])
    r = Rollout(logits=torch.log(probs), utility=torch.zeros(1, 3), log_prob=torch.zeros(1, 2),
                location=torch.zeros(1, 3), frames=np.zeros((1, 3), int), labels=np.array([0]))  # fmt: skip
    per = losses(r, AdaFrameSettings(perstep_loss=True))["cls"].item()
    assert per == pytest.approx(-np.mean(np.log([0.5, 0.7, 0.6])))
    pt = losses(r, AdaFrameSettings(reward="prediction_transition"))["rewards"].numpy()
    assert pt[0] == pytest.approx([0.0, 0.2, -0.1])


# ------------------------------------------------------------------ Algorithm 2
@pytest.mark.parametrize(
    ("utility", "mu", "budget", "exit_step"),
    [
        # p = K/2 + 1 = 3 for mu < 0.7: the third step more than mu below the running max exits
        ([-0.5, -0.5, -0.5, -0.5], 0.2, 4, 3),
        ([0.5, 0.2, 0.1, 0.0], 0.2, 4, 4),
        ([0.1, 0.5, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.5, 10, 9),
        ([0.1, 0.5, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.2, 10, 9),
        ([0.1, 0.5, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.1, 10, 9),
        ([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.1, 10, 7),
        # a drop of exactly mu does not count (strict >)
        ([0.5, 0.3, 0.3, 0.3], 0.2, 4, 4),
        ([0.5, 0.25, 0.25, 0.25], 0.2, 4, 4),
        ([0.5, 0.2, 0.2, 0.2], 0.2, 4, 4),
        # mu >= 0.7: p = K, so only K counted steps (the first below -mu) exit before step K
        ([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.7, 10, 10),
        ([-1.0, -1.0, -1.0, -1.0], 0.7, 4, 4),
        # utilities that never fall exit at K
        ([0.1, 0.2, 0.3, 0.4, 0.5], 0.0, 5, 5),
    ],
)  # fmt: skip
def test_lookahead_exit_follows_algorithm_2(utility, mu, budget, exit_step):
    assert lookahead_exit(np.array([utility]), mu, budget)[0] == exit_step


def test_lookahead_exit_is_per_video_in_a_batch():
    u = np.array([[-0.5, -0.5, -0.5, -0.5], [0.5, 0.2, 0.1, 0.0], [0.9, 0.1, 0.1, 0.1]])
    assert lookahead_exit(u, 0.2, 4).tolist() == [3, 4, 4]
    # mu = 0.05 with K = 4: p = 3; video 2 counts at steps 2, 3, 4 -> exits at 4
    assert lookahead_exit(u, 0.05, 4).tolist() == [3, 4, 4]


# ------------------------------------------------------------------ settings and registry
def test_names_settings_and_their_errors():
    assert make_agent("adaframe-7").k == 7
    assert make_agent("adaframe", run_cfg(budget=4)).k == 4
    agent = make_agent(
        "adaframe-5", run_cfg(settings={"reward": "prediction", "memory_frames": "0"})
    )
    assert agent.settings.reward == "prediction" and agent.settings.memory_frames == 0
    assert agent.hparams()["reward"] == "prediction" and agent.uses_mu
    with pytest.raises(ValueError, match="reward=gain: choose one of margin"):
        make_agent("adaframe-5", run_cfg(settings={"reward": "gain"}))
    with pytest.raises(ValueError, match="policy=jump"):
        AdaFrameSettings(policy="jump")
    with pytest.raises(ValueError, match="context=position"):
        AdaFrameSettings(context="position")


def test_the_memory_context_is_part_of_the_key_only_with_a_memory():
    encoded, content = (
        make_agent("adaframe-5", run_cfg(settings={"context": c})).hparams()
        for c in ("encoded", "content")
    )
    assert encoded["context"] == "encoded" and encoded != content  # the default; a new model
    # without a memory the context does nothing: the same checkpoint either way
    no_memory = [
        make_agent("adaframe-5", run_cfg(settings={"context": c, "memory_frames": "0"})).hparams()
        for c in ("encoded", "content")
    ]
    assert no_memory[0] == no_memory[1] and "context" not in no_memory[0]


# ------------------------------------------------------------------ through the env
@pytest.fixture
def trained(tiny_cache, single_torch_thread):
    store = open_store(tiny_cache)
    agent = AdaFrameAgent(4)
    agent.name = "adaframe-4"
    config = run_cfg(epochs=2)
    agent.setup(store, config)
    agent.fit(store, store.videos("train"), config)
    return store, agent, config


@pytest.mark.slow
def test_batched_inference_shapes_order_and_exits(trained):
    store, agent, config = trained
    test = store.videos("test")
    whole = agent.evaluate(store, test, config, mu=0.2)
    assert len(whole) == len(test)
    for res in whole:
        assert res.scores.shape == (store.num_classes,) and res.memory
        assert 1 <= res.exit_step <= 4 and len(res.frames) == res.exit_step
        assert res.extra_gflops == pytest.approx(agent.model.step_gflops(16) * res.exit_step)
    # one video at a time (padded batches) gives the same episodes as the whole split
    for i in (0, len(test) - 1):
        (alone,) = agent.evaluate(store, test[i : i + 1], config, mu=0.2)
        assert np.array_equal(alone.frames, whole[i].frames)
        assert np.allclose(alone.scores, whole[i].scores, atol=1e-5)
    # without mu every video runs the full budget; frames are valid indices of its video
    for v, res in zip(test, agent.evaluate(store, test, config), strict=True):
        assert res.exit_step == 4 and np.all((0 <= res.frames) & (res.frames < store.length[v]))
        assert res.frames[0] == 0  # Algorithm 1: the first frame is at location 0


@pytest.mark.slow
def test_training_logs_curves_and_saves_them(trained, tmp_path):
    _, agent, _ = trained
    # epochs=2 on the tiny preset: one batch of its 48 train videos per pass, val every pass
    assert [h["update"] for h in agent.history] == [1, 2] and agent.log.kept_update == 2
    for h in agent.history:
        assert np.isfinite([h["loss_cls"], h["loss_utl"], h["j_sel"], h["val_map"]]).all()
        assert 1 <= h["frames"] <= 4 and 0 <= h["train_top1"] <= 1
    agent.save(tmp_path)
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "curves.csv").read_text().splitlines()[0].startswith("update,loss_cls")


@pytest.mark.slow
def test_checkpoint_round_trip_and_incompatible_cache(trained, tmp_path):
    store, agent, config = trained
    agent.save(tmp_path)
    again = AdaFrameAgent(4)
    again.setup(store, config)
    again.load(tmp_path)
    test = store.videos("test")
    a, b = agent.evaluate(store, test, config), again.evaluate(store, test, config)
    assert all(np.allclose(x.scores, y.scores) for x, y in zip(a, b, strict=True))

    other_path = tmp_path / "other.h5"
    synthesize(other_path, preset("tiny", seed=1, feature_dim=24), progress=False)
    other = AdaFrameAgent(4)
    other.setup(open_store(other_path), config)
    with pytest.raises(ValueError, match=r"trained on tiny-proxy .*features 32.*features 24"):
        other.load(tmp_path)


@pytest.mark.slow
def test_training_beats_the_random_env_agent(harness_env, single_torch_thread):
    cache, out = harness_env
    config = run_cfg(epochs=None, updates=20, eval_every=5, patience=2, mu=(0.7,))
    rows = run_agent("adaframe-5", str(cache), config, out)
    (random_row,) = run_agent("random", str(cache), run_cfg(budget=5), out)
    assert rows[0]["map"] > random_row["map"]
    assert rows[0]["frames_mean"] <= 5 and rows[0]["trainable"]


@pytest.mark.slow
@pytest.mark.parametrize("memory_frames", [0, 32])
def test_memory_frames_setting_changes_what_is_observed_and_charged(
    harness_env, single_torch_thread, memory_frames
):
    cache, out = harness_env
    config = run_cfg(epochs=1, settings={"memory_frames": str(memory_frames)})
    (row,) = run_agent("adaframe-3", str(cache), config, out)
    records = json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())
    light = row["light_gflops_per_frame"]
    for r in records:
        assert r["memory"] == (memory_frames > 0) and r["memory_frames"] == memory_frames
        assert r["gflops"] >= r["frames"] * row["gflops_per_frame"] + memory_frames * light


@pytest.mark.slow
def test_fit_trains_on_the_videos_it_is_given(tiny_cache, single_torch_thread, monkeypatch):
    import agents.recurrent.trainer as module

    store = open_store(tiny_cache)
    seen = []
    real = module.rollout

    def recording(net, env, positions, *args, **kwargs):
        if env.split == "train":
            seen.extend(env.split_videos[positions].tolist())
        return real(net, env, positions, *args, **kwargs)

    monkeypatch.setattr(module, "rollout", recording)
    agent = AdaFrameAgent(3, {"batch_size": "8"})
    config = run_cfg(epochs=1)
    agent.setup(store, config)
    subset = store.videos("train")[::3]
    agent.fit(store, subset, config)
    assert seen and set(seen) <= set(subset.tolist())
    with pytest.raises(ValueError, match="must be videos of the train split"):
        agent.fit(store, store.videos("test"), config)


@pytest.mark.slow
def test_loading_other_weights_drops_cached_rollouts_and_checks_hparams(
    trained, tmp_path, single_torch_thread
):
    store, agent, config = trained
    test = store.videos("test")
    before = agent.evaluate(store, test, config, mu=0.2)  # caches the rollout
    other = AdaFrameAgent(4)  # same hyperparameters, another seed
    other_config = run_cfg(epochs=2, seed=1)
    other.setup(store, other_config)
    other.fit(store, store.videos("train"), other_config)
    (tmp_path / "other").mkdir()
    other.save(tmp_path / "other")
    agent.load(tmp_path / "other")
    after = agent.evaluate(store, test, config, mu=0.2)
    expected = other.evaluate(store, test, config, mu=0.2)
    assert all(np.allclose(a.scores, e.scores) for a, e in zip(after, expected, strict=True))
    assert not all(np.allclose(a.scores, b.scores) for a, b in zip(after, before, strict=True))

    changed = AdaFrameAgent(4, {"reward": "prediction"})
    changed.setup(store, config)
    changed.fit(store, store.videos("train"), run_cfg(epochs=1))
    (tmp_path / "changed").mkdir()
    changed.save(tmp_path / "changed")
    with pytest.raises(ValueError, match=r"other hyperparameters \(reward"):
        agent.load(tmp_path / "changed")
