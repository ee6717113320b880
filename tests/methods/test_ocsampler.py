"""OCSampler (agents/ocsampler.py): the one-shot sampler over the light skim, trained with
one-step REINFORCE against uniform frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cfg

from adaframe_env.data.store import FeatureStore
from adaframe_env.harness.registry import make_agent
from adaframe_env.harness.runner import run_agent
from agents.ocsampler import OCSamplerAgent, plackett_luce_sample

SCHEDULE = dict(epochs=None, updates=200, eval_every=50, patience=0)


@pytest.fixture(scope="module")
def store(tiny_cache):
    return FeatureStore(tiny_cache)


def test_plackett_luce_log_prob_is_the_sequential_draw():
    # 3 candidates and a padding slot; draw 2: P(a, b) = p_a * p_b / (1 - p_a)
    scores = torch.tensor([[0.5, -1.0, 2.0, -1e9]])
    p = torch.softmax(scores[0, :3], 0).numpy()
    gen = torch.Generator().manual_seed(0)
    counts = {}
    for _ in range(3000):
        picks, log_prob = plackett_luce_sample(scores, torch.tensor([2]), gen)
        a, b = picks[0].tolist()
        assert a != b and 3 not in (a, b)  # distinct, never the padding
        assert log_prob.item() == pytest.approx(math.log(p[a] * p[b] / (1 - p[a])), abs=1e-5)
        counts[(a, b)] = counts.get((a, b), 0) + 1
    # the draws follow the same distribution (Gumbel top-k = sequential sampling)
    for (a, b), n in counts.items():
        assert n / 3000 == pytest.approx(p[a] * p[b] / (1 - p[a]), abs=0.03)


def test_plackett_luce_rows_with_fewer_draws_have_finite_gradients():
    scores = torch.tensor([[0.1, 0.2, 0.3], [1.0, -1e9, -1e9]], requires_grad=True)
    _, log_prob = plackett_luce_sample(scores, torch.tensor([2, 1]), torch.Generator())
    assert log_prob[1].item() == pytest.approx(0.0)  # one candidate, taken for sure
    log_prob.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_names_resolve_and_bad_settings_fail_on_one_line():
    agent = make_agent("ocsampler-4", run_cfg())
    assert isinstance(agent, OCSamplerAgent) and agent.k == 4 and agent.trainable
    assert make_agent("ocsampler-4", run_cfg(settings={"candidates": "0"})).settings.candidates == 0
    from adaframe_env.harness.registry import list_agents

    assert "ocsampler-K" in [usage for usage, _ in list_agents()]
    for settings, match in [({"reward": "accuracy"}, "reward=accuracy"),
                            ({"candidates": "3"}, "candidates=3 is fewer than"),
                            ({"entropy": "-1"}, "entropy=-1"),
                            ({"hidden": "0"}, "hidden=0"),
                            ({"width": "4"}, "no setting 'width'")]:  # fmt: skip
        with pytest.raises(ValueError, match=match) as e:
            make_agent("ocsampler-4", run_cfg(settings=settings))
        assert "\n" not in str(e.value)


def test_cost_is_the_skim_the_heavy_frames_and_the_network(store):
    agent = OCSamplerAgent(3, settings={"candidates": "8"})
    agent.setup(store, run_cfg())
    agent.buffers = {"mean": np.zeros(store.light_dim, np.float32),
                     "std": np.ones(store.light_dim, np.float32)}  # fmt: skip
    videos = store.videos("test")
    results = agent.evaluate(store, videos, run_cfg())
    per_frame = 2 * (store.light_dim * 128 + 2 * 128 * 128 + 128) / 1e9  # the scorer's layers
    assert agent.model.gflops_per_candidate() == pytest.approx(per_frame)
    for v, r in zip(videos, results, strict=True):
        t = int(store.length[v])
        assert r.light_frames == min(8, t) and r.extra_gflops == pytest.approx(
            per_frame * min(8, t)
        )
        # K distinct frames in temporal order, among the candidates (segment centres)
        assert len(r.frames) == min(3, t) and (np.diff(r.frames) > 0).all()
        assert set(r.frames) <= set((2 * np.arange(8) + 1) * t // 16 if t > 8 else range(t))
        assert r.scores == pytest.approx(
            torch.softmax(torch.from_numpy(store.logits(v, r.frames).astype(np.float32)), -1)
            .mean(0).numpy(), abs=1e-5)  # fmt: skip


def test_trains_beats_random_charges_by_the_rule_and_round_trips(
    harness_env, single_torch_thread, tmp_path
):
    cache, out = harness_env
    cfg = run_cfg(budget=5, **SCHEDULE)
    (row,) = run_agent("ocsampler-5", str(cache), cfg, out, tmp_path / "ck")
    (rand,) = run_agent("random", str(cache), run_cfg(budget=5), out)
    assert row["map"] > rand["map"]  # the same K, the tiny cache's test split

    # (1) it trains: rows every 50 updates, the sampled frames' reward over uniform rises
    ckpt = Path(row["checkpoint"])
    curves = json.loads((ckpt / "curves.json").read_text())["rows"]
    assert [r["update"] for r in curves] == [50, 100, 150, 200]
    assert curves[-1]["advantage"] > curves[0]["advantage"] and curves[-1]["advantage"] > 0
    assert curves[-1]["entropy"] < curves[0]["entropy"]
    assert (ckpt / "curves.png").exists()

    # (3) GFLOPs: distinct heavy frames, the skimmed light frames and the scorer
    records = json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())
    store = FeatureStore(cache)
    lengths = dict(zip(store.video_id, store.length, strict=True))
    per_frame = 2 * (store.light_dim * 128 + 2 * 128 * 128 + 128) / 1e9
    for r in records:
        skim = min(32, int(lengths[r["id"]]))
        assert r["light_frames"] == skim and r["frames"] == min(5, lengths[r["id"]])
        charged = (r["frames"] * row["gflops_per_frame"]
                   + skim * (row["light_gflops_per_frame"] + per_frame))  # fmt: skip
        assert r["gflops"] == pytest.approx(charged, rel=1e-9)

    # (4) save/load round trip: identical frames and scores
    trained = make_agent("ocsampler-5", cfg)
    trained.setup(store, cfg)
    trained.load(ckpt)
    fresh = make_agent("ocsampler-5", cfg)
    fresh.setup(store, cfg)
    fresh.load(ckpt)
    videos = store.videos("test")
    a, b = trained.evaluate(store, videos, cfg), fresh.evaluate(store, videos, cfg)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.frames, y.frames) and np.array_equal(x.scores, y.scores)
    assert [list(x.frames) for x in a] == [r["frame_indices"] for r in records]


def test_same_seed_same_model(store, single_torch_thread):
    def flat(model):
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    weights = []
    for _ in range(2):
        agent = OCSamplerAgent(3)
        cfg = run_cfg(budget=3, epochs=None, updates=20, eval_every=10, patience=0)
        agent.setup(store, cfg)
        initial = flat(agent.model)
        agent.fit(store, store.videos("train"), cfg)
        weights.append(flat(agent.model))
        assert not torch.equal(initial, weights[-1])  # it did learn something
    assert torch.equal(weights[0], weights[1])
