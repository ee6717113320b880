"""AdaFrameEnv: "which frame next?" over a cached video dataset, as a Gymnasium environment.

The contract is docs/design.md sections 2-3; the full specification is the class docstring of
:class:`AdaFrameEnv` (``help(AdaFrameEnv)``). :mod:`adaframe_env.vector_env` implements the same
semantics for a batch of videos in NumPy.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

from adaframe_env._fast import frame_probs
from adaframe_env.config import (
    _ARRAY_REFS,
    EnvArgs,
    action_error,
    attach_arrays,
    check_options,
    clear_store_cache,
    ensure_normalizer,
    make_config,
    open_store,
)
from adaframe_env.data.store import MEMORY_SIZE, FeatureStore
from adaframe_env.rewards import reward_of_step

__all__ = ["AdaFrameEnv", "clear_store_cache", "open_store"]

# --------------------------------------------------------------------------- the env
class AdaFrameEnv(gym.Env[dict, np.ndarray]):
    """
    ## Description

    AdaFrame's frame-selection task (Wu et al., "A Dynamic Frame Selection Framework for Fast
    Video Recognition", TPAMI 2020) over a cache of per-frame CNN features. One episode is one
    video. The agent starts from the frame at the initial location (paper Alg. 1) and, at every
    step, chooses where in the video to look next; each look costs one frame of the budget and,
    unless the frame was seen before, one heavy-backbone pass (GFLOPs). A fixed recognizer, the
    paper's AvgPooling model (softmax of each frame's cached logits, averaged over the distinct
    frames seen so far), scores the video after every step; the reward pays for raising the
    margin between the true class and the strongest other class (paper Eq. 4).

    The data is an adaframe feature cache (HDF5, docs/design.md section 1): a real one extracted from
    FCVID or ActivityNet, or a synthetic proxy that is generated on first use.

    ## Action Space

    A `ndarray` of shape `(1,)`, dtype `float32`, in `[0, 1]`: the normalized location of the
    next frame to look at; location `a` of a video of `T` frames is frame `round(a * (T - 1))`
    (round half to even). The agent may jump anywhere, backwards too; a frame it has seen before
    is free (its feature is cached) but still uses one frame of the budget.

    With `stop_action=True` the shape is `(2,)`: `[location, stop]`; `stop > 0.5` ends the
    episode without observing a new frame (the location is then ignored). Values outside
    `[0, 1]`, NaN or inf, or another shape raise `ValueError` (they are never clipped silently;
    wrap the env in `gymnasium.wrappers.ClipAction` to clip). See `adaframe_env.wrappers` for
    a discrete jump set (`FastForward`) and a `{"location", "stop"}` dict action (`LocationStop`).

    ## Observation Space

    A `Dict`; every key can be switched off (`memory=False`, `observation_keys=...`).
    `D`, `Dl` are the heavy and light feature sizes and `C` the number of classes of the cache
    (fcvid proxy: 128, 64, 239; paper: 2048, 1280, 239 for FCVID).

    | Key                | Shape     | Min  | Max | Meaning                                                         |
    |--------------------|-----------|------|-----|-----------------------------------------------------------------|
    | `frame`            | `(D,)`    | -Inf | Inf | heavy feature of the frame just observed                        |
    | `memory`           | `(M, Dl)` | -Inf | Inf | global memory: light features of M uniformly spaced frames (M = `memory_frames`, 16) |
    | `memory_positions` | `(M,)`    | 0    | 1   | normalized positions of the memory frames (positional encoding) |
    | `location`         | `(1,)`    | 0    | 1   | the location last chosen (reset: the initial location)          |
    | `step`             | `(1,)`    | 0    | 1   | frames used / `budget` (reset: `1 / budget`)                    |
    | `probs`            | `(C,)`    | 0    | 1   | the recognizer's running class probabilities (sum to 1)         |

    All arrays are `float32` and fresh copies on every call. Features are unbounded: their Box
    is `(-inf, inf)` on purpose (Gymnasium's `check_env` warns about it). `memory` and
    `memory_positions` are constant within an episode; they are present only when
    `memory=True`, and only then is the memory's cost charged.

    ## Rewards

    With `s_t` the recognizer's probabilities after `t` frames (frames counted from 1, the frame
    at reset being `t = 1`) and `gt` the true class, step `t > 1` pays:

    - `"margin"` (default, paper Eq. 4): `max(0, m_t - max_{t'<t} m_t')` with
      `m_t = s_t[gt] - max_{c != gt} s_t[c]`. An episode's return is `max_t m_t - m_1`.
    - `"prediction"` (paper Table 5): `s_t[gt]`.
    - `"prediction_transition"` (paper Table 5): `s_t[gt] - s_{t-1}[gt]`.

    minus `frame_cost * g_t`, where `g_t` is the GFLOPs spent in that step (`gflops_per_frame`
    of the cache for a frame not seen before, 0 for a revisit). The reset frame and the memory
    are paid before the first action and are not in any reward (they do not depend on the
    policy); `info["gflops"]` counts them. A stop step pays 0. The functions live in
    `adaframe_env.rewards`, batched, for agents that compute them from their own scores.

    ## Starting State

    `reset` picks a video and observes its frame at `initial_location` (default 0.0, the first
    frame). Train split: a random video drawn from `np_random` on every reset. Val and test
    splits: every video once, in file order, cycling; `reset(seed=...)` restarts at the first
    video, so an evaluation pass is deterministic and complete. `options={"video": i}` picks the
    `i`-th video of the split (an index into `env.unwrapped.split_videos`, not a file index);
    `options={"location": a}` overrides the initial location for that episode.

    ## Episode End

    1. Truncation: the budget of `budget` frames is used (the reset frame counts; with
       `budget=1` the first step observes nothing and truncates).
    2. Termination: the stop action fires (`stop_action=True` only).

    Stepping a finished episode, or before the first reset, raises `RuntimeError`.

    ## Info

    On reset and every step: `video_id` (str), `video_index` (row in the cache),
    `split_index` (position in the split, what `options["video"]` takes), `frame` (frame
    index observed last), `frames_used` (budget used, revisits included), `distinct_frames`,
    `gflops` (distinct frames x `gflops_per_frame` + the memory's cost when observed + what the
    agent reported with `add_gflops`), `margin` (`m_t`), `gt_score` (`s_t[gt]`), `prediction`
    (the recognizer's top class), `synthetic` (the data is a synthetic proxy); `label` on the
    train split (or with `label_in_info=True`); at the end of the episode, `is_correct`.

    ## Arguments

    ```python
    >>> import gymnasium as gym
    >>> import adaframe_env
    >>> env = gym.make("AdaFrame-FCVID-v0", split="test", budget=5, memory=False)  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))  # doctest: +SKIP

    ```

    | Parameter          | Type              | Default    | Description                                                                 |
    |--------------------|-------------------|------------|-----------------------------------------------------------------------------|
    | `data`             | str, path or None | `None`     | cache path or preset (`"fcvid"`, `"activitynet"`, `"fcvid-small"`, `"activitynet-small"`, `"tiny"`); `None`: `$ADAFRAME_FCVID` / `$ADAFRAME_ACTIVITYNET` / `$ADAFRAME_DATA`, else the synthetic proxy (generated once into `$ADAFRAME_CACHE_DIR` or `~/.cache/adaframe-gym`, with one warning) |
    | `split`            | str               | `"train"`  | `"train"`, `"val"` or `"test"`                                              |
    | `budget`           | int               | `10`       | K, frames per episode (paper: 3, 5, 10), revisits included; 1 to the cache's longest video |
    | `reward`           | str               | `"margin"` | `"margin"`, `"prediction"` or `"prediction_transition"`                     |
    | `memory`           | bool              | `True`     | observe the global memory (and pay its GFLOPs)                              |
    | `memory_frames`    | int               | `16`       | M, light frames in the memory (paper Table 4: 12, 16, 32); its cost is M x the light backbone's GFLOPs per frame |
    | `stop_action`      | bool              | `False`    | add the stop entry to the action                                            |
    | `frame_cost`       | float             | `0.0`      | lambda: reward minus lambda x GFLOPs of each step                           |
    | `render_mode`      | str or None       | `None`     | `"rgb_array"` (episode plot) or `"ansi"` (one line per step)                |
    | `dataset`          | str or None       | per id     | which environment variable / proxy `data=None` falls back to                |
    | `observation_keys` | tuple of str      | all        | which of `frame`, `location`, `step`, `probs` to observe                    |
    | `initial_location` | float             | `0.0`      | location of the frame observed at reset                                     |
    | `label_in_info`    | bool or None      | `None`     | put `label` in info; `None`: on the train split only                        |
    | `lazy`             | bool              | `False`    | map the cache from disk instead of loading it into RAM                      |

    Envs opened on the same file in one process share one `FeatureStore` (read once).

    ## Vectorized environment

    `gym.make_vec("AdaFrame-FCVID-v0", num_envs=256)` returns the native NumPy
    `AdaFrameVectorEnv` (same semantics, next-step autoreset); `adaframe_env.sb3.SB3VecEnv`
    hands it to stable-baselines3.

    ## Version History

    * v0: Initial release (cache schema v1). Since: cache schema v2 (out-of-fold scores of
      train videos); the `memory_frames` argument (default 16: the same spaces and costs).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
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
        memory_frames: int = MEMORY_SIZE,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        cfg = make_config(
            EnvArgs(data=data, split=split, budget=budget, reward=reward, memory=memory,
                    stop_action=stop_action, frame_cost=frame_cost, dataset=dataset,
                    observation_keys=observation_keys, initial_location=initial_location,
                    label_in_info=label_in_info, lazy=lazy, memory_frames=memory_frames)
        )  # fmt: skip
        self.config = cfg
        self.store = cfg.store
        self.memory_frames = cfg.memory_frames
        self.split = cfg.split
        self.split_videos = cfg.split_videos
        self.budget = cfg.budget
        self.reward_name = cfg.reward
        self.memory = cfg.memory
        self.stop_action = cfg.stop_action
        self.frame_cost = cfg.frame_cost
        self.initial_location = cfg.initial_location
        self.label_in_info = cfg.label_in_info
        self.observation_space = cfg.observation_space
        self.action_space = cfg.action_space
        self.render_mode = render_mode

        self._keys = cfg.obs_keys
        self._see_frame = "frame" in self._keys
        self._see_location = "location" in self._keys
        self._see_step = "step" in self._keys
        self._see_probs = "probs" in self._keys
        self._act_shape = self.action_space.shape
        self._one = np.zeros(1, np.float32)
        # n as float32 scalars, n = distinct frames seen <= min(budget, longest video): sized by
        # the data, never by a huge budget (make_config refuses those anyway)
        distinct_max = min(self.budget, int(self.store.length.max()))
        self._counts = np.arange(distinct_max + 1, dtype=np.float32)
        attach_arrays(self)
        self._gpf = cfg.gflops_per_frame
        self._mem_gflops = cfg.memory_gflops
        self._synthetic = self.store.synthetic
        self._cursor = 0  # next position in the split (val/test)
        self._running = False  # an episode is in progress
        self._t = 0
        self._video = -1

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ensure_normalizer(self)
        options = check_options(options, ("video", "location"))
        n = len(self.split_videos)
        if "video" in options:
            pos = options["video"]
            if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)):
                raise TypeError(f"options['video'] must be an int, got {pos!r}")
            if not 0 <= pos < n:
                raise ValueError(
                    f"options['video'] = {pos} is outside the {self.split} split "
                    f"(0 .. {n - 1}); it indexes env.unwrapped.split_videos"
                )
            pos = int(pos)
        elif self.split == "train":
            pos = int(self.np_random.integers(n))
        else:
            if seed is not None:
                self._cursor = 0
            pos = self._cursor % n
            self._cursor += 1
        loc = options.get("location", self.initial_location)
        try:
            loc = float(loc)
        except (TypeError, ValueError):
            raise TypeError(f"options['location'] must be a number, got {loc!r}") from None
        if not 0.0 <= loc <= 1.0:
            raise ValueError(f"options['location'] must be in [0, 1], got {loc}")

        store = self.store
        v = int(self.split_videos[pos])
        self._pos, self._video = pos, v
        self._length = int(store.length[v])
        self._offset = int(store.offset[v])
        self._label = int(store.label[v])
        self._video_id = str(store.video_id[v])
        if self.memory:
            self._mem = self._light[self._mem_rows[v]].astype(np.float32)
            self._mem_pos = self._mem_pos_table[v]  # copied into each observation
        self._location = loc
        frame = round(loc * (self._length - 1))
        self._frame = frame
        self._visited = {frame}
        row = self._offset + frame
        self._psum = frame_probs(self._logits[row], self._lse[row])
        self._n = 1
        self._t = 1
        self._gflops = self._gpf + self._mem_gflops
        self._probs = self._psum.copy()
        self._margin, self._gt = self._scores()
        self._best_margin = self._margin
        self._running = True
        self._last_reward = 0.0
        self._history = [(frame, loc, True, self._margin, 0.0)]
        self._end = None
        return self._obs(), self._info(False)

    def step(self, action):
        if not self._running:
            if self._t == 0:
                raise RuntimeError("step() called before reset(): call env.reset() first")
            raise RuntimeError(
                "step() called after the episode ended (terminated or truncated): "
                "call env.reset() to start the next one"
            )
        # ---- the action: a (1,) or (2,) array in [0, 1], anything else is an error
        a = action
        if type(a) is not np.ndarray or a.dtype.kind != "f" or a.shape != self._act_shape:
            a = self._coerce_action(action)
        loc = float(a[0])
        if not 0.0 <= loc <= 1.0:
            self._bad_value(action, loc, "location")
        stop = False
        if self.stop_action:
            s = float(a[1])
            if not 0.0 <= s <= 1.0:
                self._bad_value(action, s, "stop")
            stop = s > 0.5

        terminated = truncated = False
        reward = 0.0
        if stop:
            terminated = True
            self._end = "stop"
        elif self._t >= self.budget:  # budget=1: nothing left to observe
            truncated = True
            self._end = "budget"
        else:
            frame = round(loc * (self._length - 1))
            self._location = loc
            self._frame = frame
            self._t += 1
            new = frame not in self._visited
            if new:
                self._visited.add(frame)
                row = self._offset + frame
                x = self._logits[row].astype(np.float32)
                x -= self._lse[row]
                np.exp(x, out=x)
                self._psum += x
                self._n += 1
                self._gflops += self._gpf
                self._probs = self._psum / self._counts[self._n]
                m, g = self._scores()
            else:  # a revisit changes no score: the recognizer averages distinct frames
                m, g = self._margin, self._gt
            reward = reward_of_step(self.reward_name, m, g, self._best_margin, self._gt,
                                    self.frame_cost, self._gpf if new else 0.0)  # fmt: skip
            self._margin, self._gt = m, g
            if m > self._best_margin:
                self._best_margin = m
            if self._t >= self.budget:
                truncated = True
                self._end = "budget"
            self._history.append((frame, loc, new, m, reward))
        self._last_reward = reward
        if terminated or truncated:
            self._running = False
        return self._obs(), reward, terminated, truncated, self._info(terminated or truncated)

    def add_gflops(self, gflops: float) -> None:
        """Report the agent's own computation (GFLOPs) for this episode; counted in info."""
        gflops = float(gflops)
        if not (math.isfinite(gflops) and gflops >= 0):
            raise ValueError(f"gflops must be a finite number >= 0, got {gflops}")
        self._gflops += gflops

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "You are calling render method without specifying any render mode. "
                'You can specify the render_mode at initialization, e.g. gym.make("'
                f'{self.spec.id if self.spec else "AdaFrame-v0"}", render_mode="rgb_array")'
            )
            return None
        if self._t == 0:
            raise RuntimeError("render() called before reset(): call env.reset() first")
        from adaframe_env import render

        if self.render_mode == "ansi":
            return render.ansi_line(self)
        return render.episode_rgb(self)

    def close(self):
        from adaframe_env import render

        render.close(self)
        super().close()

    # ------------------------------------------------------------------ internals
    def _coerce_action(self, action) -> np.ndarray:
        """Slow path of the action check: convert, or raise a clear error."""
        a = action
        if isinstance(a, np.ndarray):
            if a.dtype.kind not in "fiub":
                raise action_error(action, self.action_space, f"dtype {a.dtype}")
        else:
            try:
                a = np.asarray(a, dtype=np.float64)
            except (TypeError, ValueError):
                raise action_error(action, self.action_space, "not numeric") from None
        if a.shape != self._act_shape:
            raise action_error(action, self.action_space, f"shape {a.shape}")
        return a

    def _bad_value(self, action, value: float, what: str):
        problem = "NaN or inf" if not math.isfinite(value) else f"{what} outside [0, 1]"
        raise action_error(action, self.action_space, problem)

    def _scores(self) -> tuple[float, float]:
        """Margin and true-class score of ``_probs``; sets the prediction.

        The top class; a tie with the true class counts as wrong. Float32 probabilities, the
        differences in float64, exactly as the vector env computes them.
        """
        p, label = self._probs, self._label
        g = p.item(label)
        p[label] = -1.0
        other = int(p.argmax())
        m = g - p.item(other)
        p[label] = g
        self._prediction = label if m > 0 else other
        return m, g

    def _obs(self) -> dict[str, np.ndarray]:
        # fresh arrays on every call (the checker requires it); probs is built fresh each step
        obs = {}
        if self._see_frame:
            obs["frame"] = self._features[self._offset + self._frame].astype(np.float32)
        if self.memory:
            obs["memory"] = self._mem.copy()
            obs["memory_positions"] = self._mem_pos.copy()
        if self._see_location:
            loc = self._one.copy()
            loc[0] = self._location
            obs["location"] = loc
        if self._see_step:
            step = self._one.copy()
            step[0] = self._t / self.budget
            obs["step"] = step
        if self._see_probs:
            obs["probs"] = self._probs.copy()
        return obs

    def _info(self, done: bool) -> dict[str, Any]:
        info = {
            "video_id": self._video_id,
            "video_index": self._video,
            "split_index": self._pos,
            "frame": self._frame,
            "frames_used": self._t,
            "distinct_frames": self._n,
            "gflops": self._gflops,
            "margin": self._margin,
            "gt_score": self._gt,
            "prediction": self._prediction,
            "synthetic": self._synthetic,
        }
        if self.label_in_info:
            info["label"] = self._label
        if done:
            info["is_correct"] = self._prediction == self._label
        return info

    def __getstate__(self):
        # The store pickles by path; the arrays taken from it must not be pickled by value.
        state = self.__dict__.copy()
        for key in _ARRAY_REFS + ("_render_fig",):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        attach_arrays(self)
        if self._t:  # unpickled mid-episode: the next step needs the normalizers
            ensure_normalizer(self)

    def __repr__(self) -> str:
        return (
            f"<AdaFrameEnv {self.config.path.name} split={self.split} budget={self.budget} "
            f"reward={self.reward_name} memory={self.memory}>"
        )
