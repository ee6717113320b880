"""Agents that act in the env, as a user writes them (examples/env_agent.py,
examples/trainable_env_agent.py), and the short name a user's agent is shown under."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, run_cfg

from adaframe_env.cli.run import main
from adaframe_env.env import open_store
from adaframe_env.harness import plots
from adaframe_env.harness.registry import check_short_name, load_factory
from adaframe_env.harness.runner import format_row, run_agent
from adaframe_env.metrics import softmax

STRIDE = f"{REPO}/examples/env_agent.py:make_agent"
LEARNED = f"{REPO}/examples/trainable_env_agent.py:make_agent"


def records(row: dict) -> list[dict]:
    return json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())


def fresh_weights(cache, config) -> dict:
    """The initial weights of the trainable example for ``config`` (its seed)."""
    agent = load_factory(LEARNED)(config)
    agent.setup(open_store(cache), config)
    return agent.model.state_dict()


def named_uniform(config):
    """A user's factory whose agent calls itself by a registered method's name."""
    from baselines.policies import UniformPolicy

    agent = UniformPolicy()
    agent.name = "uniform"
    return agent


def test_stride_agent_looks_at_uniforms_frames_and_stops_once_sure(harness_env):
    cache, out = harness_env
    (row,) = run_agent(STRIDE, str(cache), run_cfg(epochs=None), out)
    (uniform,) = run_agent("uniform", str(cache), run_cfg(epochs=None), out)
    assert row["agent"] == "stride-sure" and row["agent_spec"] == STRIDE
    assert Path(row["json_path"]).name == "stride-sure-k5-seed0.json"
    store = open_store(cache)
    threshold = 0.6  # StrideUntilSure's default
    stopped_early = 0
    for mine, theirs in zip(records(row), records(uniform), strict=True):
        seen = mine["frame_indices"]
        assert seen == theirs["frame_indices"][: len(seen)]  # the same centres, in order
        v = int(np.flatnonzero(store.video_id == mine["id"])[0])
        # the recognizer's top probability after each prefix: sure only at the stop
        top = [softmax(store.logits(v, np.unique(seen[:t]))).mean(axis=0).max()
               for t in range(1, len(seen) + 1)]  # fmt: skip
        assert all(p < threshold for p in top[:-1])
        assert top[-1] >= threshold or len(seen) == 5
        stopped_early += len(seen) < 5
    assert stopped_early > 0 and row["frames_mean"] < uniform["frames_mean"]
    assert row["gflops_mean"] == pytest.approx(row["frames_mean"] * store.gflops_per_frame)


def test_trainable_agent_trains_saves_and_is_reused(harness_env, single_torch_thread, tmp_path):
    cache, out = harness_env
    config = run_cfg(epochs=None, updates=4, eval_every=2, seed=1)
    (row,) = run_agent(LEARNED, str(cache), config, out)
    assert row["agent"] == "learned-jumps" and row["trainable"] and not row["cached"]
    assert Path(row["json_path"]).name == "learned-jumps-k5-eval_every2-updates4-seed1.json"
    ckpt = Path(row["checkpoint"])
    curves = (ckpt / "curves.csv").read_text().splitlines()
    assert curves[0] == "update,loss,return,val_map,seconds" and len(curves) == 3  # updates 2, 4
    # training moved the weights away from the seed's initial ones
    trained = torch.load(ckpt / "model.pt", weights_only=True)["model"]
    start = fresh_weights(cache, config)
    assert any(not torch.equal(trained[k], start[k]) for k in start)

    (again,) = run_agent(LEARNED, str(cache), config, out)  # the checkpoint cache is hit
    assert again["cached"] and again["checkpoint"] == row["checkpoint"]
    assert again["map"] == row["map"] and records(again) == records(row)
    # a fresh training with the same seed (another checkpoint folder) gives the same agent
    (fresh,) = run_agent(LEARNED, str(cache), config, tmp_path / "o", tmp_path / "ckpts")
    assert not fresh["cached"] and records(fresh) == records(row)


def test_the_flag_wins_over_the_agents_name_in_files_table_and_plot(harness_env, monkeypatch):
    cache, out = harness_env
    (row,) = run_agent(STRIDE, str(cache), run_cfg(epochs=None), out, label="mine")
    assert row["agent"] == "mine" and row["agent_spec"] == STRIDE
    assert Path(row["json_path"]).name == "mine-k5-seed0.json"
    assert (Path(row["json_path"]).parent / "mine-k5-seed0.videos.json").exists()
    assert format_row(row).split()[0] == "mine"
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    plots.plot_map_vs_gflops([{**row, "_path": row["json_path"]}], out / "x.png", "tiny")
    legend = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert legend == ["mine"]


def test_a_short_name_does_not_change_the_checkpoint(harness_env):
    cache, out = harness_env
    config = run_cfg(epochs=None, updates=2, eval_every=2)
    (row,) = run_agent(LEARNED, str(cache), config, out)
    (renamed,) = run_agent(LEARNED, str(cache), config, out, label="jumps-b")
    assert renamed["cached"] and renamed["checkpoint"] == row["checkpoint"]
    assert Path(renamed["json_path"]).name.startswith("jumps-b-k5-")


@pytest.mark.parametrize(
    "name, says",
    [("uniform", "a registered agent"), ("adaframe-10", "a registered agent"),
     ("avgpool-u5", "a registered agent"), ("my/agent", "a short name is"),
     ("a b", "a short name is"), (".hidden", "a short name is"), ("x" * 49, "a short name is"),
     ("mine.py", "a short name is")],
)  # fmt: skip
def test_a_colliding_or_unsafe_name_is_refused_in_one_line(harness_env, capsys, name, says):
    cache, out = harness_env
    with pytest.raises(ValueError, match=says):
        check_short_name(name)
    rc = main(["--agent", STRIDE, "--name", name, "--dataset", str(cache), "--out", str(out),
               "--budget", "5", "--no-progress", "--no-plot"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and says in err
    assert "--name" in err  # the line names the fix
    assert not out.exists()  # refused before anything ran


def test_an_agents_own_colliding_name_and_a_name_for_a_registered_agent_are_refused(
    harness_env, monkeypatch
):
    cache, out = harness_env
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    with pytest.raises(ValueError, match="'uniform' is a registered agent"):
        run_agent("test_env_agents:named_uniform", str(cache), run_cfg(epochs=None), out)
    (row,) = run_agent(
        "test_env_agents:named_uniform", str(cache), run_cfg(epochs=None), out, label="u2"
    )
    assert row["agent"] == "u2"  # the flag wins, so it fixes a colliding attribute
    with pytest.raises(ValueError, match="only your own agent"):
        run_agent("uniform", str(cache), run_cfg(epochs=None), out, label="mine")
