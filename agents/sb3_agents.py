"""stable-baselines3 agents (PPO, SAC, RecurrentPPO) trained on the AdaFrame env itself.

The policy sees the env's ``Dict`` observation through :class:`MemoryExtractor`, which embeds
each key on its own and pools the 16 memory slots (so the network never flattens a
16 x Dl memory into one wide layer). Training runs on
:class:`~adaframe_env.sb3.SB3VecEnv` over the train split (margin reward, budget K); the harness
evaluates the deterministic policy on the test split with the env's recognizer as classifier.

``--epochs N`` sets the training length: N passes over the train split in episodes
(``N x train videos x (K - 1)`` env steps). ``--model PATH.zip`` evaluates a model trained
outside the harness (same algorithm and policy: :class:`MemoryExtractor` with the agent's
policy kwargs).

A model on disk is data, never code (docs/reliability.md, "Checkpoints and models"): SB3's
own ``load`` unpickles every ``:serialized:`` entry of the zip's ``data``, which can run
anything, so it is never called. :func:`read_policy_zip` reads only ``policy.pth`` (a plain
state dict, ``torch.load(weights_only=True)``) and, as JSON text, the observation keys and
action bounds recorded in ``data``; the agent builds the policy itself and loads the weights
into it. Checkpoints are SB3's own zip (``model.save``), so SB3 users can still load them.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecMonitor
from torch import nn
from tqdm.auto import tqdm

from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.agent import CheckpointError, one_line, state_dict_misfit
from adaframe_env.protocol.envagent import EnvPolicyAgent
from adaframe_env.sb3 import SB3VecEnv
from adaframe_env.vector_env import AdaFrameVectorEnv
from agents.recurrent.memory import positional_encoding


class MemoryExtractor(BaseFeaturesExtractor):
    """Features for an AdaFrame ``Dict`` observation.

    - ``frame`` (D,) -> Linear(D, frame_dim) + ReLU
    - ``memory`` (16, Dl) with ``memory_positions`` (16,) -> per slot: Linear over the feature
      plus its sinusoidal position encoding, ReLU; then mean- and max-pool over the 16 slots
    - ``probs`` (C,) -> Linear(C, probs_dim) + ReLU
    - ``location``, ``step`` -> as they are
    """

    def __init__(self, observation_space: spaces.Dict, frame_dim: int = 128,
                 memory_dim: int = 64, probs_dim: int = 64, pe_dim: int = 16):  # fmt: skip
        sp = observation_space.spaces
        total = 0
        layers = {}
        if "frame" in sp:
            layers["frame"] = nn.Sequential(nn.Linear(sp["frame"].shape[0], frame_dim), nn.ReLU())
            total += frame_dim
        if "memory" in sp:
            dl = sp["memory"].shape[1]
            layers["memory"] = nn.Sequential(nn.Linear(dl + pe_dim, memory_dim), nn.ReLU())
            total += 2 * memory_dim
        if "probs" in sp:
            layers["probs"] = nn.Sequential(nn.Linear(sp["probs"].shape[0], probs_dim), nn.ReLU())
            total += probs_dim
        self._scalars = [k for k in ("location", "step") if k in sp]
        total += len(self._scalars)
        super().__init__(observation_space, features_dim=total)
        self.layers = nn.ModuleDict(layers)
        self.pe_dim = pe_dim

    def forward(self, obs: dict) -> torch.Tensor:
        out = []
        if "frame" in self.layers:
            out.append(self.layers["frame"](obs["frame"]))
        if "memory" in self.layers:
            mem = obs["memory"]
            pos = obs.get("memory_positions")
            if pos is None:
                pos = torch.linspace(0, 1, mem.shape[1], device=mem.device).expand(mem.shape[:2])
            x = self.layers["memory"](torch.cat([mem, positional_encoding(pos, self.pe_dim)], -1))
            out += [x.mean(dim=1), x.max(dim=1).values]
        if "probs" in self.layers:
            out.append(self.layers["probs"](obs["probs"]))
        out += [obs[k] for k in self._scalars]
        return torch.cat(out, dim=-1)


class _TqdmCallback(BaseCallback):
    def __init__(self, total: int, desc: str, disable: bool):
        super().__init__()
        self.bar = tqdm(total=total, desc=desc, disable=disable, unit="step")

    def _on_step(self) -> bool:
        # SB3 rounds the total up to whole rollouts: stop the bar at its total
        self.bar.update(min(self.training_env.num_envs, self.bar.total - self.bar.n))
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def algorithm(algo: str):
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO, "MultiInputPolicy"
    if algo == "sac":
        from stable_baselines3 import SAC

        return SAC, "MultiInputPolicy"
    if algo == "recurrentppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO, "MultiInputLstmPolicy"
    raise ValueError(f"unknown SB3 algorithm {algo!r}")


class SB3Agent(EnvPolicyAgent):
    """An SB3 model acting in the env (observes the memory, so it pays its 1.32 GFLOPs)."""

    memory = True

    def __init__(self, algo: str, model_path: str | None = None, n_envs: int = 16,
                 epochs: int = 4):  # fmt: skip
        self.algo, self.model_path = algo, model_path
        self.n_envs, self.default_epochs = n_envs, epochs
        self.trainable = model_path is None
        self.model = None
        src = f"loaded from {model_path}" if model_path else "trained on the env (margin reward)"
        self.description = f"stable-baselines3 {algo.upper()} with MemoryExtractor, {src}"

    def hparams(self) -> dict:
        # "version" changes whenever training changes, so cached checkpoints are not reused
        kw = self._kwargs(1000)
        if "learning_starts" in kw:  # depends on the run's length; record the rule, not a value
            kw["learning_starts"] = "min(1000, total_timesteps // 4)"
        return {"algo": self.algo, "n_envs": self.n_envs, "version": 2, **kw}

    def _kwargs(self, total: int) -> dict:
        common = {"policy_kwargs": {"features_extractor_class": MemoryExtractor}}
        if self.algo == "sac":
            return {**common, "buffer_size": 20_000, "learning_starts": min(1000, total // 4),
                    "batch_size": 256}  # fmt: skip
        kw = {**common, "n_steps": 64, "batch_size": 256, "n_epochs": 4}
        if self.algo == "recurrentppo":
            kw["policy_kwargs"] = {**common["policy_kwargs"], "lstm_hidden_size": 128}
        return kw

    def setup(self, store, config: RunConfig) -> None:
        super().setup(store, config)
        self._device, self._store, self._config = config.device, store, config
        if self.model_path:
            path = Path(self.model_path)
            state, (keys, bounds) = read_policy_zip(path, self._model_fix())
            if keys is not None:  # observe what the model was trained on
                self.memory = "memory" in keys
                self.observation_keys = tuple(k for k in keys if not k.startswith("memory"))
            self.model = self._policy(state, path, bounds, self._model_fix())

    def _model_fix(self) -> str:
        return (
            f"give an SB3 {self.algo.upper()} model of the harness's policy (adaframe run "
            f"--agent sb3-{self.algo} writes one: model.zip in its checkpoint folder)"
        )

    def _policy(self, state: dict, path: Path, bounds, fix: str):
        """The agent's SB3 policy for this cache, with the weights ``state`` (from ``path``)."""
        cls, name = algorithm(self.algo)
        env = self.make_env(self._store, "train", 1, self._config)
        obs_space, shape = env.single_observation_space, env.single_action_space.shape
        env.close()
        low, high = bounds or (-1.0, 1.0)  # -1, 1: trained through RescaleAction, as in fit()
        action_space = spaces.Box(np.float32(low), np.float32(high), shape, np.float32)
        policy = cls.policy_aliases[name](
            obs_space, action_space, lambda _: 0.0, use_sde=False,
            **self._kwargs(1)["policy_kwargs"],
        )  # fmt: skip
        misfit = state_dict_misfit(policy.state_dict(), state)
        if misfit:
            raise CheckpointError(
                path, f"its weights do not fit the harness's sb3-{self.algo} policy ({misfit})",
                fix,
            )  # fmt: skip
        policy.load_state_dict(state)
        policy.set_training_mode(False)
        return policy.to(self._device)

    def fit(self, store, train_videos, config: RunConfig) -> None:
        if self.model_path:
            return  # a model given by file is evaluated as it is
        given = [f"--{n.replace('_', '-')}" for n in ("updates", "eval_every", "patience")
                 if getattr(config, n) is not None]  # fmt: skip
        if given:
            raise ValueError(
                f"{self.name or 'sb3'}: {', '.join(given)} set the schedule of the harness's own "
                "learned methods; an SB3 agent trains for --epochs passes over the train split"
            )
        k = self.budget(config)
        epochs = config.epochs if config.epochs is not None else self.default_epochs
        total = max(1, epochs * len(train_videos) * max(k - 1, 1))
        venv = AdaFrameVectorEnv(self.n_envs, data=store, split="train", budget=k, memory=True)
        # SB3's Gaussian policies act in [-1, 1]; without this, most samples would be clipped
        # to location 0 or 1 (0 is the reset frame: a free revisit that pays nothing).
        venv = gym.wrappers.vector.RescaleAction(venv, np.float32(-1), np.float32(1))
        env = VecMonitor(SB3VecEnv(venv))
        env.seed(config.seed)
        cls, policy = algorithm(self.algo)
        self.model = cls(policy, env, seed=config.seed, device=config.device, verbose=0,
                         **self._kwargs(total))  # fmt: skip
        cb = _TqdmCallback(total, f"train {self.name}", not config.progress)
        self.model.learn(total_timesteps=total, callback=cb)
        env.close()

    def save(self, directory: Path) -> None:
        path = Path(directory) / "model.zip"
        if hasattr(self.model, "policy"):  # trained here: SB3's own zip
            self.model.save(path)
        else:  # a policy loaded from a file: the parts read_policy_zip reads
            write_policy_zip(self.model, path)

    def load(self, directory: Path) -> None:
        path = Path(directory) / "model.zip"
        fix = f"delete {Path(directory)} to retrain"
        state, _ = read_policy_zip(path, fix)  # a checkpoint of fit(): the harness's spaces
        self.model = self._policy(state, path, None, fix)

    def num_parameters(self) -> int:
        if self.model is None:
            return 0
        policy = getattr(self.model, "policy", self.model)
        return int(sum(p.numel() for p in policy.parameters()))

    # ------------------------------------------------------------ acting
    def begin(self, num_envs: int, config: RunConfig) -> None:
        self._state = None
        self._start = np.ones(num_envs, bool)

    def act(self, obs, step, config):
        action, self._state = self.model.predict(
            {k: np.array(v) for k, v in obs.items()}, state=self._state,
            episode_start=self._start, deterministic=True,
        )  # fmt: skip
        self._start = np.zeros_like(self._start)
        if np.all(self.model.action_space.low == -1):  # trained through RescaleAction
            action = (action + 1) / 2
        return np.clip(action, 0.0, 1.0)


