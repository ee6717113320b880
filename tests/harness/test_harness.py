"""The harness end to end on the tiny preset: JSON keys and values, cost accounting, the
checkpoint cache, determinism, the plug-in protocol and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_cfg

from adaframe_env.harness.registry import list_agents, make_agent
from adaframe_env.harness.runner import RESULT_KEYS, fingerprint, run_agent
from adaframe_env.protocol import Agent, BaseAgent

GPF = 7.82


def check_row(row, budget_max=None):
    for key in RESULT_KEYS:
        assert key in row, key
    saved = json.loads(Path(row["json_path"]).read_text())
    assert {k: saved[k] for k in RESULT_KEYS} == {k: row[k] for k in RESULT_KEYS}
    assert 0.0 <= row["map"] <= 1.0 and 0.0 <= row["top1"] <= 1.0
    assert row["frames_mean"] >= 1 and row["gflops_mean"] > 0
    records = json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())
    assert len(records) == row["n_videos"]
    for r in records:
        assert {"id", "label", "predicted", "frames", "exit_step", "locations"} <= set(r)
        assert r["frames"] == len(set(r["frame_indices"]))
        assert all(0.0 <= x <= 1.0 for x in r["locations"])
        if budget_max is not None:
            assert r["frames"] <= budget_max
        expected = (
            r["frames"] * row["gflops_per_frame"]
            + (r["memory_frames"] * row["light_gflops_per_frame"] if r["memory"] else 0.0)
            + r["light_frames"] * row["light_gflops_per_frame"]
        )
        # LSTMs add their own (tiny) network cost on top of the frames
        assert expected <= r["gflops"] <= expected + 0.01
    assert row["frames_mean"] == pytest.approx(np.mean([r["frames"] for r in records]))
    assert row["gflops_mean"] == pytest.approx(np.mean([r["gflops"] for r in records]))
    return records


@pytest.mark.parametrize(
    ("name", "budget_max", "memory"),
    [("avgpool-u10", 10, False), ("avgpool-g-u5", 5, True), ("scsampler-4", 4, False),
     ("oracle", 5, False), ("uniform", 5, False), ("random", 5, False)],
)  # fmt: skip
def test_training_free_agents(harness_env, name, budget_max, memory):
    cache, out = harness_env
    (row,) = run_agent(name, str(cache), run_cfg(), out)
    records = check_row(row, budget_max)
    # Far above chance (6 classes: top-1 0.17, mAP of random scores ~0.3) and well below what
    # every one of these agents gets on tiny seeds 0-2 (mAP >= 0.56, top-1 >= 0.42): a broken
    # proxy, recognizer or frame choice fails here, not only a crash.
    assert row["map"] > 0.5 and row["top1"] > 0.35, (row["map"], row["top1"])
    # AvgPooling-G fits one number (its fusion weight, on the val split); the rest fit nothing
    assert row["params"] == (1 if name.startswith("avgpool-g") else 0) and not row["cached"]
    assert all(r["memory"] == memory for r in records)
    assert row["gflops_per_frame"] == pytest.approx(GPF)
    # the memory's cost as charged: the 16-frame memory's, or nothing without one
    assert row["memory_gflops"] == pytest.approx(
        16 * row["light_gflops_per_frame"] if memory else 0
    )
    if name == "avgpool-u10":
        assert row["budget"] == 10  # the name fixes K, whatever --budget says
        assert row["gflops_mean"] == pytest.approx(row["frames_mean"] * GPF)
    if name.startswith("scsampler"):
        assert all(r["light_frames"] > 0 for r in records)
    if name == "oracle":
        assert row["bound"] is True
    if name == "uniform":
        assert all(r["exit_step"] == 5 for r in records)


def test_default_dataset_is_fcvid_env_var(harness_env):
    cache, out = harness_env  # $ADAFRAME_FCVID points at the tiny cache
    (row,) = run_agent("avgpool-u8", None, run_cfg(), out)
    assert row["cache_path"] == str(cache)


def test_deterministic_for_a_seed(harness_env):
    cache, out = harness_env
    a = run_agent("random", str(cache), run_cfg(seed=3), out / "a")[0]
    b = run_agent("random", str(cache), run_cfg(seed=3), out / "b")[0]
    c = run_agent("avgpool-r5", str(cache), run_cfg(seed=3), out / "c")[0]
    d = run_agent("avgpool-r5", str(cache), run_cfg(seed=3), out / "d")[0]
    for x, y in ((a, b), (c, d)):
        rx = json.loads(Path(x["json_path"]).with_name(x["records"]).read_text())
        ry = json.loads(Path(y["json_path"]).with_name(y["records"]).read_text())
        assert [r["frame_indices"] for r in rx] == [r["frame_indices"] for r in ry]
        assert x["map"] == y["map"]


@pytest.mark.slow
def test_lstm_g_trains_then_hits_the_cache(harness_env, monkeypatch, single_torch_thread):
    cache, out = harness_env
    (first,) = run_agent("lstm-g-u4", str(cache), run_cfg(), out)
    check_row(first, 4)
    assert not first["cached"] and first["params"] > 0 and first["checkpoint"]
    assert all(r["memory"] for r in json.loads(
        Path(first["json_path"]).with_name(first["records"]).read_text()))  # fmt: skip

    from agents.lstm import LSTMAgent

    def no_fit(*a, **k):
        raise AssertionError("fit() called although a checkpoint is cached")

    monkeypatch.setattr(LSTMAgent, "fit", no_fit)
    (second,) = run_agent("lstm-g-u4", str(cache), run_cfg(), out)
    assert second["cached"] and second["map"] == first["map"]
    # another seed is another checkpoint
    with pytest.raises(AssertionError, match="fit"):
        run_agent("lstm-g-u4", str(cache), run_cfg(seed=1), out)


@pytest.mark.slow
def test_sb3_ppo_end_to_end(harness_env, single_torch_thread, tmp_path):
    cache, out = harness_env
    (row,) = run_agent("sb3-ppo", str(cache), run_cfg(budget=4), out)
    records = check_row(row, 4)
    assert row["params"] > 0 and all(r["memory"] for r in records)
    assert all(1 <= r["exit_step"] <= 4 for r in records)
    # a model trained outside the harness is evaluated by path
    model = Path(row["checkpoint"]) / "model.zip"
    (ext,) = run_agent("sb3-ppo", str(cache), run_cfg(budget=4, extra={"model": str(model)}),
                       tmp_path / "ext")  # fmt: skip
    assert not ext["trainable"] and ext["map"] == row["map"]


def test_custom_agent_by_file_and_module_path(harness_env, monkeypatch):
    cache, out = harness_env
    (row,) = run_agent(f"{REPO}/examples/custom_agent.py:make_agent", str(cache), run_cfg(), out)
    check_row(row, 5)
    monkeypatch.syspath_prepend(str(REPO))
    (row2,) = run_agent("examples.custom_agent:make_agent", str(cache), run_cfg(), out)
    assert row2["map"] == row["map"] and row2["frames_mean"] == row["frames_mean"]


class _MuAgent(BaseAgent):
    description = "test agent using mu"
    uses_mu = True

    def evaluate(self, store, videos, config, mu=None):
        from adaframe_env.protocol import VideoResult

        k = 1 + int(mu * 4)
        return [VideoResult(scores=np.ones(store.num_classes) / store.num_classes,
                            frames=np.arange(min(k, store.length[v])), exit_step=k)
                for v in videos]  # fmt: skip


def make_mu_agent(config):
    return _MuAgent()


def test_mu_rows_only_for_agents_that_use_it(harness_env, monkeypatch):
    cache, out = harness_env
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    rows = run_agent("test_harness:make_mu_agent", str(cache), run_cfg(mu=(0.2, 0.7)), out)
    assert [r["mu"] for r in rows] == [0.2, 0.7]
    assert rows[0]["exit_step_mean"] < rows[1]["exit_step_mean"]
    (row,) = run_agent("avgpool-u5", str(cache), run_cfg(mu=(0.2, 0.7)), out)
    assert row["mu"] is None and row["config"]["mu"] == [0.2, 0.7]


def test_registry_names_and_errors():
    for name in ("avgpool-u10", "avgpool-r25", "avgpool-all", "lstm-u8", "avgpool-g-u10",
                 "lstm-g-u10", "scsampler-10", "random", "uniform", "oracle", "sb3-ppo",
                 "sb3-sac", "sb3-recurrentppo"):  # fmt: skip
        agent = make_agent(name, run_cfg())
        assert isinstance(agent, Agent) and agent.description, name
    assert make_agent("lstm-r8").strategy == "random"
    assert make_agent("avgpool-all").k is None
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("avgpool-x3")
    with pytest.raises(ValueError, match="no attribute"):
        make_agent("adaframe_env.metrics:nope")
    assert len(list_agents()) >= 7


def test_oracle_refuses_real_data(harness_env, make_cache_copy):
    import h5py

    copy = make_cache_copy("real.h5")
    with h5py.File(copy, "a") as f:
        del f["frames/relevance"]
        f.attrs["synthetic"] = False
    with pytest.raises(ValueError, match="synthetic caches only"):
        run_agent("oracle", str(copy), run_cfg(), harness_env[1])


def test_fingerprint_is_stable_and_sensitive(tiny_cache, make_cache_copy):
    import h5py

    copy = make_cache_copy()
    assert fingerprint(copy) == fingerprint(tiny_cache)
    with h5py.File(copy, "a") as f:
        f["videos/label"][0] = (f["videos/label"][0] + 1) % len(f["classes/name"])
    assert fingerprint(copy) != fingerprint(tiny_cache)


@pytest.mark.slow
def test_cli_list_and_run(harness_env):
    cache, out = harness_env
    run = [sys.executable, str(REPO / "benchmarks/run.py")]
    listed = subprocess.run([*run, "--list"], capture_output=True, text=True, check=True).stdout
    for word in ("avgpool", "lstm", "scsampler", "oracle", "sb3-", "random", "module:factory"):
        assert word in listed
    res = subprocess.run(
        [*run, "--agent", "avgpool-u5", "--dataset", str(cache), "--out", str(out),
         "--no-progress", "--mu", "0.2,0.5"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "avgpool-u5" in res.stdout and "mAP" in res.stdout
    folder = out / "tiny-proxy" if (out / "tiny-proxy").exists() else next(out.iterdir())
    assert (folder / "avgpool-u5-seed0.json").exists()
    assert (folder / "map_vs_gflops.png").stat().st_size > 1000
    bad = subprocess.run([*run, "--agent", "nope-3", "--dataset", str(cache)],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "unknown agent" in bad.stderr


def test_run_agent_leaves_the_callers_config_alone(harness_env):
    cache, out = harness_env
    config = run_cfg(budget=7)
    (row,) = run_agent("avgpool-u3", str(cache), config, out)
    assert row["budget"] == 3  # the name fixes K for the run ...
    assert config.budget == 7  # ... without changing the caller's config


@pytest.mark.parametrize("agent", ["nope", "avgpool-u0", "no_such_module.x:make"])
def test_run_py_reports_bad_agents_in_one_line(harness_env, agent, capsys):
    from adaframe_env.cli import run as run_py

    cache, out = harness_env
    assert run_py.main(["--agent", agent, "--dataset", str(cache), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaframe run: ") and "\n" not in err and "Traceback" not in err


def test_random_policy_draws_differ_between_evaluation_batches():
    from baselines.policies import RandomPolicy

    policy, config = RandomPolicy(), run_cfg(seed=3)
    obs = {"probs": np.zeros((4, 2), np.float32)}
    policy.begin(4, config)
    first = policy.act(obs, 1, config)
    policy.begin(4, config)
    second = policy.act(obs, 1, config)
    assert not np.allclose(first, second)
    again = RandomPolicy()
    again.begin(4, config)
    assert np.array_equal(again.act(obs, 1, config), first)  # reproducible for a seed


def test_sb3_agent_maps_rescaled_actions_back_to_locations():
    from gymnasium import spaces

    from agents.sb3_agents import SB3Agent

    class FakeModel:  # acts like a policy trained through RescaleAction to [-1, 1]
        action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.array([[-1.0], [0.0], [1.0]], np.float32), None

    agent = SB3Agent("ppo")
    agent.model = FakeModel()
    agent.begin(3, run_cfg())
    locations = agent.act({"probs": np.zeros((3, 2), np.float32)}, 1, run_cfg())
    assert np.allclose(locations.ravel(), [0.0, 0.5, 1.0])


def _bare_cache_env(tmp_path):
    """Environment for run.py with no real data configured and an empty per-user cache."""
    env = dict(os.environ)
    for var in ("ADAFRAME_FCVID", "ADAFRAME_ACTIVITYNET", "ADAFRAME_DATA"):
        env.pop(var, None)
    env["ADAFRAME_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.mark.slow
def test_unknown_agent_fails_before_any_data_is_generated(tmp_path):
    env = _bare_cache_env(tmp_path)
    bad = subprocess.run([sys.executable, str(REPO / "benchmarks/run.py"), "--agent", "nope"],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "unknown agent 'nope'" in bad.stderr
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.h5"))


@pytest.mark.slow
def test_no_progress_silences_the_generator_and_warnings_print_alone(
    tiny_cache, tmp_path, monkeypatch
):
    from adaframe_env.data.paths import proxy_path

    env = _bare_cache_env(tmp_path)
    run = [sys.executable, str(REPO / "benchmarks/run.py"), "--agent", "avgpool-u3",
           "--out", str(tmp_path / "results"), "--no-plot", "--no-progress"]  # fmt: skip
    # a preset that has to be generated first: no generator or recognizer progress bars
    made = subprocess.run([*run, "--dataset", "tiny"], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "synth tiny" not in made.stderr and "fit recognizer" not in made.stderr
    assert list((tmp_path / "cache").glob("tiny-proxy-*.h5"))
    # the default dataset falling back to its proxy warns in one line, without a source line
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path / "cache"))
    target = proxy_path("fcvid")
    target.write_bytes(tiny_cache.read_bytes())
    warned = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert warned.returncode == 0, warned.stderr
    lines = [ln for ln in warned.stderr.splitlines() if ln.strip()]
    assert lines == [f"SyntheticDataWarning: no real fcvid cache given (data=... or "
                     f"$ADAFRAME_FCVID); using the synthetic fcvid proxy at {target}"]  # fmt: skip


def test_summary_counts_backward_jumps_and_exit_steps(tiny_cache):
    from adaframe_env.env import open_store
    from adaframe_env.harness.runner import summarize
    from adaframe_env.protocol import VideoResult

    store = open_store(tiny_cache)
    videos = store.videos("test")[:2]
    scores = np.full(store.num_classes, 1.0 / store.num_classes)
    results = [VideoResult(scores, frames=np.array([0, 3, 1, 3]), exit_step=4),
               VideoResult(scores, frames=np.array([0, 1, 2]), exit_step=3)]  # fmt: skip
    metrics, records = summarize(store, videos, results, 1.0)
    assert metrics["backward_jump_share"] == 0.5 and metrics["exit_step_mean"] == 3.5
    assert [r["frames"] for r in records] == [3, 3]  # the revisit of frame 3 is free


@pytest.mark.slow
def test_run_py_seeds_runs_each_seed_and_aggregates(harness_env):
    cache, out = harness_env
    cmd = [sys.executable, str(REPO / "benchmarks/run.py"), "--agent", "random", "--budget", "3",
           "--dataset", str(cache), "--out", str(out), "--no-plot", "--no-progress"]  # fmt: skip
    res = subprocess.run([*cmd, "--seeds", "0,1"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    folder = next(out.iterdir())
    maps = [json.loads((folder / f"random-k3-seed{s}.json").read_text())["map"] for s in (0, 1)]
    assert maps[0] != maps[1]  # random draws differ by seed
    line = next(ln for ln in res.stdout.splitlines() if "2 seeds: 0, 1" in ln)
    assert f"mAP {100 * np.mean(maps):.1f} +- {100 * np.std(maps):.1f}" in line
    bad = subprocess.run([*cmd, "--seeds", "0,0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "distinct integers" in bad.stderr
