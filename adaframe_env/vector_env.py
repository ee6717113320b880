"""AdaFrameVectorEnv: a batch of AdaFrame episodes stepped together in NumPy.

The same semantics as :class:`adaframe_env.env.AdaFrameEnv` (docs/design.md 3), with no Python loop
over sub-environments in ``step``: one step is a fixed number of array operations on
``(num_envs, ...)`` arrays, whatever ``num_envs`` is. ``gym.make_vec("AdaFrame-FCVID-v0",
num_envs=256)`` returns it (it is the ids' ``vector_entry_point``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adaframe_env._fast import to_float32
from adaframe_env.config import (
    _ARRAY_REFS,
    EnvArgs,
    action_error,
    attach_arrays,
    check_options,
    ensure_normalizer,
    make_config,
)
from adaframe_env.data.store import MEMORY_SIZE, FeatureStore
from adaframe_env.rewards import rewards_of_steps


class AdaFrameVectorEnv(VectorEnv):
    """``num_envs`` AdaFrame episodes in lockstep, vectorized in NumPy.

    Semantics (spaces, rewards, GFLOPs, episode end, info keys, split order) are those of
    :class:`~adaframe_env.env.AdaFrameEnv`; see ``help(AdaFrameEnv)``. What differs:

    - **Autoreset: next step** (``metadata["autoreset_mode"] = AutoresetMode.NEXT_STEP``,
      Gymnasium's default). The step after a sub-env terminated or truncated resets it: its
      action is ignored, the observation is the new episode's first, reward 0, terminated and
      truncated False.
    - **Observations are buffers**: the arrays returned by ``reset`` and ``step`` are reused
      and updated in place by the next call, as Gymnasium's own vector envs with
      ``copy=False`` do. Copy what you keep, or pass ``copy=True``. This is what makes the global
      memory free: it is constant within an episode, so it is written only when a sub-env
      resets, never copied on a step.
    - **Videos**: train split: each reset draws a random video from ``np_random``. Val/test:
      sub-envs take the split's videos in file order from one shared cursor (at ``reset()``
      env ``i`` gets the cursor's ``i``-th video; each autoreset takes the next one), cycling;
      ``reset(seed=...)`` restarts the cursor. So the first ``len(split)`` episodes to start
      cover the split once.
    - **Reset options**: ``{"video": int or (num_envs,) ints}`` (split positions),
      ``{"location": float}``, and Gymnasium's ``{"reset_mask": (num_envs,) bool}`` to reset
      only some sub-envs (the others keep their state; their info entries are masked out).
    - **Info** is a dict of arrays with ``_key`` masks (Gymnasium 1.x vector convention);
      ``is_correct`` is set where an episode ended, ``label`` on the train split (or
      ``label_in_info=True``).
    - ``add_gflops(gflops)`` takes a ``(num_envs,)`` array. No rendering.

    Args: those of :class:`~adaframe_env.env.AdaFrameEnv` plus ``num_envs`` and ``copy``.
    """

    metadata = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        data: str | os.PathLike | FeatureStore | None = None,
        split: str = "train",
        budget: int = 10,
        reward: str = "margin",
        memory: bool = True,
        stop_action: bool = False,
        frame_cost: float = 0.0,
        render_mode: str | None = None,
        *,
        dataset: str | None = None,
        observation_keys: tuple[str, ...] | None = None,
        initial_location: float = 0.0,
        label_in_info: bool | None = None,
        lazy: bool = False,
        copy: bool = False,
        memory_frames: int = MEMORY_SIZE,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be an int, got {num_envs!r}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if render_mode is not None:
            raise ValueError(
                "AdaFrameVectorEnv does not render; use AdaFrameEnv (gym.make) with "
                f"render_mode={render_mode!r}"
            )
        cfg = make_config(
            EnvArgs(data=data, split=split, budget=budget, reward=reward, memory=memory,
                    stop_action=stop_action, frame_cost=frame_cost, dataset=dataset,
                    observation_keys=observation_keys, initial_location=initial_location,
                    label_in_info=label_in_info, lazy=lazy, memory_frames=memory_frames)
        )  # fmt: skip
        self.config = cfg
        self.memory_frames = cfg.memory_frames
        self.num_envs = n = int(num_envs)
        self.copy = bool(copy)
        self.render_mode = None
        self.store = store = cfg.store
        self.split = cfg.split
        self.split_videos = cfg.split_videos
        self.budget = cfg.budget
        self.reward_name = cfg.reward
        self.memory = cfg.memory
        self.stop_action = cfg.stop_action
        self.frame_cost = cfg.frame_cost
        self.initial_location = cfg.initial_location
        self.label_in_info = cfg.label_in_info
        self.single_observation_space = cfg.observation_space
        self.single_action_space = cfg.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        self._keys = cfg.obs_keys
        attach_arrays(self)
        self._gpf = cfg.gflops_per_frame
        self._mem_gflops = cfg.memory_gflops
        self._synthetic = store.synthetic
        self._arange = np.arange(n)
        c = store.num_classes

        # per-env episode state
        self._pos = np.zeros(n, np.int64)  # position in the split
        self._video = np.zeros(n, np.int64)  # row in the cache
        self._offset = np.zeros(n, np.int64)
        self._tm1 = np.zeros(n, np.float64)  # length - 1
        self._label = np.zeros(n, np.int64)
        self._loc = np.zeros(n, np.float64)
        self._frame = np.zeros(n, np.int64)
        self._t = np.zeros(n, np.int64)  # frames used (budget)
        self._n = np.zeros(n, np.int64)  # distinct frames
        # seen[i, f]: frame f of env i's video was observed (revisits are free)
        self._seen = np.zeros((n, int(store.length.max())), bool)
        self._psum = np.zeros((n, c), np.float32)
        self._best = np.zeros(n, np.float64)
        self._gt = np.zeros(n, np.float64)
        self._gflops = np.zeros(n, np.float64)
        self._autoreset = np.zeros(n, bool)
        self._cursor = 0
        self._started = False

        # observation buffers (returned as they are unless copy=True)
        self._buf = {}
        for key in self._keys:
            space = self.single_observation_space[key]
            self._buf[key] = np.zeros((n, *space.shape), np.float32)
        self._scratch = np.zeros((n, c), np.float32)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        ensure_normalizer(self)
        super().reset(seed=seed)
        options = dict(check_options(options, ("video", "location", "reset_mask")))
        n = self.num_envs
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(n, bool)
        else:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({n},), got {mask!r}"
                )
            if not mask.any():
                raise ValueError("options['reset_mask'] must select at least one sub-env")
        if seed is not None:
            self._cursor = 0
        video = options.get("video")
        if video is not None:
            video = np.broadcast_to(np.asarray(video), (n,))
            if video.dtype.kind not in "iu":
                raise TypeError(f"options['video'] must be int(s), got {options['video']!r}")
            bad = (video < 0) | (video >= len(self.split_videos))
            if bad.any():
                raise ValueError(
                    f"options['video'] = {int(video[bad][0])} is outside the {self.split} split "
                    f"(0 .. {len(self.split_videos) - 1}); it indexes split_videos"
                )
            video = video[mask]
        loc = float(options.get("location", self.initial_location))
        if not 0.0 <= loc <= 1.0:
            raise ValueError(f"options['location'] must be in [0, 1], got {loc}")
        self._start(mask, video, loc)
        self._started = True
        self._autoreset[mask] = False
        obs = self._observe(mask)
        self._finish_scores(mask)
        return self._out(obs), self._infos(mask, np.zeros(n, bool))

    def step(self, actions):
        if not self._started:
            raise RuntimeError("step() called before reset(): call envs.reset() first")
        loc, stop = self._parse(actions)
        n = self.num_envs
        ar = self._autoreset
        if ar.any():
            self._start(ar, None, self.initial_location)
        active = ~ar
        if self.stop_action:
            stop &= active
        else:
            stop = np.zeros(n, bool)
        move = active & ~stop & (self._t < self.budget)
        spent = active & ~stop & ~move  # budget=1: nothing left to observe

        # where the moving envs look
        new_frame = np.rint(loc * self._tm1).astype(np.int64)
        self._frame = np.where(move, new_frame, self._frame)
        self._loc = np.where(move, loc, self._loc)
        ar_ = self._arange
        new = (move & ~self._seen[ar_, self._frame]) | ar
        self._seen[ar_, self._frame] |= move
        self._t += move

        obs = self._observe(new)
        m, g = self._margin()
        gained = move & new
        r = rewards_of_steps(self.reward_name, m, g, self._best, self._gt, self.frame_cost,
                             self._gpf * gained)  # fmt: skip
        reward = np.where(move, r, 0.0)
        self._gflops += self._gpf * gained
        self._best = np.where(move, np.maximum(self._best, m), self._best)
        self._gt = np.where(move, g, self._gt)
        self._finish_scores(ar, m, g)

        terminated = stop
        truncated = (move & (self._t >= self.budget)) | spent
        done = terminated | truncated
        self._autoreset = done
        infos = self._infos(np.ones(n, bool), done)
        return self._out(obs), reward, terminated, truncated, infos

    def add_gflops(self, gflops) -> None:
        """Report each sub-env's own computation (GFLOPs, (num_envs,)); counted in info."""
        g = np.broadcast_to(np.asarray(gflops, np.float64), (self.num_envs,))
        if not (np.isfinite(g).all() and (g >= 0).all()):
            raise ValueError("gflops must be finite numbers >= 0")
        self._gflops += g

    def render(self):
        raise NotImplementedError("AdaFrameVectorEnv does not render; use AdaFrameEnv")

    # ------------------------------------------------------------------ internals
    def _parse(self, actions) -> tuple[np.ndarray, np.ndarray | None]:
        a = actions
        if type(a) is not np.ndarray:
            try:
                a = np.asarray(a, dtype=np.float64)
            except (TypeError, ValueError):
                raise self._action_error(actions, "not numeric") from None
        elif a.dtype.kind not in "fiub":
            raise self._action_error(actions, f"dtype {a.dtype}")
        if a.shape != self.action_space.shape:
            raise self._action_error(actions, f"shape {a.shape}")
        ok = (a >= 0) & (a <= 1)  # False for NaN
        if not ok.all():
            i, j = np.argwhere(~ok)[0]
            what = "NaN or inf" if not np.isfinite(a[i, j]) else "a value outside [0, 1]"
            raise self._action_error(
                f"array with {a[i, j]!r} at [{i}, {j}]", f"{what} (sub-env {i})"
            )
        loc = a[:, 0].astype(np.float64)
        stop = a[:, 1] > 0.5 if self.stop_action else None
        return loc, stop

    def _action_error(self, actions, problem: str) -> ValueError:
        """The error names the single action (``[location]`` / ``[location, stop]``) and the
        batch's shape, ``(num_envs, 1 or 2)``."""
        return action_error(actions, self.single_action_space, problem, self.num_envs)

    def _start(self, mask: np.ndarray, video: np.ndarray | None, loc: float) -> None:
        """Begin new episodes in the sub-envs of ``mask`` (state only; frames follow)."""
        idx = np.flatnonzero(mask)
        k = len(idx)
        nsplit = len(self.split_videos)
        if video is not None:
            pos = video.astype(np.int64)
        elif self.split == "train":
            pos = self.np_random.integers(nsplit, size=k)
        else:
            pos = (self._cursor + np.arange(k)) % nsplit
            self._cursor += k
        v = self.split_videos[pos]
        store = self.store
        self._pos[idx] = pos
        self._video[idx] = v
        self._offset[idx] = store.offset[v]
        length = store.length[v]
        self._tm1[idx] = length - 1
        self._label[idx] = store.label[v]
        self._loc[idx] = loc
        self._frame[idx] = np.rint(loc * (length - 1)).astype(np.int64)
        self._seen[idx] = False
        self._seen[idx, self._frame[idx]] = True
        self._t[idx] = 1
        self._n[idx] = 0
        self._psum[idx] = 0.0
        self._gflops[idx] = self._gpf + self._mem_gflops
        if "memory" in self._buf:
            mem = self._light[self._mem_rows[v]]
            if k == self.num_envs:  # all envs (re)start together: convert straight in place
                to_float32(mem, out=self._buf["memory"])
            else:
                self._buf["memory"][idx] = to_float32(mem)
        if "memory_positions" in self._buf:
            self._buf["memory_positions"][idx] = self._mem_pos_table[v]

    def _observe(self, new: np.ndarray) -> dict:
        """Look up the current frames, add the new ones to the running scores."""
        rows = self._offset + self._frame
        buf = self._buf
        if "frame" in buf:
            to_float32(self._features[rows], out=buf["frame"])
        # probabilities of the new frames, exp(logits - lse); exp(-inf) = 0 for the others
        x = to_float32(self._logits[rows])
        if new.all():  # the common case: every env looked at a new frame
            x -= self._lse[rows][:, None]
        else:
            x += np.where(new, -self._lse[rows], np.float32(-np.inf))[:, None]
        np.exp(x, out=x)
        self._psum += x
        self._n += new
        probs = buf["probs"] if "probs" in buf else self._scratch
        np.divide(self._psum, self._n.astype(np.float32)[:, None], out=probs)
        self._probs = probs
        if "location" in buf:
            buf["location"][:, 0] = self._loc
        if "step" in buf:
            buf["step"][:, 0] = self._t / self.budget
        return buf

    def _margin(self) -> tuple[np.ndarray, np.ndarray]:
        """Margin and true-class score of the running probabilities; sets the prediction.

        Float32 probabilities, differences in float64: the single env's arithmetic exactly.
        """
        p = self._probs
        ar, lab = self._arange, self._label
        g32 = p[ar, lab]
        p[ar, lab] = -1.0
        best_other = p.argmax(axis=1)
        g = g32.astype(np.float64)
        m = g - p[ar, best_other]
        p[ar, lab] = g32
        self._prediction = np.where(m > 0, lab, best_other)
        return m, g

    def _finish_scores(self, mask: np.ndarray, m=None, g=None) -> None:
        """Record margin/score/prediction; initialise best margin and s_1 of new episodes."""
        if g is None:
            m, g = self._margin()
        self._m, self._g = m, g
        self._best = np.where(mask, m, self._best)
        self._gt = np.where(mask, g, self._gt)

    def _out(self, obs: dict) -> dict:
        if self.copy:
            return {k: v.copy() for k, v in obs.items()}
        return obs

    def _infos(self, mask: np.ndarray, done: np.ndarray) -> dict:
        m, g = self._m, self._g
        store = self.store
        pred = self._prediction
        info = {
            "video_id": store.video_id[self._video],
            "video_index": self._video.copy(),
            "split_index": self._pos.copy(),
            "frame": self._frame.copy(),
            "frames_used": self._t.copy(),
            "distinct_frames": self._n.copy(),
            "gflops": self._gflops.copy(),
            "margin": m.copy(),
            "gt_score": g.copy(),
            "prediction": pred,
            "synthetic": np.full(self.num_envs, self._synthetic),
        }
        if self.label_in_info:
            info["label"] = self._label.copy()
        keys = list(info)
        masks = np.empty((len(keys), self.num_envs), bool)
        masks[:] = mask
        for key, row in zip(keys, masks, strict=True):  # one array, a separate row per key
            info["_" + key] = row
        if done.any():
            info["is_correct"] = (pred == self._label) & done
            info["_is_correct"] = done.copy()
        return info

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in _ARRAY_REFS:
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        attach_arrays(self)
        if self._started:  # unpickled mid-episode: the next step needs the normalizers
            ensure_normalizer(self)

    def __repr__(self) -> str:
        name = self.spec.id if self.spec is not None else self.config.path.name
        return f"AdaFrameVectorEnv({name}, num_envs={self.num_envs})"
