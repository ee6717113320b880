"""The agent protocol (layer 4, docs/design.md): what every method the harness compares implements.

Every method the harness compares -- a baseline, an SB3 model, AdaFrame, a user's own agent --
is an object with this interface::

    class MyAgent(BaseAgent):
        description = "one line for --list"
        trainable = True          # False: fit is a no-op and nothing is checkpointed
        uses_mu = False           # True: one result row per --mu value (adaptive inference)

        def setup(self, store, config): ...                    # optional: size networks
        def fit(self, store, train_videos, config): ...        # train on the train split
        def evaluate(self, store, videos, config, mu=None):    # a batch of test videos
            return [VideoResult(scores=..., frames=..., memory=...) for v in videos]
        def save(self, directory): ...   # checkpoint (trainable agents only)
        def load(self, directory): ...
        def num_parameters(self): ...
        def hparams(self): ...           # what, with the run config, defines a checkpoint

``store`` is an :class:`adaframe_env.data.store.FeatureStore`; ``train_videos`` / ``videos``
are file indices of videos (``store.videos("train")``, a chunk of ``store.videos("test")``);
``config`` is a :class:`RunConfig`. ``evaluate`` returns one :class:`VideoResult` per video, in
order. The harness, not the agent, turns what a result says it looked at into GFLOPs, so every
method is charged by the same rule:

    GFLOPs = distinct heavy frames x gflops_per_frame
             + memory_frames x light_gflops_per_frame if memory is used (16 frames: 1.32 on
               the paper's backbones)
             + light_frames x light_gflops_per_frame  (e.g. SCSampler: the light model on all)
             + extra_gflops  (anything else the agent computes, e.g. its own network)

A user's agent is a factory ``f(config: RunConfig) -> agent`` named by import path:
``python benchmarks/run.py --agent mypkg.mymodule:make_agent`` (or ``path/to/file.py:make_agent``).
See ``examples/custom_agent.py`` and ``docs/harness.md``.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


@dataclass
class RunConfig:
    """What the command line fixes for one run (shared by every agent).

    ``budget``: K, frames per video for agents that take it from the command line (names with
    a K of their own, such as ``avgpool-u10``, override it). ``mu``: thresholds of adaptive
    inference, used only by agents with ``uses_mu``. ``updates``, ``eval_every``, ``patience``:
    the training schedule of a learned method (:mod:`adaframe_env.protocol.training`; None:
    the method's default); ``epochs``: the fixed schedule instead (that many passes over the
    train split, no early stop). ``settings``: ``--set key=value`` hyperparameters of a learning agent
    (:mod:`adaframe_env.protocol.settings`; part of its checkpoint key through ``hparams()``).
    ``lazy``: open the cache memory-mapped instead of reading it into RAM (a cache larger than
    RAM; the ranks of a ``torchrun`` job then share one page cache); not part of the checkpoint
    key (the same data either way). ``extra``: free-form options (e.g. ``model`` for a
    pre-trained SB3 file).

    Checked at construction (and by ``dataclasses.replace``), one ``ValueError`` line each:
    ``budget`` None or an integer >= 1, every schedule field (:data:`SCHEDULE`) None or an
    integer >= 1 (``patience`` >= 0: 0 never stops early), not both ``epochs`` and
    ``updates``, ``seed`` an integer >= 0. Whether ``device`` exists is checked by
    :meth:`check_device` (it imports torch), which the harness calls before a run starts.
    """

    #: the fields that set how long an agent trains (None: the agent's default). A value given
    #: is part of the run's name (``-updates2000``) and of its checkpoint key, so results of
    #: different schedules never share a file; one rule for every field listed here.
    SCHEDULE: ClassVar[tuple[str, ...]] = ("epochs", "updates", "eval_every", "patience")

    budget: int | None = 10
    mu: tuple[float, ...] = (0.7,)
    epochs: int | None = None
    updates: int | None = None
    eval_every: int | None = None
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lazy: bool = False

    def __post_init__(self):
        if self.budget is not None and not _is_int(self.budget, 1):
            raise ValueError(
                f"RunConfig.budget must be an integer >= 1 (frames per video) or None, "
                f"got {self.budget!r}"
            )
        for name in self.SCHEDULE:
            value = getattr(self, name)
            least = 0 if name == "patience" else 1
            if value is not None and not _is_int(value, least):
                raise ValueError(
                    f"RunConfig.{name} must be an integer >= {least}, or None for the agent's "
                    f"default, got {value!r}"
                )
        if self.epochs is not None and self.updates is not None:
            raise ValueError(
                "RunConfig: give epochs (a fixed number of passes) or updates, not both"
            )
        if not _is_int(self.seed, 0):
            raise ValueError(f"RunConfig.seed must be a non-negative integer, got {self.seed!r}")

    def schedule(self) -> dict[str, int]:
        """The schedule fields given (not None), e.g. ``{"epochs": 3}``; ``{}`` for the
        agent's default schedule."""
        return {name: getattr(self, name) for name in self.SCHEDULE
                if getattr(self, name) is not None}  # fmt: skip

    def check_device(self) -> None:
        """Raise a one-line ``ValueError`` when ``device`` is a CUDA device and this machine has
        none (imports torch only for a CUDA device)."""
        if not str(self.device).startswith("cuda"):
            return
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                f"device {self.device!r}: no CUDA device is available "
                "(torch.cuda.is_available() is False); use device='cpu'"
            )

    def key(self) -> dict:
        """The part of the config that defines a trained checkpoint."""
        schedule = {name: getattr(self, name) for name in self.SCHEDULE}
        return {"budget": self.budget, **schedule, "seed": self.seed}

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mu"] = list(self.mu)
        return d


