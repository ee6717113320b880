"""The checkpoint cache of :func:`fit_or_load` (docs/reliability.md, "Checkpoints and models"):
a damaged or stale folder is retrained with one warning and replaced; processes publishing
the same checkpoint at once all end with the one that won; partial folders of dead writers are
swept.

The agents here train in microseconds (a ``TorchAgent`` whose fit writes its seed into a
``Linear``, and a torch-free agent whose state is one JSON file), so the tests exercise the
cache, not training.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from adaframe_env.harness.runner import checkpoint_dir, fit_or_load
from adaframe_env.protocol import BaseAgent, RunConfig
from adaframe_env.protocol.agent import TorchAgent

FP = "fingerprint-a"


class FakeStore:
    """What fit_or_load asks of a store: the train split."""

    def videos(self, split):
        return np.arange(4)


class TinyTorch(TorchAgent):
    name = "tiny-torch"

    def __init__(self):
        self.fits = 0

    def setup(self, store, config):
        torch.manual_seed(config.seed)
        self.model = nn.Linear(3, 2)
        self.buffers = {}

    def hparams(self):
        return {"width": 3}

    def fit(self, store, train_videos, config):
        self.fits += 1
        with torch.no_grad():
            self.model.weight.fill_(config.seed + 1.0)
        self.buffers = {"mean": np.full(3, float(config.seed), np.float32)}


def run(agent, root, seed=0, fp=FP):
    config = RunConfig(seed=seed, progress=False)
    agent.setup(FakeStore(), config)
    return fit_or_load(agent, FakeStore(), config, fp, root)


def folder(root, seed=0, fp=FP) -> Path:
    config = RunConfig(seed=seed, progress=False)
    return checkpoint_dir(root, TinyTorch.name, TinyTorch().hparams(), config, fp)[0]


def leftovers(root: Path) -> list[str]:
    """Hidden entries of a checkpoint root (partials, moved-aside folders, a lock file)."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def assert_retrained_once(root, ckpt, reason: str):
    """The next run warns once (naming the folder and ``reason``), trains, and replaces the
    folder with a checkpoint the run after it loads."""
    agent = TinyTorch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached, _, where = run(agent, root)
    assert not cached and agent.fits == 1 and where == ckpt
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    (msg,) = messages
    assert str(ckpt) in msg and reason in msg and "retrain" in msg and "\n" not in msg, msg
    assert issubclass(caught[0].category, UserWarning)
    again = TinyTorch()
    cached, _, _ = run(again, root)
    assert cached and again.fits == 0
    assert torch.equal(again.model.weight, torch.full((2, 3), 1.0))
    assert leftovers(root) == []


def test_a_finished_checkpoint_is_a_hit(tmp_path):
    first = TinyTorch()
    cached, _, ckpt = run(first, tmp_path)
    assert not cached and first.fits == 1 and (ckpt / "DONE.json").exists()
    second = TinyTorch()
    cached, _, _ = run(second, tmp_path)
    assert cached and second.fits == 0
    assert torch.equal(second.model.weight, first.model.weight)
    assert np.array_equal(second.buffers["mean"], first.buffers["mean"])
    assert leftovers(tmp_path) == []


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path):
    path.write_bytes(b"")


def _wrong_shape(path: Path):
    state = torch.load(path, weights_only=True)
    state["model"]["weight"] = torch.zeros(5, 3)
    torch.save(state, path)


def _no_model_key(path: Path):
    state = torch.load(path, weights_only=True)
    del state["model"]
    torch.save(state, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_truncate, "model.pt"), (_empty, "model.pt"), (_wrong_shape, "weight"),
     (_no_model_key, "'model'")],
    ids=["truncated", "empty", "wrong-shape", "no-model-key"],
)  # fmt: skip
def test_a_damaged_model_pt_is_retrained_with_one_warning(tmp_path, damage, reason):
    _, _, ckpt = run(TinyTorch(), tmp_path)
    damage(ckpt / "model.pt")
    assert_retrained_once(tmp_path, ckpt, reason)


def test_a_damaged_done_json_is_retrained(tmp_path):
    _, _, ckpt = run(TinyTorch(), tmp_path)
    (ckpt / "DONE.json").write_text('{"key": ')
    assert_retrained_once(tmp_path, ckpt, "DONE.json")


def test_a_folder_copied_from_another_cache_is_stale(tmp_path):
    """A checkpoint of another cache of the same dimensions, copied under this run's folder
    name: its model.pt loads, but its DONE.json records another key."""
    _, _, other = run(TinyTorch(), tmp_path, fp="fingerprint-b")
    ckpt = folder(tmp_path)
    os.rename(other, ckpt)
    assert_retrained_once(tmp_path, ckpt, "DONE.json")
    done = json.loads((ckpt / "DONE.json").read_text())
    assert done["key"]["data"] == FP


def test_a_folder_without_done_json_is_replaced(tmp_path):
    ckpt = folder(tmp_path)
    ckpt.mkdir()
    (ckpt / "model.pt").write_bytes(b"junk")
    assert_retrained_once(tmp_path, ckpt, "DONE.json")


# --------------------------------------------------------------------------- processes
class FileAgent(BaseAgent):
    """A torch-free trainable agent: its state is (seed, pid of the process that trained)."""

    name = "file-agent"
    trainable = True
    value = None

    def hparams(self):
        return {}

    def fit(self, store, train_videos, config):
        self.value = [config.seed, os.getpid()]

    def save(self, directory):
        (Path(directory) / "value.json").write_text(json.dumps(self.value))

    def load(self, directory):
        self.value = json.loads((Path(directory) / "value.json").read_text())


