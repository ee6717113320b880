"""Baselines: frame choice, cost inputs and the shared recurrent core."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaframe_env.data.store import FeatureStore
from adaframe_env.protocol import RunConfig
from agents.recurrent.memory import MemoryAttention, MemoryLSTM, positional_encoding
from baselines.fixed import AvgPoolAgent
from baselines.oracle import OracleAgent, oracle_frames
from baselines.scsampler import SCSamplerAgent, salient_frames

CFG = RunConfig(budget=5, progress=False)


@pytest.fixture(scope="module")
def store(tiny_cache):
    return FeatureStore(tiny_cache)


def test_avgpool_all_uses_every_frame(store):
    vids = store.videos("test")
    res = AvgPoolAgent("all", None).evaluate(store, vids, CFG)
    assert [len(r.frames) for r in res] == list(store.length[vids])
    assert all(abs(r.scores.sum() - 1) < 1e-4 for r in res)


def test_avgpool_random_frames_do_not_depend_on_batching(store):
    vids = store.videos("test")
    agent = AvgPoolAgent("random", 4)
    whole = agent.evaluate(store, vids, CFG)
    split = agent.evaluate(store, vids[:3], CFG) + agent.evaluate(store, vids[3:], CFG)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(whole, split, strict=True))


def test_scsampler_picks_the_most_confident_light_frames(store):
    v = int(store.videos("test")[0])
    f = salient_frames(store, v, 3)
    light = store.video_frames("light_logits", v).astype(np.float32)
    p = np.exp(light - light.max(1, keepdims=True))
    conf = (p / p.sum(1, keepdims=True)).max(1)
    assert (
        set(f) == set(np.argsort(-conf, kind="stable")[:3])
        or np.isclose(np.sort(conf[f]), np.sort(conf)[-3:]).all()
    )
    (r,) = SCSamplerAgent(3).evaluate(store, np.array([v]), CFG)
    assert r.light_frames == store.length[v] and len(r.frames) == min(3, store.length[v])


def test_oracle_frames_come_from_the_relevant_half(store):
    for v in store.videos("test"):
        rel = store.video_frames("relevance", int(v)).astype(np.float32)
        f = oracle_frames(store, int(v), 4)
        assert (rel[f] >= np.median(rel)).all()
    assert OracleAgent(4).is_bound


def test_positional_encoding_distinguishes_positions():
    pe = positional_encoding(torch.tensor([[0.0, 0.5, 1.0]]), 16)
    assert pe.shape == (1, 3, 16)
    assert not torch.allclose(pe[0, 0], pe[0, 1]) and pe.abs().max() <= 1.0


@pytest.mark.parametrize("context", ["content", "encoded"])
def test_memory_attention_is_a_convex_combination(context):
    torch.manual_seed(0)
    att = MemoryAttention(8, 4, context)
    mem = torch.randn(2, 16, 4)
    keys = att.keys(mem, torch.linspace(0, 1, 16).expand(2, 16))
    u, beta = att(torch.randn(2, 8), mem, keys)
    assert torch.allclose(beta.sum(-1), torch.ones(2))
    # content: u_t sums the memory rows; encoded: the rows with their positions (where it looked)
    values = keys if context == "encoded" else mem
    assert torch.allclose(u, torch.einsum("bm,bmd->bd", beta, values))
    other = mem if context == "encoded" else keys
    assert not torch.allclose(u, torch.einsum("bm,bmd->bd", beta, other))


def test_memory_attention_rejects_an_unknown_context():
    with pytest.raises(ValueError, match="context='position'"):
        MemoryAttention(8, 4, "position")


@pytest.mark.parametrize("memory_dim", [None, 4])
def test_memory_lstm_sequence_matches_steps(memory_dim):
    torch.manual_seed(0)
    core = MemoryLSTM(3, 6, memory_dim).eval()
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 3])
    mem = torch.randn(2, 16, 4) if memory_dim else None
    pos = torch.linspace(0, 1, 16).expand(2, 16) if memory_dim else None
    last = core(x, lengths, mem, pos)
    keys = core.attention.keys(mem, pos) if memory_dim else None
    for b, n in enumerate(lengths.tolist()):
        state = core.initial_state(1)
        for t in range(n):
            state, _ = core.step(x[b : b + 1, t], state,
                                 mem[b : b + 1] if memory_dim else None,
                                 keys[b : b + 1] if memory_dim else None)  # fmt: skip
        assert torch.allclose(last[b], state[0][0], atol=1e-5)


@pytest.mark.parametrize(("length", "k"), [(100, 10), (7, 3), (5, 5), (3, 8)])
def test_jittered_uniform_frames_take_one_frame_per_segment(length, k):
    from baselines.sampling import jittered_uniform_frames, uniform_frames

    rng = np.random.default_rng(0)
    draws = np.array([jittered_uniform_frames(length, k, rng) for _ in range(200)])
    if k >= length:
        assert (draws == np.arange(length)).all()
        return
    seg = np.arange(k)
    assert ((draws >= seg * length // k) & (draws < (seg + 1) * length // k)).all()
    # the segment centres of uniform_frames lie in the same segments
    centres = uniform_frames(length, k)
    assert ((centres >= seg * length // k) & (centres < (seg + 1) * length // k)).all()
    if length >= 2 * k:  # segments of 2+ frames: the draws do vary
        assert len({tuple(d) for d in draws}) > 1


def test_lstm_g_context_is_a_setting_and_the_default_keeps_old_keys():
    from agents.lstm import LSTMAgent

    default = LSTMAgent("uniform", 10, global_memory=True).hparams()
    encoded = LSTMAgent("uniform", 10, global_memory=True, settings={"context": "encoded"})
    assert "context" not in default  # checkpoints trained before the setting existed stay valid
    assert encoded.hparams()["context"] == "encoded"
    assert encoded.model is None and encoded.settings.context == "encoded"
