"""FrameExit (Ghodrati, Bejnordi, Habibian, CVPR 2021): look at frames in a fixed coarse-to-fine
order and stop as soon as a learned gate says the prediction is good enough.

What it does, per video, for at most K heavy frames (``frameexit-K``):

1. **Order.** Locations 0.5, then 0.25, 0.75, then 0.125, 0.375, 0.625, 0.875, ... (the first
   K of :func:`coarse_to_fine_locations`), mapped to frames by
   :func:`adaframe_env.data.store.frame_of_location`. The order does not depend on the video:
   FrameExit decides only *when* to stop, not where to look.
2. **Accumulated representation.** Each standardized heavy feature goes through a small
   embedding (``Linear + ReLU``, the role of the paper's 4096-unit MLP on the backbone
   output); ``z_t`` is the running **max** of the embeddings seen so far (the paper's max
   pooling, also what the authors' released inference code does).
3. **Classifier.** One linear head shared by every step, on ``z_t``, with the recognizer's
   running AvgPooling ``pbar_t`` (mean softmax of the cached heavy logits of the frames seen so
   far) as a residual: ``logits_t = W z_t + b + log pbar_t`` with ``W, b`` starting at zero,
   as :class:`agents.recurrent.memory.Readout` does (``--set residual=false``: the head alone).
   Why shared and residual: the authors' code has one classifier per step, but on a proxy
   with ~12 train videos per class, K heads of 239 classes memorize; starting from the
   recognizer keeps step 1 as good as AvgPooling over one frame.
4. **Gates.** One small gate per step, with its own weights (as in the authors' code), for
   steps 1..K-1 (step K always exits): ``Linear + ReLU + Linear`` to the logit of the
   probability of exiting now. By default (``gate_input=confidence``) gate t reads three
   numbers about the classifier's scores at step t: top probability, top-1 minus top-2, and
   entropy / log C. ``gate_input=features`` also gives it ``z_t``, closer to the paper, whose
   gate reads ``z_t`` and ``z_{t-1}``. Why confidence by default: whether the classifier is
   already right is what the gate has to predict, and on the tiny preset's val split the
   gates on ``z_t`` overfit the 48 train videos at once (val BCE 0.37-0.49 against
   0.05-0.47 for the confidence gates, beta 0.1, 0.3, 1.0). (The authors also exit after the first
   frame on a softmax threshold of 0.99 instead of a gate; here step 1 has a gate like every
   other step.)

Training (two stages, both on :func:`adaframe_env.protocol.training.train_on_schedule`):

- **Stage 1, classifier:** cross-entropy at every step (the mean over the K steps), Adam,
  random batches of train videos; val score: the mean over steps of the val mAP at that step
  (the gates do not exist yet, and every step is a possible exit).
- **Stage 2, gates**, classifier frozen: binary cross-entropy of gate t against the pseudo
  label ``y_t = 1[CE_t < beta]`` (exit where the classifier's loss at step t is already below
  ``beta``), computed once from the frozen classifier; val score: minus the gates' BCE on the
  val split's pseudo labels (that is what the ``val_map`` column of the gate curves holds).

Why two stages, where the paper, as we recall it (its text is not in this repository and the
authors released inference code only), minimizes the sum of both losses end to end:
joint training makes the pseudo labels a moving target, and early stopping on val cannot
judge both parts by one number: the exiting model's val mAP is highest when the gates never
exit, so keeping the best-val weights would keep gates that ignore ``beta``. With the
classifier frozen first, each stage is checked on val by its own metric. The paper's threshold
also grows with the step (``beta * exp(t / 2)``, as we recall it); we keep one ``beta`` for every
step, so that it reads directly as a confidence: ``CE_t < beta`` is ``p_t(true class) >
exp(-beta)`` (beta 0.1: p > 0.90; 0.5: p > 0.61; 1.0: p > 0.37). Larger beta: earlier exits,
fewer frames, lower mAP. On the val split of the fcvid proxy (K = 10, seed 0): beta 0.1:
mAP 87.1 at 4.2 frames (33.0 GFLOPs); 0.5 (default, the middle of that curve): 83.7 at 2.9
(22.5); 1.0: 81.1 at 2.2 (17.0).

Test: exit at the first step whose gate probability exceeds 0.5 (else at step K); the scores
are the classifier's at that step; ``VideoResult.frames`` are the frames seen up to it,
``exit_step`` the step, and ``extra_gflops`` the network run for those steps (embedding and
classifier per step, plus each gate evaluated). Features are standardized with train-split
statistics kept in the checkpoint. A video shorter than K may see a frame twice (two locations
round to one frame); the revisit costs nothing and counts twice in ``pbar_t``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaframe_env.data.store import frame_of_location
from adaframe_env.metrics import mean_average_precision, softmax
from adaframe_env.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    resolve_schedule,
    train_on_schedule,
    write_curves,
)
from agents.recurrent.memory import standardization

#: numbers about the classifier's scores that each gate reads (see :func:`confidence`)
CONFIDENCE_FEATURES = 3
#: what a gate reads: the classifier's confidence at its step, or that and ``z_t``
GATE_INPUTS = ("confidence", "features")


@dataclass(frozen=True)
class FrameExitSettings:
    """Every field is settable with ``--set key=value``. ``updates`` / ``gate_updates``: the
    most updates of stage 1 (classifier) / stage 2 (gates); ``eval_every`` and ``patience``
    apply to both (``--updates`` etc. on the command line override both stages)."""

    beta: float = 0.5  # pseudo label y_t = 1[CE_t < beta]: larger beta, earlier exits
    hidden: int = 256
    gate_hidden: int = 64
    residual: bool = True  # classifier = correction + log of the recognizer's AvgPooling
    gate_input: str = "confidence"  # one of GATE_INPUTS
    dropout: float = 0.5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    updates: int = 2000
    gate_updates: int = 1000
    eval_every: int = 100
    patience: int = 5

    def __post_init__(self):
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"--set beta={self.beta}: must be a positive number (a CE loss)")
        for name in ("hidden", "gate_hidden", "batch_size", "updates", "gate_updates",
                     "eval_every"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"--set {name}={getattr(self, name)}: must be at least 1")
        if self.patience < 0:
            raise ValueError(f"--set patience={self.patience}: must be at least 0")
        if self.gate_input not in GATE_INPUTS:
            raise ValueError(f"--set gate_input={self.gate_input}: choose one of "
                             f"{', '.join(GATE_INPUTS)}")  # fmt: skip
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--set dropout={self.dropout}: must be in [0, 1)")
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ValueError(f"--set lr={self.lr}, weight_decay={self.weight_decay}: need "
                             "lr > 0 and weight_decay >= 0")  # fmt: skip


def coarse_to_fine_locations(k: int) -> np.ndarray:
    """The first ``k`` locations of 0.5; 0.25, 0.75; 0.125, 0.375, 0.625, 0.875; ... (level l
    holds the odd multiples of 1 / 2^(l+1), left to right)."""
    if k < 1:
        raise ValueError(f"coarse_to_fine_locations: k must be at least 1, got {k}")
    out, level = [], 0
    while len(out) < k:
        n = 2 ** (level + 1)
        out += [(2 * j + 1) / n for j in range(n // 2)]
        level += 1
    return np.array(out[:k])


def ordered_frames(length: np.ndarray, k: int) -> np.ndarray:
    """(N, k) frame indices of each video at the first ``k`` coarse-to-fine locations."""
    loc = coarse_to_fine_locations(k)[None, :]
    return frame_of_location(loc, np.asarray(length)[:, None])


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """(..., 3): top probability, top-1 minus top-2 probability and entropy / log C of
    ``softmax(logits)``, detached (the gates read them; they never train the classifier)."""
    p = torch.softmax(logits.detach(), -1)
    top2 = p.topk(min(2, p.shape[-1]), dim=-1).values
    second = top2[..., 1] if top2.shape[-1] > 1 else torch.zeros_like(top2[..., 0])
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1) / math.log(max(p.shape[-1], 2))
    return torch.stack([top2[..., 0], top2[..., 0] - second, entropy], -1)


class FrameExitNet(nn.Module):
    """Embedding, running max, shared classifier, and K - 1 gates with their own weights."""

    def __init__(self, input_dim: int, num_classes: int, k: int, s: FrameExitSettings):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(input_dim, s.hidden), nn.ReLU())
        self.dropout = nn.Dropout(s.dropout)
        self.classifier = nn.Linear(s.hidden, num_classes)
        self.residual = s.residual
        if s.residual:  # start as the recognizer's AvgPooling; learn a correction
            nn.init.zeros_(self.classifier.weight)
            nn.init.zeros_(self.classifier.bias)
        self.gate_input = s.gate_input
        width = CONFIDENCE_FEATURES + (s.hidden if s.gate_input == "features" else 0)
        self.gates = nn.ModuleList(
            nn.Sequential(nn.Linear(width, s.gate_hidden), nn.ReLU(),
                          nn.Linear(s.gate_hidden, 1))
            for _ in range(k - 1)
        )  # fmt: skip

    def classify(self, x: torch.Tensor, pbar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, z)``: (B, K, C) class logits at every step and (B, K, H) the running max
        ``z_t`` of the embeddings, from (B, K, D) standardized features and (B, K, C) running
        recognizer probabilities."""
        z = torch.cummax(self.embed(x), dim=1).values
        logits = self.classifier(self.dropout(z))
        if self.residual:
            logits = logits + torch.log(pbar.clamp_min(1e-8))
        return logits, z

    def gate_logits(self, z: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(B, K - 1) exit logits of the gates of steps 1..K-1 (step K always exits)."""
        inputs = confidence(logits)
        if self.gate_input == "features":
            inputs = torch.cat([z.detach(), inputs], -1)
        cols = [gate(inputs[:, t]).squeeze(-1) for t, gate in enumerate(self.gates)]
        return torch.stack(cols, 1) if cols else z.new_zeros(z.shape[0], 0)

    def step_gflops(self) -> float:
        """GFLOPs (2 x multiply-adds) of the embedding and the classifier for one step."""
        return 2 * (self.embed[0].weight.numel() + self.classifier.weight.numel()) / 1e9

    def gate_gflops(self) -> float:
        """GFLOPs of one gate (all gates have the same shape)."""
        if not self.gates:
            return 0.0
        return 2 * sum(m.weight.numel() for m in self.gates[0] if isinstance(m, nn.Linear)) / 1e9


class FrameExitAgent(TorchAgent):
    """``frameexit-K``: the module docstring has the method and its choices."""

    def __init__(self, k: int, settings: dict[str, str] | None = None):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"frameexit: K must be an integer >= 1, got {k!r}")
        self.k = k
        self.settings = apply_settings(FrameExitSettings(), settings or {}, "frameexit")
        self.description = (
            f"FrameExit: up to {k} frames in a coarse-to-fine order, max-pooled features, "
            f"a learned gate per step exits early (beta {self.settings.beta})"
        )
        self.model = None
        self.buffers = {}
        self.log = self.gate_log = None

    def hparams(self) -> dict:
        return {"k": self.k, **dataclasses.asdict(self.settings), "version": 1}

    def setup(self, store, config: RunConfig) -> None:
        self.bind(store)
        torch.manual_seed(config.seed)
        self.model = FrameExitNet(store.feature_dim, store.num_classes, self.k, self.settings)
        self.device = torch.device(config.device)
        self.model.to(self.device)

    # ---------------------------------------------------------------- data
    def _inputs(self, store, videos: np.ndarray):
        """``(x, pbar, frames)``: (N, K, D) standardized features, (N, K, C) running mean
        softmax of the recognizer over the first t frames, (N, K) frame indices."""
        videos = np.asarray(videos, dtype=np.int64)
        frames = ordered_frames(store.length[videos], self.k)
        vids = np.repeat(videos, self.k)
        feats = store.lookup("features", vids, frames.ravel()).astype(np.float32)
        x = (feats - self.buffers["mean"]) / self.buffers["std"]
        probs = softmax(store.lookup("logits", vids, frames.ravel()).astype(np.float32))
        probs = probs.reshape(len(videos), self.k, -1)
        pbar = np.cumsum(probs, 1) / np.arange(1, self.k + 1)[None, :, None]
        x = torch.from_numpy(x.reshape(len(videos), self.k, -1)).to(self.device)
        return x, torch.from_numpy(pbar.astype(np.float32)).to(self.device), frames

    def _labels(self, store, videos) -> torch.Tensor:
        return torch.from_numpy(store.label[np.asarray(videos)]).long().to(self.device)

    def _step_ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, K) cross-entropy of every step."""
        b, k, c = logits.shape
        ce = nn.functional.cross_entropy(logits.reshape(b * k, c), labels.repeat_interleave(k),
                                         reduction="none")  # fmt: skip
        return ce.reshape(b, k)

    # ---------------------------------------------------------------- training
    def fit(self, store, train_videos, config: RunConfig) -> None:
        """Stage 1 (:meth:`fit_classifier`), then stage 2 (:meth:`fit_gates`)."""
        self.fit_classifier(store, train_videos, config)
        self.fit_gates(store, train_videos, config)

    def _train_data(self, store, train_videos):
        train_videos = np.asarray(train_videos)
        if len(train_videos) == 0:
            raise ValueError("frameexit: no train videos to fit on")
        x, pbar, _ = self._inputs(store, train_videos)
        val = store.videos("val")
        xv, pv, _ = self._inputs(store, val) if len(val) else (None, None, None)
        batch = min(self.settings.batch_size, len(train_videos))
        return (x, pbar, self._labels(store, train_videos), val, xv, pv,
                self._labels(store, val), batch, math.ceil(len(train_videos) / batch))  # fmt: skip

    def fit_classifier(self, store, train_videos, config: RunConfig) -> None:
        """Stage 1: the embedding and the classifier, cross-entropy at every step; keeps the
        weights of the best mean-over-steps val mAP."""
        s, rng = self.settings, np.random.default_rng([config.seed, 1])
        torch.manual_seed(config.seed)
        self.buffers = {k: v for k, v in standardization(store, np.asarray(train_videos),
                        rng).items() if k in ("mean", "std")}  # fmt: skip
        x, pbar, y, val, xv, pv, _, batch, per_epoch = self._train_data(store, train_videos)
        net = self.model
        opt = torch.optim.Adam([*net.embed.parameters(), *net.classifier.parameters()],
                               lr=s.lr, weight_decay=s.weight_decay)  # fmt: skip

        def one_update() -> dict[str, float]:
            net.train()
            idx = torch.from_numpy(rng.choice(len(y), batch, replace=False))
            logits, _ = net.classify(x[idx], pbar[idx])
            ce = self._step_ce(logits, y[idx])
            loss = ce.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss.item(), "ce_first": ce[:, 0].mean().item(),
                    "ce_last": ce[:, -1].mean().item()}  # fmt: skip

        def val_map() -> float:
            if xv is None:
                return math.nan
            with torch.no_grad():
                net.eval()
                scores = torch.softmax(net.classify(xv, pv)[0], -1).cpu().numpy()
            labels = store.label[val]
            return float(np.mean([mean_average_precision(scores[:, t], labels)
                                  for t in range(self.k)]))  # fmt: skip

        schedule = resolve_schedule(Schedule.of(s), config,
                                    updates_per_epoch=per_epoch)  # fmt: skip
        self.log = train_on_schedule(schedule, one_update, val_map, net,
                                     desc=f"train {self.name} classifier",
                                     progress=config.progress)  # fmt: skip
        net.eval()

    def fit_gates(self, store, train_videos, config: RunConfig) -> None:
        """Stage 2: the gates, on the pseudo labels ``1[CE_t < beta]`` of the frozen
        classifier (computed once, without dropout); keeps the weights of the best val BCE.
        Its own random stream, so that gates for another ``beta`` can be refit alone."""
        s, rng = self.settings, np.random.default_rng([config.seed, 2])
        torch.manual_seed(config.seed + 1)
        net = self.model
        if self.k == 1:  # no gate: the only step exits
            self.gate_log = None
            return
        for gate in net.gates:  # a refit starts from fresh gates
            for m in gate:
                if isinstance(m, nn.Linear):
                    m.reset_parameters()
        x, pbar, y, _, xv, pv, yv, batch, per_epoch = self._train_data(store, train_videos)
        net.eval()
        with torch.no_grad():
            logits, z = net.classify(x, pbar)
            target = (self._step_ce(logits, y) < s.beta).float()[:, :-1]
            if xv is not None:
                logits_v, z_v = net.classify(xv, pv)
                target_v = (self._step_ce(logits_v, yv) < s.beta).float()[:, :-1]
        opt = torch.optim.Adam(net.gates.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        bce = nn.functional.binary_cross_entropy_with_logits

        def one_update() -> dict[str, float]:
            net.train()
            idx = torch.from_numpy(rng.choice(len(y), batch, replace=False))
            loss = bce(net.gate_logits(z[idx], logits[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"gate_bce": loss.item(), "exit_label_share": target[idx].mean().item()}

        def val_score() -> float:  # higher is better: minus the val BCE
            if xv is None:
                return math.nan
            with torch.no_grad():
                net.eval()
                return -bce(net.gate_logits(z_v, logits_v), target_v).item()

        schedule = resolve_schedule(Schedule(s.gate_updates, s.eval_every, s.patience), config,
                                    updates_per_epoch=per_epoch)  # fmt: skip
        self.gate_log = train_on_schedule(schedule, one_update, val_score, net,
                                          desc=f"train {self.name} gates",
                                          progress=config.progress)  # fmt: skip
        net.eval()

    def save(self, directory: Path) -> None:
        super().save(directory)
        if self.log is not None:
            write_curves(self.log, directory, f"{self.name or 'frameexit'} classifier")
        if self.gate_log is not None:
            gates = Path(directory) / "gates"
            gates.mkdir(exist_ok=True)
            write_curves(self.gate_log, gates,
                         f"{self.name or 'frameexit'} gates (val_map: minus val BCE)")  # fmt: skip

    # ---------------------------------------------------------------- test
    @torch.no_grad()
    def exits(self, store, videos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, scores, frames)``: the 1-based exit step of each video, (N, C) class
        probabilities at that step, (N, K) the coarse-to-fine frames."""
        self.model.eval()
        x, pbar, frames = self._inputs(store, videos)
        logits, z = self.model.classify(x, pbar)
        p_exit = torch.sigmoid(self.model.gate_logits(z, logits)).cpu().numpy()
        go = np.concatenate([p_exit > 0.5, np.ones((len(frames), 1), bool)], 1)
        steps = go.argmax(1) + 1  # the first step that exits (step K always does)
        probs = torch.softmax(logits, -1).cpu().numpy()
        return steps, probs[np.arange(len(steps)), steps - 1], frames

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        steps, scores, frames = self.exits(store, videos)
        step, gate = self.model.step_gflops(), self.model.gate_gflops()
        return [
            VideoResult(scores=sc, frames=f[:n], exit_step=int(n),
                        extra_gflops=n * step + min(n, self.k - 1) * gate)
            for n, sc, f in zip(steps, scores, frames, strict=True)
        ]  # fmt: skip