def _racer(root, rounds, barrier, index, results):
    warnings.simplefilter("ignore")  # the stale rounds warn in every process
    out = []
    for r in range(rounds):
        config = RunConfig(seed=r, progress=False)
        if r % 3 == 2:  # a stale folder (another cache's DONE.json) that every process replaces
            if index == 0:
                ckpt = checkpoint_dir(root, FileAgent.name, {}, config, FP)[0]
                ckpt.mkdir(parents=True)
                (ckpt / "value.json").write_text("[-1, -1]")
                (ckpt / "DONE.json").write_text(json.dumps({"key": {"data": "other"}}))
            barrier.wait()
        barrier.wait()
        agent = FileAgent()
        try:
            _, _, ckpt = fit_or_load(agent, FakeStore(), config, FP, root)
            out.append((r, agent.value, str(ckpt)))
        except Exception as e:  # noqa: BLE001 - reported to the parent
            out.append((r, repr(e), None))
    results.put((index, out))


@pytest.mark.slow
def test_processes_publishing_one_checkpoint_all_use_the_winner(tmp_path):
    n, rounds = 3, 120
    ctx = multiprocessing.get_context("fork")  # the racers use no torch: fork is safe
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(tmp_path, rounds, barrier, i, results))
             for i in range(n)]  # fmt: skip
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    for r in range(rounds):
        rows = [got[i][r] for i in range(n)]
        assert all(ckpt is not None for _, _, ckpt in rows), rows  # no process failed
        (ckpt,) = {c for _, _, c in rows}
        published = json.loads((Path(ckpt) / "value.json").read_text())
        assert published[0] == r
        # every process evaluates what is on disk: the winner's model, not its own
        assert all(value == published for _, value, _ in rows), (r, rows, published)
        done = json.loads((Path(ckpt) / "DONE.json").read_text())
        assert done["key"]["config"]["seed"] == r and done["key"]["data"] == FP
    assert leftovers(tmp_path) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.slow
@pytest.mark.parametrize("cached", [False, True], ids=["publish", "hit"])
def test_partial_folders_of_dead_writers_are_swept(tmp_path, cached):
    ckpt = folder(tmp_path)
    if cached:
        run(TinyTorch(), tmp_path)
    dead = tmp_path / f".{ckpt.name}.{_dead_pid()}.partial"
    alive = tmp_path / f".{ckpt.name}.{os.getppid()}.partial"  # a live writer's save in progress
    other = tmp_path / f".{folder(tmp_path, seed=1).name}.{_dead_pid()}.partial"  # not ours
    for p in (dead, alive, other):
        p.mkdir()
        (p / "model.pt").write_bytes(b"half")
    run(TinyTorch(), tmp_path)
    assert not dead.exists()
    assert alive.exists() and other.exists()


def test_a_finished_folder_that_does_not_load_is_replaced_when_publishing(tmp_path):
    """Another process's folder found at publish time is loaded (it won); if it does not
    load, it is replaced by this process's checkpoint."""
    from adaframe_env.harness.runner import publish_checkpoint

    _, _, ckpt = run(TinyTorch(), tmp_path)
    _truncate(ckpt / "model.pt")
    agent = TinyTorch()
    config = RunConfig(seed=0, progress=False)
    agent.setup(FakeStore(), config)
    agent.fit(FakeStore(), np.arange(4), config)
    key = checkpoint_dir(tmp_path, agent.name, agent.hparams(), config, FP)[1]
    done = json.loads((ckpt / "DONE.json").read_text())
    with pytest.warns(UserWarning, match="model.pt.*replacing it"):
        assert publish_checkpoint(agent, ckpt, key, done) is True
    again = TinyTorch()
    assert run(again, tmp_path)[0] and torch.equal(again.model.weight, agent.model.weight)
    assert leftovers(tmp_path) == []


AGENT_FILE = """
import numpy as np
import torch
from torch import nn

from adaframe_env.metrics import softmax
from adaframe_env.protocol import TorchAgent, VideoResult


class Tiny(TorchAgent):
    description = "first frame, a checkpointed Linear"

    def setup(self, store, config):
        self.bind(store)
        self.model = nn.Linear(3, 2)

    def fit(self, store, train_videos, config):
        print("FIT")

    def evaluate(self, store, videos, config, mu=None):
        frames = np.zeros(1, np.int64)
        return [VideoResult(scores=softmax(store.logits(v, frames)).mean(axis=0), frames=frames)
                for v in videos]


def make(config):
    return Tiny()
"""


@pytest.mark.slow
def test_the_command_line_prints_one_warning_line_and_retrains(tiny_cache, tmp_path):
    agent = tmp_path / "tiny_agent.py"
    agent.write_text(AGENT_FILE)
    cmd = [sys.executable, "-m", "adaframe_env.cli", "run", "--agent", f"{agent}:make",
           "--dataset", str(tiny_cache), "--checkpoints", str(tmp_path / "ck"), "--out",
           str(tmp_path / "out"), "--no-plot", "--no-progress"]  # fmt: skip

    def run_cli():
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return res

    first = run_cli()
    assert "FIT" in first.stdout
    (ckpt,) = (tmp_path / "ck").iterdir()
    _truncate(ckpt / "model.pt")
    second = run_cli()
    assert "FIT" in second.stdout and "cache hit" not in second.stdout
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(f"CheckpointWarning: checkpoint {ckpt} not used: model.pt: ")
    assert lines[0].endswith("; retraining (the new checkpoint replaces it)")
