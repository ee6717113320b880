"""The trainer and evaluator shared by AdaFrame, FrameGlimpse and FastForward
(:class:`RecurrentFrameAgent`): one network, one rollout, one loss; the methods are thin
configurations of it (their settings and how they stop at test time)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from adaframe_env import distributed
from adaframe_env.data.schema import SPLIT_NAMES
from adaframe_env.metrics import mean_average_precision
from adaframe_env.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    TrainingLog,
    resolve_schedule,
    train_on_schedule,
    write_curves,
)
from adaframe_env.vector_env import AdaFrameVectorEnv
from agents.recurrent.losses import losses
from agents.recurrent.memory import standardization
from agents.recurrent.network import AdaFrameNet, AdaFrameSettings
from agents.recurrent.rollout import Rollout, rollout


class RecurrentFrameAgent(TorchAgent):
    """The trainer and evaluator shared by AdaFrame, FrameGlimpse and FastForward: one network
    (:class:`AdaFrameNet`), one rollout, one loss; the methods differ in their settings (the
    location policy, a learned stop, the memory) and in how they stop at test time."""

    method = "recurrent"
    defaults = AdaFrameSettings()
    distributed = True  # fit() trains with every rank of a torchrun job (see fit)

    def __init__(self, k: int, settings: dict[str, str] | None = None,
                 global_memory: bool | None = None):  # fmt: skip
        """``global_memory``: the ``-g`` variant (16 memory frames) or not (none); ``None``
        keeps the method's default."""
        self.k = k
        defaults = self.defaults
        if global_memory is not None:
            defaults = dataclasses.replace(defaults, memory_frames=16 if global_memory else 0)
            self.method += "-g" if global_memory else ""
        self.settings = apply_settings(defaults, settings or {}, self.method)
        self.description = self.describe()
        self.model = None
        self.buffers = {}
        self.log: TrainingLog | None = None  # what fit() did (protocol.training)
        self.history: list[dict] = []  # its rows, one per val evaluation
        self._envs: dict[tuple, AdaFrameVectorEnv] = {}
        self._rollouts: dict[tuple, Rollout] = {}  # evaluation rollouts, shared by every mu

    policy_text = "location policy"

    def describe(self) -> str:
        """One line for ``--list`` and the result files (learned-stop methods)."""
        s = self.settings
        memory = " with the global memory" if s.memory_frames else ""
        return (f"{self.method}{memory}: {self.policy_text} and a learned stop (REINFORCE, "
                f"{s.reward} reward minus {s.step_cost:g} per step), at most {self.k} frames")  # fmt: skip

    def hparams(self) -> dict:
        settings = dataclasses.asdict(self.settings)
        if not self.settings.memory_frames:  # no memory, no context: the same model either way
            del settings["context"]
        return {"method": self.method, "k": self.k, **settings, "version": 3}

    def setup(self, store, config: RunConfig) -> None:
        self.bind(store)
        self._rollouts.clear()
        torch.manual_seed(config.seed)
        memory_dim = store.light_dim if self.settings.memory_frames > 0 else None
        self.model = AdaFrameNet(
            store.feature_dim, store.num_classes, memory_dim, self.settings, self.k
        )
        self.device = torch.device(config.device)
        self.model.to(self.device)

    def make_env(self, store, split: str, num_envs: int) -> AdaFrameVectorEnv:
        """The vector env this agent trains and evaluates on (one per split and size, kept)."""
        key = (str(store.path), split, num_envs)
        if key not in self._envs:
            self._envs[key] = AdaFrameVectorEnv(
                num_envs, data=store, split=split, budget=self.k,
                reward=self.settings.reward, memory=self.settings.memory_frames > 0,
                memory_frames=max(self.settings.memory_frames, 1),
                observation_keys=("frame", "probs"), label_in_info=split == "train",
            )  # fmt: skip
        return self._envs[key]

    # ------------------------------------------------------------------ training
    def fit(self, store, train_videos, config: RunConfig) -> None:
        """Train on ``train_videos`` on the method's schedule
        (:mod:`adaframe_env.protocol.training`: ``updates`` batches of ``batch_size`` videos,
        val mAP every ``eval_every``, the best-val weights kept, early stop after
        ``patience`` evaluations without a new best); under ``torchrun``, on every rank
        together. The learning rate is divided by 10 every ``lr_step`` updates.

        Several processes (:mod:`adaframe_env.distributed`, docs/distributed.md): every
        rank draws the same batch orders (the NumPy generator is seeded alike), runs the
        episodes of its shard ``batch[rank::world]`` of each global batch, and the ranks' loss
        gradients, weighted by their shares of the batch, are summed by one all-reduce: every
        rank holds the one-process batch gradient and takes the same step. The logged training
        metrics are summed the same way; rank 0 alone computes the val mAP and sends it to the
        others, so every rank stops at the same update and keeps the same weights. The torch
        generator (Gaussian locations, stops, dropout) gets a seed per rank, so the ranks do
        not explore with the same noise: a run on W processes matches one process up to these
        draws, not bit for bit.

        Why an all-reduce of our own rather than ``DistributedDataParallel``: DDP prepares its
        gradient hooks in the wrapped module's ``forward``, while a rollout is K calls of
        :meth:`AdaFrameNet.step` (and of the core's ``keys``) between env steps; and some
        parameters get no gradient in some settings (the location head with K = 1, the readout
        layer with ``readout=recognizer``), which DDP accepts only with
        ``find_unused_parameters=True``, and that option does not support several forward
        calls per backward. One explicit all-reduce after ``backward()`` has neither
        constraint, is visible in the loop, and moves the same bytes as DDP (without DDP's
        overlap of communication with the backward pass; the rollout dominates an update).
        """
        s, net = self.settings, self.model
        self._rollouts.clear()
        rng = np.random.default_rng(config.seed)
        world = distributed.world()
        # the one-process seed on rank 0; other ranks draw their own exploration noise
        torch.manual_seed(config.seed + 1_000_003 * distributed.rank())
        self.buffers = standardization(store, train_videos, rng)
        batch = min(s.batch_size, len(train_videos))
        if batch < world:
            raise ValueError(f"{self.method}: a batch of {batch} videos on {world} processes")
        env = self.make_env(store, "train", math.ceil(batch / world))  # one shard's episodes
        env.reset(seed=config.seed)
        if not np.isin(train_videos, env.split_videos).all():
            raise ValueError(f"{self.method}: train_videos must be videos of the train split")
        positions = np.searchsorted(env.split_videos, train_videos)  # the env's video numbering
        distributed.broadcast_parameters(net)  # identical already (same seed); made certain
        if s.optimizer == "sgd":
            opt = torch.optim.SGD(net.parameters(), s.lr, momentum=0.9, weight_decay=s.weight_decay)
        else:
            opt = torch.optim.Adam(net.parameters(), s.lr, weight_decay=s.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, s.lr_step or 10**9, gamma=0.1)
        per_epoch = len(train_videos) // batch
        schedule = resolve_schedule(Schedule.of(s), config, per_epoch)
        val, main = store.videos("val"), distributed.is_main()
        batches = _batches(rng, len(train_videos), batch)

        def update() -> dict[str, float]:
            net.train()
            videos = positions[next(batches)]
            opt.zero_grad()
            r, terms, share = self._backward(env, videos)
            opt.step()
            sched.step()
            exits = r.exit_steps()
            correct = (r.final_logits().argmax(-1).cpu().numpy() == r.labels).mean()
            distinct = np.mean(
                [len(np.unique(f[:e])) for f, e in zip(r.frames, exits, strict=True)]
            )
            spread = r.location[:, 1:].std().item() if r.location[:, 1:].numel() > 1 else 0.0
            values = {"loss_cls": terms["cls"].item(), "loss_utl": terms["utl"].item(),
                      "j_sel": terms["sel"].item(), "train_top1": float(correct),
                      "return": terms["rewards"].sum(1).mean().item(),
                      "frames": float(distinct), "location_std": spread}  # fmt: skip
            # batch means over the ranks (location_std: the shards' stds, averaged)
            return distributed.weighted_sum(values, share, self.device)

        def validate() -> float:
            return self._val_map(store, val) if main else float("nan")  # rank 0 only

        self.log = train_on_schedule(
            schedule, update, validate, net, desc=f"train {self.name}",
            progress=config.progress and main, decide=distributed.broadcast_object,
            on_row=(lambda row: tqdm.write(_format_row(row))) if config.progress and main else None,
        )  # fmt: skip
        self.history = self.log.rows
        if config.progress and main:
            tqdm.write(f"{self.name}: {self.log.summary()}")
        net.eval()

    def _backward(self, env: AdaFrameVectorEnv, videos: np.ndarray):
        """This rank's shard of the global batch ``videos`` (env positions): its episodes, its
        losses, ``backward()``, and the gradients summed over the ranks (each weighted by its
        share of the batch). Returns ``(rollout, loss terms, share)`` of this rank's shard; in
        one process, the whole batch with share 1."""
        mine = distributed.shard(videos)
        share = len(mine) / len(videos)
        r = rollout(self.model, env, mine, self.buffers, self.device, sigma=self.settings.sigma)
        looking = None
        if self.settings.perstep_loss and r.alive is not None and distributed.is_distributed():
            # the one-process loss averages over the looking steps of the whole batch: divide
            # by the batch's count, times this rank's share (which sum_gradients multiplies in)
            steps = distributed.weighted_sum({"steps": float(r.alive.sum())}, 1.0, self.device)
            looking = steps["steps"] * share
        terms = losses(r, self.settings, looking)
        terms["total"].backward()
        distributed.sum_gradients(self.model.parameters(), share)
        return r, terms, share

    @torch.no_grad()
    def _val_map(self, store, val) -> float:
        if len(val) == 0:
            return float("nan")
        scores = torch.softmax(self.episodes(store, val).final_logits(), -1).cpu().numpy()
        return float(mean_average_precision(scores, store.label[val]))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def episodes(self, store, videos, locations: np.ndarray | None = None) -> Rollout:
        """Deterministic K-step episodes (the policy's mean, or fixed ``locations``) for file
        indices ``videos``."""
        self.model.eval()
        split = SPLIT_NAMES[int(store.split[videos[0]])]
        if np.any(store.split[videos] != store.split[videos[0]]):
            raise ValueError(f"{self.method} evaluates one split at a time")
        env = self.make_env(store, split, min(256, max(len(videos), 1)))
        positions = np.searchsorted(env.split_videos, videos)  # split_videos is sorted
        parts = [rollout(self.model, env, positions[i : i + env.num_envs], self.buffers,
                         self.device, locations=locations)
                 for i in range(0, len(videos), env.num_envs)]  # fmt: skip
        return Rollout.concat(parts)

    def exits(self, r: Rollout, mu: float | None) -> np.ndarray:
        """1-based exit step of each video: its own stop decisions, else the full budget."""
        return r.exit_steps()

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        """Results for ``videos``; the deterministic rollout of a chunk is computed once and
        reused for every ``mu`` (so the first mu's time includes it)."""
        key = (str(store.path), tuple(int(v) for v in videos))
        if key not in self._rollouts:
            self._rollouts[key] = self.episodes(store, np.asarray(videos))
        r = self._rollouts[key]
        exits = self.exits(r, mu)
        probs = torch.softmax(r.logits, -1).cpu().numpy()
        m = self.settings.memory_frames
        step = self.model.step_gflops(m)
        return [
            VideoResult(scores=probs[i, e - 1], frames=r.frames[i, :e], memory=m > 0,
                        memory_frames=m, extra_gflops=step * e, exit_step=int(e))
            for i, e in enumerate(exits)
        ]  # fmt: skip

    # ------------------------------------------------------------------ checkpoint
    def load(self, directory: Path) -> None:
        super().load(directory)
        self._rollouts.clear()

    def save(self, directory: Path) -> None:
        super().save(directory)
        if self.log is not None and self.log.rows:
            title = self.name or f"{self.method}-{self.k}"
            write_curves(self.log, Path(directory), title, PANELS)