def _is_int(value, minimum: int) -> bool:
    """``value`` is an integer (not a bool) of at least ``minimum``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


@dataclass
class VideoResult:
    """What an agent did with one video.

    Attributes:
        scores: (C,) class scores (any monotone scale; mAP and top-1 use them as they are).
        frames: heavy-backbone frame indices looked at, in the order visited (revisits allowed;
            only distinct frames cost GFLOPs). The step at which the agent stopped is
            ``exit_step`` (default: ``len(frames)``).
        memory: the agent used the global memory (charged ``store.memory_cost(memory_frames)``).
        memory_frames: light frames in that memory (paper Table 4: 12, 16, 32; default 16).
        light_frames: light-backbone frames beyond the memory (SCSampler: every frame).
        extra_gflops: any further computation the agent wants charged.
        exit_step: the step at which the prediction was emitted (1-based).
    """

    scores: np.ndarray
    frames: np.ndarray
    memory: bool = False
    memory_frames: int = 16
    light_frames: int = 0
    extra_gflops: float = 0.0
    exit_step: int | None = None


@runtime_checkable
class Agent(Protocol):
    description: str
    trainable: bool
    uses_mu: bool

    def fit(self, store, train_videos: np.ndarray, config: RunConfig) -> None: ...

    def evaluate(
        self, store, videos: np.ndarray, config: RunConfig, mu: float | None = None
    ) -> list[VideoResult]: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...

    def num_parameters(self) -> int: ...

    def hparams(self) -> dict: ...


class BaseAgent:
    """Defaults for the protocol: training-free, no checkpoint, no parameters."""

    description = ""
    trainable = False
    uses_mu = False
    is_bound = False  # an upper bound (the oracle), reported but never a competitor
    distributed = False  # True: fit() trains with all ranks of a torchrun job (distributed.md)
    name = ""

    def setup(self, store, config: RunConfig) -> None:
        """Called once before ``fit`` or ``load`` (build networks sized for ``store``)."""
        return None

    def fit(self, store, train_videos, config: RunConfig) -> None:
        return None

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        return None

    def load(self, directory: Path) -> None:
        return None

    def num_parameters(self) -> int:
        return 0

    def hparams(self) -> dict:
        return {}


class TorchAgent(BaseAgent):
    """An agent whose trained state is one ``torch.nn.Module`` in ``self.model`` (plus an
    optional dict of NumPy arrays ``self.buffers``): save/load/num_parameters come for free.

    A checkpoint is data, not code: tensors, numbers and strings, loaded with
    ``torch.load(weights_only=True)``. It records the cache it was trained on
    (:func:`data_signature`, set by :meth:`bind` in ``setup``); loading it into a cache of other
    dimensions or classes fails with one line naming both. A ``model.pt`` that is not a
    readable checkpoint of this network (truncated, empty, no ``model`` weights, other keys or
    shapes) raises :class:`CheckpointError` before anything is loaded, so the agent is left as
    it was (the harness then retrains it).
    """

    trainable = True
    model = None
    data: dict | None = None

    def bind(self, store) -> None:
        """Remember which cache this agent is built for (call from ``setup``)."""
        self.data = data_signature(store)

    def save(self, directory: Path) -> None:
        import torch

        buffers = {
            k: torch.as_tensor(np.asarray(v)) for k, v in getattr(self, "buffers", {}).items()
        }
        torch.save(
            {"model": self.model.state_dict(), "buffers": buffers, "data": self.data or {},
             "hparams": self.hparams()},
            Path(directory) / "model.pt",
        )  # fmt: skip

    def load(self, directory: Path) -> None:
        """Load ``model.pt``; a file that is not a readable checkpoint of this network raises
        :class:`CheckpointError` and leaves the agent as it was."""
        import torch

        path = Path(directory) / "model.pt"
        fix = f"delete {Path(directory)} to retrain"
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError:
            raise CheckpointError(
                path, "not a weights-only checkpoint (an older adaframe-gym wrote pickled "
                "arrays, or another program wrote it)", fix,
            ) from None  # fmt: skip
        except FileNotFoundError:
            raise CheckpointError(path, "missing", fix) from None
        except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a bad file
            raise CheckpointError(path, f"unreadable ({one_line(e)})", fix) from None
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise CheckpointError(path, "no 'model' weights in it", fix)
        saved, buffers = state.get("data") or {}, state.get("buffers", {})
        if not isinstance(saved, dict) or not isinstance(state.get("hparams") or {}, dict):
            raise CheckpointError(path, "its 'data' or 'hparams' record is not a dict", fix)
        if self.data and saved and saved != self.data:
            raise CheckpointError(
                path, f"trained on {describe_data(saved)}, but this cache is "
                f"{describe_data(self.data)}", "train a new model for it",
            )  # fmt: skip
        saved, mine = state.get("hparams"), self.hparams()
        if saved and saved != mine:
            changed = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
            raise CheckpointError(
                path, f"trained with other hyperparameters ({', '.join(changed)}: "
                f"{[saved.get(k) for k in changed]} there, {[mine.get(k) for k in changed]} "
                "here)", "train a new model for them",
            )  # fmt: skip
        misfit = state_dict_misfit(self.model.state_dict(), state["model"])  # built by setup()
        if misfit:
            raise CheckpointError(path, f"its weights do not fit this network ({misfit})", fix)
        if not isinstance(buffers, dict) or not all(
            isinstance(v, torch.Tensor) for v in buffers.values()
        ):
            raise CheckpointError(path, "its 'buffers' are not a dict of tensors", fix)
        self.model.load_state_dict(state["model"])
        self.buffers = {k: v.numpy() for k, v in buffers.items()}

    def num_parameters(self) -> int:
        if self.model is None:
            return 0
        return int(sum(p.numel() for p in self.model.parameters()))


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be used: ``path: reason; fix`` on one line.

    The harness treats one in its checkpoint cache as a cache miss (it warns with ``reason``
    and retrains); a user's ``--model FILE`` fails with the whole line."""

    def __init__(self, path, reason: str, fix: str):
        self.path, self.reason, self.fix = Path(path), reason, fix
        super().__init__(f"{path}: {reason}; {fix}")


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, at most ``limit`` characters (library errors such
    as torch's span several lines)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def state_dict_misfit(mine: dict, theirs: dict) -> str | None:
    """Why the state dict ``theirs`` does not load into a module whose state dict is ``mine``
    (missing or unexpected keys, other shapes), or None when it fits."""
    missing = [k for k in mine if k not in theirs]
    unexpected = [k for k in theirs if k not in mine]
    shapes = []
    for k in mine:
        if k in theirs and getattr(theirs[k], "shape", None) != mine[k].shape:
            there = tuple(theirs[k].shape) if hasattr(theirs[k], "shape") else "not a tensor"
            shapes.append(f"{k}: {there} there, {tuple(mine[k].shape)} here")
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" and {len(items) - 2} more" if len(items) > 2 else ""
            parts.append(f"{label} {', '.join(items[:2])}{more}")
    return "; ".join(parts) or None


def data_signature(store) -> dict:
    """What a trained model depends on in a cache: dataset, dimensions and class names."""
    import hashlib

    classes = hashlib.sha256("\n".join(store.class_names).encode()).hexdigest()[:12]
    return {"dataset": str(store.attrs.get("dataset", "?")), "feature_dim": store.feature_dim,
            "light_dim": store.light_dim, "num_classes": store.num_classes,
            "classes_sha256": classes}  # fmt: skip


def describe_data(d: dict) -> str:
    return (
        f"{d.get('dataset')} ({d.get('num_classes')} classes, features {d.get('feature_dim')}, "
        f"light {d.get('light_dim')}, class names {d.get('classes_sha256')})"
    )
