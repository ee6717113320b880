"""What both envs share (:class:`~adaframe_env.env.AdaFrameEnv` and the native
:class:`~adaframe_env.vector_env.AdaFrameVectorEnv`): their arguments as one object
(:class:`EnvArgs`), checked and turned into the data and spaces an env runs on
(:func:`make_config` -> :class:`EnvConfig`); the stores shared by every env of a process
(:func:`open_store`); and the checks of reset options and actions.
"""

from __future__ import annotations

import dataclasses
import math
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gymnasium import spaces

from adaframe_env._fast import log_normalizer, memory_positions
from adaframe_env.build.proxy import resolve_data
from adaframe_env.data.schema import SPLITS, CacheError
from adaframe_env.data.store import MEMORY_SIZE, FeatureStore, file_version
from adaframe_env.rewards import check_reward_name

#: Observation keys an env can return, in the order the docstring lists them.
OBSERVATION_KEYS = ("frame", "memory", "memory_positions", "location", "step", "probs")
#: Keys observed by default (the memory keys follow the ``memory`` argument).
DEFAULT_OBSERVATION_KEYS = ("frame", "location", "step", "probs")
_MEMORY_KEYS = ("memory", "memory_positions")

# --------------------------------------------------------------------------- shared stores
# Weak values: a store lives as long as some env (or caller) uses it, then its RAM is freed.
_STORES: weakref.WeakValueDictionary[tuple, FeatureStore] = weakref.WeakValueDictionary()


def open_store(path: str | os.PathLike, lazy: bool = False) -> FeatureStore:
    """A :class:`FeatureStore` for ``path``, shared by every env of this process.

    Keyed by resolved path and file version (inode, size, mtime, ctime:
    :func:`~adaframe_env.data.store.file_version`), so 256 sub-environments read (and
    validate) the file once, and a rewritten or edited file is opened afresh, even with its
    mtime put back. A missing or invalid file raises the validator's
    :class:`~adaframe_env.data.schema.CacheError`.
    """
    path = Path(path)
    try:
        key = (str(path.resolve()), tuple(file_version(path).values()), bool(lazy))
    except OSError:
        return FeatureStore(path, lazy=lazy)  # raises CacheError naming the file
    store = _STORES.get(key)
    if store is None:  # first use, or the file changed (a new version: a new key)
        store = FeatureStore(path, lazy=lazy)
        _STORES[key] = store
    return store


def clear_store_cache() -> None:
    """Forget the shared stores (envs keep theirs until they are garbage collected)."""
    _STORES.clear()


# --------------------------------------------------------------------------- configuration
@dataclass
class EnvConfig:
    """Validated arguments and derived constants shared by the single and the vector env."""

    store: FeatureStore
    path: Path
    split: str
    split_videos: np.ndarray
    budget: int
    reward: str
    memory: bool
    memory_frames: int
    stop_action: bool
    frame_cost: float
    initial_location: float
    label_in_info: bool
    obs_keys: tuple[str, ...]
    observation_space: spaces.Dict
    action_space: spaces.Box

    @property
    def gflops_per_frame(self) -> float:
        return self.store.gflops_per_frame

    @property
    def memory_gflops(self) -> float:
        return self.store.memory_cost(self.memory_frames) if self.memory else 0.0


@dataclass(frozen=True)
class EnvArgs:
    """The arguments of both env constructors, as the user gave them (their meaning: the
    "Arguments" table of :class:`~adaframe_env.env.AdaFrameEnv`); :func:`make_config` checks
    them."""

    data: str | os.PathLike | FeatureStore | None = None
    split: str = "train"
    budget: int = 10
    reward: str = "margin"
    memory: bool = True
    stop_action: bool = False
    frame_cost: float = 0.0
    dataset: str | None = None
    observation_keys: tuple[str, ...] | None = None
    initial_location: float = 0.0
    label_in_info: bool | None = None
    lazy: bool = False
    memory_frames: int = MEMORY_SIZE


