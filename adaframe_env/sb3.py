"""Hand the native vector env to stable-baselines3 (which does not take Gymnasium vector envs).

:class:`SB3VecEnv` adapts :class:`~adaframe_env.vector_env.AdaFrameVectorEnv` to SB3's
``VecEnv`` conventions: ``step`` returns ``(obs, rewards, dones, infos)`` with
``dones = terminated | truncated`` and ``infos`` a list of one dict per env; a finished env is
reset in the same step (SB3 expects the next episode's first observation), and its last
observation goes in ``infos[i]["terminal_observation"]``, with ``infos[i]["TimeLimit.truncated"]``
set when the episode was truncated (budget used) rather than terminated (stop), so SB3
bootstraps the value correctly.

The vector env autoresets on the next step (Gymnasium's convention); the adapter instead
resets finished envs at once with ``reset(options={"reset_mask": dones})``, so no step is
wasted and the vector env never sees an autoreset step.

>>> from adaframe_env.sb3 import make_sb3_env
>>> venv = make_sb3_env("AdaFrame-FCVID-v0", num_envs=16)  # doctest: +SKIP
>>> model = stable_baselines3.PPO("MultiInputPolicy", venv)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from adaframe_env.vector_env import AdaFrameVectorEnv


class SB3VecEnv(VecEnv):
    """An :class:`AdaFrameVectorEnv` as a stable-baselines3 ``VecEnv``.

    Args:
        venv: the vector env (``gym.make_vec(...)`` of an AdaFrame id, or the class itself).
        copy: return copies of the observation buffers (default, as SB3's ``DummyVecEnv``
            does); ``False`` returns the vector env's reused buffers.
    """

    def __init__(self, venv: gym.vector.VectorEnv, copy: bool = True):
        inner = getattr(venv, "unwrapped", venv)
        if not isinstance(inner, AdaFrameVectorEnv):
            raise TypeError(
                "SB3VecEnv adapts an AdaFrameVectorEnv (possibly inside Gymnasium vector "
                f"wrappers), got {type(venv).__name__}"
            )
        self.venv = venv  # steps go through any vector wrappers
        self.copy = bool(copy)
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self):
        seed = self._seeds[0]
        options = dict(self._options[0]) if self._options[0] else None
        obs, info = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._split_infos(info, np.ones(self.num_envs, bool))
        return self._obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        actions = np.asarray(self._actions)
        if actions.shape != self.venv.action_space.shape:
            actions = actions.reshape(self.venv.action_space.shape)
        obs, rewards, terminated, truncated, info = self.venv.step(actions)
        dones = terminated | truncated
        infos = self._split_infos(info, np.ones(self.num_envs, bool))
        if dones.any():
            idx = np.flatnonzero(dones)
            final = {k: v[idx].copy() for k, v in obs.items()}
            for j, i in enumerate(idx):
                infos[i]["terminal_observation"] = {k: v[j] for k, v in final.items()}
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            obs, reset_info = self.venv.reset(options={"reset_mask": dones})
            for i, r in zip(idx, self._split_infos(reset_info, dones, idx), strict=True):
                self.reset_infos[i] = r
        return self._obs(obs), rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = (
            getattr(self.venv, attr_name)
            if attr_name == "render_mode"
            else getattr(self.venv.unwrapped, attr_name)
        )
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv.unwrapped, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs):
        result = getattr(self.venv.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    # ------------------------------------------------------------------ helpers
    def _obs(self, obs: dict) -> dict:
        if self.copy:
            return {k: v.copy() for k, v in obs.items()}
        return obs

    def _split_infos(self, info: dict, mask: np.ndarray, idx=None) -> list[dict]:
        """Gymnasium's dict of arrays (with ``_key`` masks) -> one dict per env."""
        idx = np.arange(self.num_envs) if idx is None else idx
        keys = [k for k in info if not k.startswith("_")]
        columns = {k: info[k].tolist() for k in keys}
        masks = {k: info.get("_" + k, mask) for k in keys}
        out = []
        for i in idx:
            out.append({k: columns[k][i] for k in keys if masks[k][i]})
        return out


def make_sb3_env(env_id: str = "AdaFrame-FCVID-v0", num_envs: int = 16, monitor: bool = True,
                 **kwargs) -> VecEnv:  # fmt: skip
    """``gym.make_vec(env_id, num_envs, **kwargs)`` as an SB3 ``VecEnv`` (in a ``VecMonitor``,
    which records episode returns and lengths for SB3's logger, unless ``monitor=False``)."""
    venv = SB3VecEnv(gym.make_vec(env_id, num_envs=num_envs, **kwargs))
    return VecMonitor(venv) if monitor else venv
