"""LSTM and LSTM-G baselines (paper Table 1), trained with cross-entropy on the train split.

LSTM: a one-layer LSTM over the heavy features of K uniform (U) / random (R) frames or of all
frames, in temporal order; the class scores come from the last step through the shared
:class:`agents.recurrent.memory.Readout` (default ``residual``: the recognizer's AvgPooling over the
same frames plus a correction learned from the last hidden state; ``--set readout=plain`` is the
paper's fully connected layer alone). LSTM-G: the same LSTM with the global memory, attended with
the positional encoding of paper Eq. 1-2 at every step (:class:`agents.recurrent.memory.MemoryLSTM`).

Training (:class:`LSTMSettings`, each settable with ``--set key=value``): Adam (lr 1e-3, weight
decay 1e-4), batch 64, dropout 0.5 on the last hidden state, on the schedule of
:mod:`adaframe_env.protocol.training`: at most 1000 updates, val mAP every 45, stop after 3
evaluations without a new best, the best-val weights kept. On the val split of the small fcvid
proxy (45 batches per pass) ``lstm-u10``'s val mAP rises to 83.8 at update 360 and falls after
as the network memorizes the 12 train videos per class; the early stop ends it at 495
(docs/schedules.md). Random (R) sampling draws new frames every batch; uniform (U) sampling trains on one random frame per
segment (TSN-style jitter) and evaluates on the segment centres. Features (and memory rows) are
standardized with train-split statistics kept in the checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adaframe_env.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    TrainingLog,
    resolve_schedule,
    train_on_schedule,
    val_map,
    write_curves,
)
from agents.recurrent.memory import CONTEXTS, READOUTS, MemoryLSTM, Readout, standardization
from baselines.avgpool import pooled_scores
from baselines.fixed import sampled_frames
from baselines.sampling import jittered_uniform_frames, select_frames


@dataclass(frozen=True)
class LSTMSettings:
    hidden: int = 256
    readout: str = "residual"  # one of agents.recurrent.memory.READOUTS
    dropout: float = 0.5
    updates: int = 1000  # the schedule (adaframe_env.protocol.training): at most this many
    eval_every: int = 45  # updates, val mAP every eval_every, stop after patience evaluations
    patience: int = 3  # without a new best, keep the best-val weights
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    context: str = "content"  # u_t of the -G variants (agents.recurrent.memory.CONTEXTS)

    def __post_init__(self):
        if self.context not in CONTEXTS:
            raise ValueError(f"--set context={self.context}: choose one of {', '.join(CONTEXTS)}")
        if self.readout not in READOUTS:
            raise ValueError(f"--set readout={self.readout}: choose one of {', '.join(READOUTS)}")
        if self.readout == "recognizer":
            raise ValueError(
                "--set readout=recognizer: an LSTM that only reads the recognizer is AvgPooling; "
                "run avgpool-uK instead"
            )
        if (
            min(self.hidden, self.updates, self.eval_every, self.batch_size) < 1
            or self.patience < 0
        ):
            raise ValueError(
                "--set hidden, updates, eval_every and batch_size must be at least 1, patience >= 0"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--set dropout={self.dropout}: must be in [0, 1)")


class LSTMClassifier(nn.Module):
    def __init__(self, input_dim, num_classes, settings: LSTMSettings, memory_dim=None):
        super().__init__()
        self.core = MemoryLSTM(input_dim, settings.hidden, memory_dim, settings.context)
        self.readout = Readout(settings.hidden, num_classes, settings.readout, settings.dropout)

    def forward(self, frames, lengths, pbar, memory=None, positions=None):
        """Class logits (B, C) from the last valid step; ``pbar`` (B, C) is the recognizer's
        AvgPooling over the same frames (used by the residual and recognizer readouts)."""
        return self.readout(self.core(frames, lengths, memory, positions), pbar)


class LSTMAgent(TorchAgent):
    def __init__(self, strategy: str, k: int | None, global_memory: bool = False,
                 settings: dict[str, str] | None = None):  # fmt: skip
        self.strategy, self.k, self.global_memory = strategy, k, global_memory
        self.settings = apply_settings(LSTMSettings(), settings or {}, "lstm")
        g = "-G (attention over the global memory)" if global_memory else ""
        what = "all frames" if strategy == "all" else f"{k} {strategy} frames"
        self.description = f"LSTM{g} over {what}, cross-entropy on the train split"
        self.model = None
        self.buffers = {}
        self.log: TrainingLog | None = None

    def hparams(self) -> dict:
        # "version" changes whenever training changes, so cached checkpoints are not reused
        settings = dataclasses.asdict(self.settings)
        if settings["context"] == "content":  # the default: checkpoints from before it keep
            del settings["context"]  # their key
        return {"strategy": self.strategy, "k": self.k, "global_memory": self.global_memory,
                **settings, "version": 5}  # fmt: skip

    def setup(self, store, config: RunConfig) -> None:
        self.bind(store)
        torch.manual_seed(config.seed)
        mem = store.light_dim if self.global_memory else None
        self.model = LSTMClassifier(store.feature_dim, store.num_classes, self.settings, mem)
        self.device = torch.device(config.device)
        self.model.to(self.device)

    # ---------------------------------------------------------------- data
    def _batch(self, store, videos, frames):
        b = self.buffers
        lengths = np.array([len(f) for f in frames])
        x = np.zeros((len(videos), lengths.max(), store.feature_dim), np.float32)
        rows = store.lookup("features", np.repeat(videos, lengths), np.concatenate(frames))
        mask = np.arange(lengths.max())[None, :] < lengths[:, None]
        x[mask] = (rows.astype(np.float32) - b["mean"]) / b["std"]
        pbar = pooled_scores(store, videos, frames).astype(np.float32)
        out = [torch.from_numpy(a).to(self.device) for a in (x, lengths, pbar)]
        if self.global_memory:
            m = (store.memory(videos).astype(np.float32) - b["mem_mean"]) / b["mem_std"]
            out += [torch.from_numpy(m).to(self.device),
                    torch.from_numpy(store.memory_positions(videos)).to(self.device)]  # fmt: skip
        return out

    def _frames(self, store, videos, rng):
        """Training frames: new random draws (R) or jittered segment frames (U) every batch, so
        that a few thousand training videos are not memorized frame by frame."""
        if self.strategy == "random":
            seed = int(rng.integers(2**31))
            return select_frames(store.length[videos], "random", self.k, seed)
        if self.strategy == "uniform":
            return [jittered_uniform_frames(int(t), self.k, rng) for t in store.length[videos]]
        return select_frames(store.length[videos], self.strategy, self.k)

    def fit(self, store, train_videos, config: RunConfig) -> None:
        s, rng = self.settings, np.random.default_rng(config.seed)
        self.buffers = standardization(store, train_videos, rng)
        opt = torch.optim.Adam(self.model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        labels = torch.from_numpy(store.label).long().to(self.device)
        # batches of similar length waste less padding (matters for "all")
        order = np.argsort(store.length[train_videos], kind="stable")
        chunks = [order[i : i + s.batch_size] for i in range(0, len(order), s.batch_size)]
        schedule = resolve_schedule(Schedule.of(s), config, len(chunks))

        def batches():  # endless: a fresh order of the chunks after each pass
            while True:
                for j in rng.permutation(len(chunks)):
                    yield train_videos[chunks[j]]

        draws = batches()

        def update() -> dict[str, float]:
            self.model.train()
            vids = next(draws)
            frames = self._frames(store, vids, rng)
            logits = self.model(*self._batch(store, vids, frames))
            loss = nn.functional.cross_entropy(logits, labels[vids])
            opt.zero_grad()
            loss.backward()
            opt.step()
            top1 = (logits.argmax(-1) == labels[vids]).float().mean()
            return {"loss": loss.item(), "train_top1": top1.item()}

        self.log = train_on_schedule(schedule, update, lambda: val_map(self, store, config), self.model,
                                     desc=f"train {self.name}", progress=config.progress)  # fmt: skip
        self.model.eval()

    def save(self, directory) -> None:
        super().save(directory)
        if self.log is not None:
            write_curves(self.log, directory, self.name or "lstm",
                         [("loss", "cross-entropy"), ("train_top1", "train top-1"),
                          ("val_map", "val mAP")])  # fmt: skip

    @torch.no_grad()
    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        self.model.eval()
        frames = sampled_frames(store, videos, self.strategy, self.k, config.seed)
        scores = torch.softmax(self.model(*self._batch(store, videos, frames)), -1)
        step = self.model.core.step_gflops()
        return [
            VideoResult(scores=s, frames=f, memory=self.global_memory, extra_gflops=step * len(f))
            for s, f in zip(scores.cpu().numpy(), frames, strict=True)
        ]