def make_config(args: EnvArgs) -> EnvConfig:
    """Check every constructor argument (clear errors), open the data and build the spaces.

    ``args.data`` may be an open :class:`FeatureStore` (what an agent holds): it is used as
    it is (``lazy`` and ``dataset`` are then ignored), nothing is resolved or opened again.
    """
    (data, split, budget, reward, memory, stop_action, frame_cost, dataset, observation_keys,
     initial_location, label_in_info, lazy, memory_frames) = (
        getattr(args, f.name) for f in dataclasses.fields(args))  # fmt: skip
    if isinstance(memory_frames, bool) or not isinstance(memory_frames, (int, np.integer)):
        raise TypeError(f"memory_frames must be an int, got {memory_frames!r}")
    if memory_frames < 1:
        raise ValueError(
            f"memory_frames must be at least 1, got {memory_frames} (no memory: memory=False)"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise TypeError(f"budget must be an int (frames per episode), got {budget!r}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1 frame, got {budget}")
    check_reward_name(reward)
    try:
        frame_cost = float(frame_cost)
    except (TypeError, ValueError):
        raise TypeError(f"frame_cost must be a number (per GFLOP), got {frame_cost!r}") from None
    if not (math.isfinite(frame_cost) and frame_cost >= 0):
        raise ValueError(f"frame_cost must be a finite number >= 0, got {frame_cost}")
    initial_location = float(initial_location)
    if not 0.0 <= initial_location <= 1.0:
        raise ValueError(f"initial_location must be in [0, 1], got {initial_location}")
    if observation_keys is None:
        observation_keys = DEFAULT_OBSERVATION_KEYS
    observation_keys = tuple(observation_keys)
    unknown = [k for k in observation_keys if k not in OBSERVATION_KEYS]
    if unknown:
        raise ValueError(
            f"unknown observation key(s) {unknown}; choose from {', '.join(OBSERVATION_KEYS)}"
        )
    if any(k in _MEMORY_KEYS for k in observation_keys):
        raise ValueError(
            "the memory keys are switched by memory=True/False, not by observation_keys"
        )
    keys = tuple(
        k for k in OBSERVATION_KEYS if k in observation_keys or (memory and k in _MEMORY_KEYS)
    )
    if not keys:
        raise ValueError("nothing to observe: observation_keys is empty and memory=False")

    if isinstance(data, FeatureStore):
        store, path = data, data.path
    else:
        path = resolve_data(data, dataset)
        store = open_store(path, lazy=lazy)
    longest = int(store.length.max())
    if budget > longest:  # more looks than any video has frames: a mistake (10**9 of a typo)
        raise ValueError(
            f"budget {budget} is beyond the longest video of {path} ({longest} frames, "
            f"{store.video_id[int(store.length.argmax())]}); the budget counts looks, revisits "
            f"included: use at most {longest}, the longest video's frame count"
        )
    split_videos = store.videos(split)
    if len(split_videos) == 0:
        counts = ", ".join(f"{s}: {len(store.videos(s))}" for s in SPLITS)
        raise CacheError(path, "/videos/split", f"split {split!r} has no videos ({counts})")

    c, d, dl = store.num_classes, store.feature_dim, store.light_dim
    boxes = {
        "frame": spaces.Box(-np.inf, np.inf, (d,), np.float32),
        "memory": spaces.Box(-np.inf, np.inf, (memory_frames, dl), np.float32),
        "memory_positions": spaces.Box(0.0, 1.0, (memory_frames,), np.float32),
        "location": spaces.Box(0.0, 1.0, (1,), np.float32),
        "step": spaces.Box(0.0, 1.0, (1,), np.float32),
        "probs": spaces.Box(0.0, 1.0, (c,), np.float32),
    }
    observation_space = spaces.Dict({k: boxes[k] for k in keys})
    action_space = spaces.Box(0.0, 1.0, (2 if stop_action else 1,), np.float32)
    return EnvConfig(
        store=store,
        path=Path(path),
        split=split,
        split_videos=split_videos,
        budget=int(budget),
        reward=reward,
        memory=bool(memory),
        memory_frames=int(memory_frames),
        stop_action=bool(stop_action),
        frame_cost=frame_cost,
        initial_location=initial_location,
        label_in_info=(split == "train") if label_in_info is None else bool(label_in_info),
        obs_keys=keys,
        observation_space=observation_space,
        action_space=action_space,
    )


_ARRAY_REFS = ("_features", "_logits", "_light", "_lse", "_mem_rows", "_mem_pos_table")


def ensure_normalizer(env) -> None:
    """The per-frame log-normalizers of the recognizer's logits (:func:`log_normalizer`),
    computed on the first reset rather than at construction, so that making an env imports
    no torch (docs/design.md, "Layers")."""
    if env._lse is None:
        env._lse = log_normalizer(env.store)


def attach_arrays(env) -> None:
    """Give ``env`` direct references to the store's hot arrays (after init or unpickling)."""
    store = env.store
    env._features = store.array("features")
    env._logits = store.array("logits")
    env._light = store.array("light")
    env._lse = None  # the first reset computes it (ensure_normalizer): torch, one pass
    env._mem_rows = store.memory_layout(env.config.memory_frames)[1]
    env._mem_pos_table = memory_positions(store, env.config.memory_frames)


def check_options(options: dict | None, allowed: tuple[str, ...]) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed: {', '.join(allowed)}")
    return options


def action_error(
    action, action_space: spaces.Box, problem: str, num_envs: int | None = None
) -> ValueError:
    """The error of a bad action. ``action_space`` is the single env's space (its last size
    says whether it is ``[location]`` or ``[location, stop]``); ``num_envs``: the vector env's
    batch, one such row per sub-env."""
    n = action_space.shape[-1]
    form = "[location]" if n == 1 else "[location, stop]"
    if num_envs is None:
        expected = f"a float32 array of shape {action_space.shape} {form}"
    else:
        expected = f"a float32 array of shape ({num_envs}, {n}), one row {form} per sub-env,"
    given = " ".join(repr(action).split())  # a batch's repr spans lines: one line
    return ValueError(
        f"invalid action {given}: {problem}; expected {expected} with values in [0, 1]"
    )
