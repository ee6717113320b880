"""SB3 models on disk are data (docs/reliability.md, "Checkpoints and models"): the harness
reads ``policy.pth`` out of an SB3 zip with ``torch.load(weights_only=True)`` and rebuilds the
policy itself, so nothing in a ``model.zip`` is unpickled; a loaded model acts exactly like
the trained one; a model file that does not fit is one line naming it.

Training here is one short SB3 run (``epochs=1``): enough to move the weights off their
initialization, which is all these tests need.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cfg

from adaframe_env.env import open_store
from adaframe_env.harness.runner import run_agent

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_torch_thread")]
ALGOS = ("ppo", "sac", "recurrentppo")


class Payload:
    """Unpickling this creates ``path`` (a harmless stand-in for ``os.system``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def with_payload(src: Path, dest: Path, marker: Path) -> Path:
    """``src`` with one more ``:serialized:`` entry in its ``data``, which creates ``marker``
    when SB3 loads the zip."""
    with zipfile.ZipFile(src) as z:
        files = {name: z.read(name) for name in z.namelist()}
    data = json.loads(files["data"])
    blob = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    data["innocent"] = {":type:": "<class 'builtins.object'>", ":serialized:": blob}
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(dest, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return dest


def records(row) -> list[dict]:
    return json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())


def test_a_pickle_payload_in_model_zip_never_runs(harness_env, tmp_path):
    from stable_baselines3 import PPO

    cache, out = harness_env
    config = run_cfg(budget=4, epochs=1)
    (trained,) = run_agent("sb3-ppo", str(cache), config, out / "a")
    ckpt = Path(trained["checkpoint"])
    marker = tmp_path / "pwned"
    evil = with_payload(ckpt / "model.zip", tmp_path / "evil.zip", marker)
    # the payload works: SB3's own load runs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            PPO.load(evil)
        except Exception:  # noqa: BLE001 - only the side effect matters
            pass
    assert marker.exists()
    marker.unlink()

    shutil.copyfile(evil, ckpt / "model.zip")  # a poisoned checkpoint in the harness's cache
    (hit,) = run_agent("sb3-ppo", str(cache), config, out / "b")
    assert hit["cached"] and not marker.exists()
    assert records(hit) == records(trained)

    (ext,) = run_agent("sb3-ppo", str(cache), run_cfg(budget=4, extra={"model": str(evil)}),
                       out / "c")  # fmt: skip
    assert not marker.exists() and not ext["trainable"]
    assert records(ext) == records(trained)


def _evaluate(agent, store, config):
    res = agent.evaluate(store, store.videos("test"), config)
    return [np.asarray(r.frames) for r in res], np.stack([r.scores for r in res])


@pytest.mark.parametrize("algo", ALGOS)
def test_a_loaded_model_acts_exactly_like_the_trained_one(tiny_cache, tmp_path, algo):
    from agents.sb3_agents import SB3Agent

    store, config = open_store(tiny_cache), run_cfg(budget=4, epochs=1)
    agent = SB3Agent(algo)
    agent.setup(store, config)
    agent.fit(store, store.videos("train"), config)
    frames, scores = _evaluate(agent, store, config)
    agent.save(tmp_path)

    loaded = SB3Agent(algo)
    loaded.setup(store, config)
    loaded.load(tmp_path)
    from_file = SB3Agent(algo, model_path=str(tmp_path / "model.zip"))
    from_file.setup(store, config)
    from_file.fit(store, store.videos("train"), config)  # a model file is not retrained
    for other in (loaded, from_file):
        f, s = _evaluate(other, store, config)
        assert all(np.array_equal(a, b) for a, b in zip(frames, f, strict=True))
        assert np.array_equal(scores, s)
        assert other.num_parameters() == agent.num_parameters() > 0


def test_a_model_trained_elsewhere_is_evaluated_as_it_is(harness_env, tmp_path):
    """A PPO model made outside the harness, observing no memory and acting in [0, 1] (no
    RescaleAction): the harness evaluates that model, with what it observes, and does not
    train another one in its place."""
    from stable_baselines3 import PPO

    from adaframe_env.sb3 import SB3VecEnv
    from adaframe_env.vector_env import AdaFrameVectorEnv
    from agents.sb3_agents import MemoryExtractor, SB3Agent

    cache, out = harness_env
    env = SB3VecEnv(AdaFrameVectorEnv(4, data=str(cache), split="train", budget=4, memory=False))
    model = PPO("MultiInputPolicy", env, seed=7, n_steps=64, batch_size=64,
                policy_kwargs={"features_extractor_class": MemoryExtractor})  # fmt: skip
    path = tmp_path / "elsewhere.zip"
    model.save(path)

    store, config = open_store(cache), run_cfg(budget=4, extra={"model": str(path)})
    reference = SB3Agent("ppo")  # acts with SB3's own load of the (trusted, test-made) file
    reference.setup(store, config)
    reference.model = PPO.load(path)
    reference.memory, reference.observation_keys = False, ("frame", "location", "step", "probs")
    frames, _ = _evaluate(reference, store, config)

    (row,) = run_agent("sb3-ppo", str(cache), config, out)
    got = records(row)
    assert [r["frame_indices"] for r in got] == [f.tolist() for f in frames]
    assert not any(r["memory"] for r in got) and row["memory_gflops"] == 0
    assert row["fit_seconds"] < 1.0


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return path


@pytest.fixture(scope="module")
def sac_zip(tiny_cache, tmp_path_factory) -> Path:
    from agents.sb3_agents import SB3Agent

    store, config = open_store(tiny_cache), run_cfg(budget=4, epochs=1)
    agent = SB3Agent("sac")
    agent.setup(store, config)
    agent.fit(store, store.videos("train"), config)
    folder = tmp_path_factory.mktemp("sac")
    agent.save(folder)
    return folder / "model.zip"


def _bad_files(tmp_path: Path, sac_zip: Path, marker: Path) -> dict[str, Path]:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with zipfile.ZipFile(sac_zip) as z:
        files = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    pickle.dump(Payload(marker), buf, protocol=2)
    without_policy = {k: v for k, v in files.items() if k != "policy.pth"}
    half = files["policy.pth"][:100]
    return {
        "missing": tmp_path / "missing.zip",
        "empty": _zip(tmp_path / "empty.zip", {}),
        "text": text,
        "no-policy": _zip(tmp_path / "nopolicy.zip", without_policy),
        "truncated-policy": _zip(tmp_path / "trunc.zip", {**files, "policy.pth": half}),
        "pickled-policy": _zip(tmp_path / "pickled.zip", {**files, "policy.pth": buf.getvalue()}),
        "other-algorithm": sac_zip,  # SAC's actor and critics are not PPO's policy
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "text", "no-policy", "truncated-policy", "pickled-policy",
             "other-algorithm"],
)  # fmt: skip
def test_a_model_file_that_does_not_fit_is_one_line(harness_env, tmp_path, sac_zip, case):
    cache, out = harness_env
    marker = tmp_path / "pwned"
    path = _bad_files(tmp_path, sac_zip, marker)[case]
    with pytest.raises(ValueError) as err:
        run_agent("sb3-ppo", str(cache), run_cfg(budget=4, extra={"model": str(path)}), out)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg, msg
    assert not marker.exists()


def test_a_damaged_sb3_checkpoint_is_retrained(harness_env):
    cache, out = harness_env
    config = run_cfg(budget=4, epochs=1)
    (first,) = run_agent("sb3-ppo", str(cache), config, out)
    ckpt = Path(first["checkpoint"])
    data = (ckpt / "model.zip").read_bytes()
    (ckpt / "model.zip").write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (second,) = run_agent("sb3-ppo", str(cache), config, out)
    mine = [str(w.message) for w in caught if str(ckpt) in str(w.message)]
    assert len(mine) == 1 and "model.zip" in mine[0] and "\n" not in mine[0], mine
    assert not second["cached"] and records(second) == records(first)
    (third,) = run_agent("sb3-ppo", str(cache), config, out)
    assert third["cached"]