# ---------------------------------------------------------------- model files
def read_policy_zip(path: Path, fix: str):
    """(policy state dict, (observation keys or None, (low, high) action bounds or None)) of an
    SB3 model zip, unpickling nothing: ``policy.pth`` with ``torch.load(weights_only=True)``,
    the spaces from ``data`` read as JSON text. A file that is not such a zip raises
    :class:`CheckpointError` (``path: reason; fix``)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "policy.pth" not in names:
                raise CheckpointError(path, "no policy.pth in it (not an SB3 model zip)", fix)
            raw = z.read("policy.pth")
            data = z.read("data") if "data" in names else b""
    except FileNotFoundError:
        raise CheckpointError(path, "no such file", fix) from None
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - BadZipFile, CRC or zlib errors of a damaged zip
        raise CheckpointError(path, f"not a readable zip ({one_line(e)})", fix) from None
    try:
        state = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise CheckpointError(
            path, "its policy.pth holds more than weights (pickled objects are never loaded)", fix
        ) from None
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a bad file
        raise CheckpointError(path, f"its policy.pth is unreadable ({one_line(e)})", fix) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "its policy.pth is not a state dict of tensors", fix)
    return state, _spaces(data)


def _spaces(data: bytes):
    """The observation keys and action bounds SB3 records as text in a zip's ``data`` (None
    for what is not there; nothing in it is unpickled)."""
    try:
        d = json.loads(data)
    except ValueError:
        return None, None
    obs, act = d.get("observation_space"), d.get("action_space")
    keys = bounds = None
    if isinstance(obs, dict) and isinstance(obs.get("spaces"), str):
        keys = tuple(re.findall(r"'(\w+)': ", obs["spaces"])) or None
    low, high = (act.get(k) if isinstance(act, dict) else None for k in ("low", "high"))
    if isinstance(low, str) and isinstance(high, str):
        number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
        low, high = re.findall(number, low), re.findall(number, high)
        if len(low) == len(high) == 1 and float(low[0]) < float(high[0]):
            bounds = (float(low[0]), float(high[0]))
    return keys, bounds


def write_policy_zip(policy, path: Path) -> None:
    """A policy as the zip :func:`read_policy_zip` reads: ``policy.pth`` and the spaces."""
    buf = io.BytesIO()
    torch.save(policy.state_dict(), buf)
    space = policy.action_space
    data = {
        "observation_space": {"spaces": repr(dict(policy.observation_space.spaces))},
        "action_space": {"low": str(space.low), "high": str(space.high)},
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("policy.pth", buf.getvalue())
        z.writestr("data", json.dumps(data))
