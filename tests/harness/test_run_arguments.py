"""Arguments of a run are checked before anything runs (docs/reliability.md, "Arguments"):
bad schedules, a CUDA device on a machine without one, budgets beyond the longest video and
negative seeds are refused in one line, by ``adaframe run`` and by ``RunConfig`` /
``run_agent`` for API users; a schedule given is part of the run's file name."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import run_cfg

from adaframe_env.cli import run as run_py
from adaframe_env.env import open_store
from adaframe_env.harness.runner import run_agent, run_name
from adaframe_env.protocol import RunConfig


def cli(capsys, *args) -> tuple[int, str, str]:
    """``adaframe run ARGS`` in this process: (exit status, stdout, stderr); an argparse
    error's SystemExit is turned into its status."""
    try:
        rc = run_py.main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc: int, err: str) -> str:
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("adaframe run: "), err
    return err.rstrip("\n")


def written(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("epochs", ["0", "-1", "2.5"])
def test_cli_refuses_a_bad_schedule_in_one_line(harness_env, capsys, tmp_path, epochs):
    cache, out = harness_env
    rc, stdout, err = cli(capsys, "--agent", "lstm-u4", "--dataset", cache, "--out", out,
                          "--epochs=" + epochs, "--checkpoints", tmp_path / "ck", "--no-plot",
                          "--no-progress")  # fmt: skip
    line = one_line(rc, err)
    assert "--epochs" in line and repr(epochs) in line and ">= 1" in line, line
    assert stdout == "" and written(out) == [] and written(tmp_path / "ck") == []


@pytest.mark.parametrize("epochs", [0, -1, 2.5, True, "3"])
def test_run_config_refuses_a_bad_schedule(epochs):
    with pytest.raises(ValueError, match=r"RunConfig\.epochs must be an integer >= 1") as e:
        RunConfig(epochs=epochs)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"RunConfig\.epochs"):
        dataclasses.replace(RunConfig(), epochs=epochs)  # replace checks as construction does


def test_every_schedule_field_given_is_in_the_run_name():
    """One rule for every schedule field (RunConfig.SCHEDULE): given, it is in the name; left
    to the agent's default, the name is today's (existing results keep their file)."""
    assert RunConfig.SCHEDULE  # at least epochs
    for name in RunConfig.SCHEDULE:
        config = RunConfig(**{name: 3})
        assert config.schedule() == {name: 3}
        assert config.key()[name] == 3  # and in the checkpoint key
        run = run_name("lstm-u4", 4, None, 0, True, schedule=config.schedule())
        assert run == f"lstm-u4-{name}3-seed0"
    assert RunConfig().schedule() == {}
    assert run_name("lstm-u4", 4, None, 0, True, schedule={}) == "lstm-u4-seed0"
    assert run_name("sb3-ppo", 10, None, 1, False, schedule={"epochs": 2}) == (
        "sb3-ppo-k10-epochs2-seed1"
    )


def test_runs_of_different_schedules_land_in_different_files(harness_env, capsys):
    cache, out = harness_env
    common = ["--agent", "avgpool-u3", "--dataset", cache, "--out", out, "--no-plot",
              "--no-progress"]  # fmt: skip
    assert cli(capsys, *common)[0] == 0
    assert cli(capsys, *common, "--epochs", "3")[0] == 0
    folder = next(out.iterdir())
    assert sorted(p.name for p in folder.glob("*.json") if "videos" not in p.name) == [
        "avgpool-u3-epochs3-seed0.json", "avgpool-u3-seed0.json"]  # fmt: skip
    row = json.loads((folder / "avgpool-u3-epochs3-seed0.json").read_text())
    assert row["config"]["epochs"] == 3 and row["run"] == "avgpool-u3-epochs3-seed0"
    (api,) = run_agent("avgpool-u3", str(cache), run_cfg(epochs=2), out)
    assert api["run"] == "avgpool-u3-epochs2-seed0"


# --------------------------------------------------------------------------- devices
def no_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot be observed here")


CUDA_LINE = (
    "adaframe run: --device cuda: no CUDA device is available "
    "(torch.cuda.is_available() is False); use --device cpu"
)


@pytest.mark.parametrize("agent", ["avgpool-u5", "adaframe-3", "uniform"])
def test_cli_refuses_cuda_without_cuda_for_every_agent(harness_env, capsys, tmp_path, agent):
    no_cuda()
    cache, out = harness_env
    rc, stdout, err = cli(capsys, "--agent", agent, "--device", "cuda", "--dataset", cache,
                          "--out", out, "--checkpoints", tmp_path / "ck", "--no-progress")  # fmt: skip
    assert one_line(rc, err) == CUDA_LINE
    assert stdout == "" and written(out) == [] and written(tmp_path / "ck") == []


def test_run_agent_refuses_cuda_without_cuda(harness_env):
    no_cuda()
    cache, out = harness_env
    with pytest.raises(ValueError, match=r"no CUDA device is available") as e:
        run_agent("avgpool-u5", str(cache), run_cfg(device="cuda"), out)
    assert "\n" not in str(e.value)
    assert written(out) == []


# --------------------------------------------------------------------------- budgets
def longest(cache) -> int:
    return int(open_store(cache).length.max())


@pytest.mark.parametrize("how", ["--budget", "name"])
def test_cli_refuses_a_budget_beyond_the_longest_video(harness_env, capsys, tmp_path, how):
    cache, out = harness_env
    n = longest(cache)
    agent = ["--agent", "uniform", "--budget", "1000000000"] if how == "--budget" else [
        "--agent", f"lstm-u{n + 1}", "--epochs", "1"]  # fmt: skip
    rc, stdout, err = cli(capsys, *agent, "--dataset", cache, "--out", out,
                          "--checkpoints", tmp_path / "ck", "--no-progress")  # fmt: skip
    line = one_line(rc, err)
    assert str(cache) in line and f"at most {n}, the longest video's frame count" in line, line
    # refused before any data is trained on: no checkpoint, no result
    assert stdout == "" and written(out) == [] and written(tmp_path / "ck") == []


def test_run_agent_takes_the_longest_video_as_budget(harness_env):
    cache, out = harness_env
    n = longest(cache)
    (row,) = run_agent("uniform", str(cache), run_cfg(budget=n), out)
    assert row["budget"] == n
    with pytest.raises(ValueError, match=f"at most {n}, the longest video's frame count"):
        run_agent("uniform", str(cache), run_cfg(budget=n + 1), out)


@pytest.mark.parametrize("budget", [0, -3])
def test_run_config_refuses_a_budget_below_one(budget):
    with pytest.raises(ValueError, match=r"RunConfig\.budget must be an integer >= 1"):
        RunConfig(budget=budget)


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize(("option", "value"), [("--seed", "-1"), ("--seeds", "0,-1")])
def test_cli_names_the_option_of_a_negative_seed(harness_env, capsys, option, value):
    cache, out = harness_env
    rc, stdout, err = cli(capsys, "--agent", "uniform", f"{option}={value}", "--dataset", cache,
                          "--out", out, "--no-progress")  # fmt: skip
    line = one_line(rc, err)
    assert f"argument {option}:" in line and "non-negative" in line and value in line, line
    assert stdout == "" and written(out) == []


def test_run_config_refuses_a_negative_seed():
    with pytest.raises(ValueError, match=r"RunConfig\.seed must be a non-negative integer"):
        RunConfig(seed=-1)
