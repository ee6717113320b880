"""The shared recurrent core's readouts, the LSTM baseline built on it, and ``--set`` options."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from helpers import REPO, run_cfg

from adaframe_env.harness.registry import make_agent
from adaframe_env.harness.runner import run_agent
from adaframe_env.protocol.settings import apply_settings, parse_settings
from agents.lstm import LSTMSettings
from agents.recurrent.memory import Readout


# ------------------------------------------------------------------ readouts
def _pbar(b=3, c=5):
    return torch.softmax(torch.randn(b, c), -1)


def test_residual_readout_starts_as_avgpooling_and_learns_a_correction():
    torch.manual_seed(0)
    readout = Readout(8, 5, "residual", dropout=0.5).train()
    h, pbar = torch.randn(3, 8), _pbar()
    assert torch.equal(readout(h, pbar), torch.log(pbar))  # zero-initialized correction
    readout.fc.bias.data.fill_(0.25)
    assert torch.allclose(readout.eval()(h, pbar), torch.log(pbar) + 0.25)


def test_plain_readout_ignores_the_recognizer_and_recognizer_readout_ignores_h():
    torch.manual_seed(0)
    plain = Readout(8, 5, "plain").eval()
    h, pbar = torch.randn(3, 8), _pbar()
    assert torch.allclose(plain(h, pbar), plain.fc(h)) and torch.equal(plain(h), plain.fc(h))
    recognizer = Readout(8, 5, "recognizer")
    assert torch.equal(recognizer(h, pbar), recognizer(torch.zeros(3, 8), pbar))
    with pytest.raises(ValueError, match="needs the recognizer's probabilities"):
        recognizer(h)
    with pytest.raises(ValueError, match="readout='mean'.*residual, plain, recognizer"):
        Readout(8, 5, "mean")


# ------------------------------------------------------------------ --set
def test_parse_and_apply_settings_convert_types_and_name_the_fix():
    assert parse_settings(["readout=plain", "hidden=32", "readout=residual"]) == {
        "readout": "residual", "hidden": "32"}  # fmt: skip
    with pytest.raises(ValueError, match="write key=value"):
        parse_settings(["readout"])
    s = apply_settings(LSTMSettings(), {"hidden": "32", "dropout": "0.1"}, "lstm")
    assert (s.hidden, s.dropout, s.readout) == (32, 0.1, "residual")

    @dataclasses.dataclass(frozen=True)
    class Flags:
        on: bool = False

    assert apply_settings(Flags(), {"on": "yes"}, "x").on is True
    with pytest.raises(ValueError, match="expected a bool"):
        apply_settings(Flags(), {"on": "maybe"}, "x")
    with pytest.raises(ValueError, match="no setting 'hiden'; its settings: hidden=256"):
        apply_settings(LSTMSettings(), {"hiden": "3"}, "lstm")
    with pytest.raises(ValueError, match="expected a int"):
        apply_settings(LSTMSettings(), {"hidden": "big"}, "lstm")
    with pytest.raises(ValueError, match="readout=avg: choose one of"):
        apply_settings(LSTMSettings(), {"readout": "avg"}, "lstm")
    with pytest.raises(ValueError, match="is AvgPooling; run avgpool-uK"):
        apply_settings(LSTMSettings(), {"readout": "recognizer"}, "lstm")


def test_set_is_refused_by_agents_without_settings():
    with pytest.raises(ValueError, match="agent 'avgpool-u4' takes no settings"):
        make_agent("avgpool-u4", run_cfg(settings={"readout": "plain"}))


# ------------------------------------------------------------------ the LSTM baseline
def test_untrained_residual_lstm_is_avgpooling(harness_env, single_torch_thread):
    cache, out = harness_env
    # an optimizer that never moves the weights (lr 0; a schedule is at least one epoch)
    (lstm,) = run_agent("lstm-u4", str(cache), run_cfg(settings={"lr": "0"}), out)
    (avg,) = run_agent("avgpool-u4", str(cache), run_cfg(), out)
    assert lstm["map"] == pytest.approx(avg["map"]) and lstm["top1"] == avg["top1"]


@pytest.mark.slow
def test_settings_are_part_of_the_run_and_of_the_checkpoint(harness_env, single_torch_thread):
    cache, out = harness_env
    (default,) = run_agent("lstm-u4", str(cache), run_cfg(), out)
    (plain,) = run_agent("lstm-u4", str(cache), run_cfg(settings={"readout": "plain"}), out)
    assert default["hparams"]["readout"] == "residual" and plain["hparams"]["readout"] == "plain"
    assert plain["settings"] == {"readout": "plain"} and "readout_plain" in plain["run"]
    assert not plain["cached"] and plain["checkpoint"] != default["checkpoint"]
    assert plain["json_path"] != default["json_path"]


@pytest.mark.slow
def test_run_py_set_option(harness_env):
    cache, out = harness_env
    cmd = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--dataset", str(cache),
           "--out", str(out), "--no-plot", "--no-progress", "--epochs", "1"]  # fmt: skip
    ok = subprocess.run(cmd + ["--agent", "lstm-u3", "--set", "readout=plain"],
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "lstm-u3 readout=plain" in ok.stdout
    bad = subprocess.run(cmd + ["--agent", "lstm-u3", "--set", "readuot=plain"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "no setting 'readuot'" in bad.stderr
    malformed = subprocess.run(cmd + ["--agent", "lstm-u3", "--set", "plain"],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert malformed.returncode == 2 and "write key=value" in malformed.stderr