def _batches(rng: np.random.Generator, n: int, batch: int):
    """Endless batches of ``batch`` distinct indices into ``n`` train videos: a fresh random
    order of all of them, cut into whole batches (the last ``n % batch`` wait for the next
    order), then the next order."""
    while True:
        order = rng.permutation(n)
        for i in range(n // batch):
            yield order[i * batch : (i + 1) * batch]


def _format_row(row: dict) -> str:
    return (
        f"update {row['update']:5d}  L_cls {row['loss_cls']:.3f}  L_utl {row['loss_utl']:.4f}  "
        f"J_sel {row['j_sel']:+.4f}  train top-1 {100 * row['train_top1']:5.1f}  "
        f"return {row['return']:.3f}  frames {row['frames']:.2f}  "
        f"loc std {row['location_std']:.3f}  val mAP {100 * row['val_map']:5.1f}  "
        f"({row['seconds']:.1f}s)"
    )


#: the panels of the training curves (the rows' keys and their labels)
PANELS = [("loss_cls", "L_cls"), ("loss_utl", "L_utl"), ("j_sel", "J_sel"),
          ("return", "train return"), ("frames", "distinct frames"),
          ("location_std", "location std"), ("train_top1", "train top-1"),
          ("val_map", "val mAP")]  # fmt: skip
