"""OCSampler-style one-shot frame sampler (Lin et al., "OCSampler: Compressing Videos to One
Clip with Single-step Sampling", CVPR 2022), over cached features.

What it does, per video, at test time:

1. **Skim.** The light features of N candidate frames (``--set candidates=N``: the centres of
   N equal segments, or every frame with ``candidates=0``; all frames of a video shorter than
   N) are read, and the light backbone is charged on each of them
   (``VideoResult.light_frames = N``).
2. **Score.** A small network gives every candidate one score: a per-frame MLP
   ``h_i = relu(W_1 x_i)`` over the standardized light feature, the video context
   ``c = mean_i h_i``, and ``s_i = w_3 . relu(W_2 [h_i, c])``. The context is what lets a frame
   be judged against the rest of its video (OCSampler's point: the sampler sees the whole
   clip at once, not frame by frame).
3. **Select in one step.** The K highest-scoring candidates, returned in temporal order, go
   through the heavy recognizer; the prediction is the recognizer's AvgPooling over them (mean
   softmax of the cached heavy logits). The recognizer is frozen, so this method gains only
   by which frames it picks.

Training (:class:`OCSamplerSettings`): one-step REINFORCE. For each video of a batch, K
distinct candidates are drawn without replacement from the softmax over the scores
(Plackett-Luce, drawn as the top K of scores plus Gumbel noise, which is the same
distribution as K sequential categorical draws); the log-probability of that ordered draw is
``sum_j s_(j) - logsumexp(s over the candidates not yet drawn)``. The reward is the frozen
recognizer's score for the true class on the drawn frames minus the same score on K uniform
frames of the video (segment centres, :func:`baselines.sampling.uniform_frames`): the
paper's baseline, so a draw is rewarded only for beating uniform sampling.
``reward="prediction"`` (default) scores with the pooled softmax probability of the true
class; ``reward="margin"`` with AdaFrame's margin (true class minus the best other class,
paper Eq. 4). The loss is ``-(advantage x log-prob)`` plus an entropy bonus on the softmax
over the candidates (``entropy``, weight; it keeps the sampler from collapsing onto a few
frames early). Only the sampler learns.

Choices where the OCSampler paper is vague or does not apply to cached features:

- **Candidates: N = 32 uniformly spaced frames by default, not every frame.** OCSampler skims
  a fixed, small number of uniformly sampled frames; a fixed N keeps the skim's cost the same
  for a 20 s and a 15 min video (32 x 0.0825 = 2.64 GFLOPs on the paper's light backbone,
  while skimming every frame of the fcvid proxy's mean 165-frame video costs 13.6). On
  training videos the candidates are jittered inside their segments (one random frame per
  segment, TSN-style; ``jitter``), so that a few videos per class are not memorized frame by
  frame; at test they are the segment centres, so evaluation is deterministic.
- **No frame position** in the network's input: only the light features, as in the paper.
- **Ties** at test are broken toward the earlier frame (stable sort), so a seed gives the
  same frames.
- **K at least the candidates** (or the video's length): all of them are taken.
- **Cost of the network** (``extra_gflops``): 2 x the multiply-adds of its layers per
  candidate, the convention of :meth:`agents.recurrent.memory.MemoryLSTM.step_gflops`.
- **Standardization**: light features are centred and scaled with train-split statistics,
  kept in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adaframe_env.metrics import mean_average_precision
from adaframe_env.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    resolve_schedule,
    train_on_schedule,
    write_curves,
)
from baselines.avgpool import pooled_scores
from baselines.sampling import jittered_uniform_frames, uniform_frames

REWARDS = ("prediction", "margin")
EVAL_BATCH = 128  # videos per forward pass at evaluation (bounds memory with candidates=0)
#: the score of a padding slot: finite, so that log-probabilities and their gradients stay
#: finite where a short video has fewer candidates than the batch; exp() of it is exactly 0
PAD_SCORE = -1e9


@dataclass(frozen=True)
class OCSamplerSettings:
    """Hyperparameters (``--set key=value``); every field is part of the checkpoint key.

    ``candidates``: N frames skimmed per video (0: every frame). ``hidden``: width of the
    scoring MLP. ``reward``: ``prediction`` or ``margin`` (see the module docstring).
    ``entropy``: weight of the entropy bonus. ``jitter``: random frame per segment for the
    training candidates. ``updates``, ``eval_every``, ``patience``: the default schedule
    (:mod:`adaframe_env.protocol.training`)."""

    candidates: int = 32
    hidden: int = 128
    reward: str = "prediction"
    entropy: float = 0.01
    jitter: bool = True
    updates: int = 1500
    eval_every: int = 100
    patience: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self):
        if self.reward not in REWARDS:
            raise ValueError(f"--set reward={self.reward}: choose one of {', '.join(REWARDS)}")
        if self.candidates < 0:
            raise ValueError(f"--set candidates={self.candidates}: must be >= 0 (0: every frame)")
        for name in ("hidden", "updates", "eval_every", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--set {name}={getattr(self, name)}: must be at least 1")
        if self.patience < 0:
            raise ValueError(f"--set patience={self.patience}: must be >= 0 (0: no early stop)")
        if not (self.entropy >= 0 and math.isfinite(self.entropy)):
            raise ValueError(f"--set entropy={self.entropy}: must be a finite number >= 0")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not self.weight_decay >= 0:
            raise ValueError(
                f"--set lr={self.lr}, weight_decay={self.weight_decay}: need lr > 0 and "
                "weight_decay >= 0"
            )


class FrameScorer(nn.Module):
    """One score per candidate from its light feature and the mean of the video's frame
    embeddings (padding excluded)."""

    def __init__(self, light_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Linear(light_dim, hidden)
        self.mix = nn.Linear(2 * hidden, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, N, Dl), ``mask`` (B, N) True on real candidates -> scores (B, N),
        :data:`PAD_SCORE` on padding."""
        h = torch.relu(self.embed(x))
        m = mask.unsqueeze(-1).float()
        context = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        z = torch.relu(self.mix(torch.cat([h, context.unsqueeze(1).expand_as(h)], -1)))
        return self.score(z).squeeze(-1).masked_fill(~mask, PAD_SCORE)

    def gflops_per_candidate(self) -> float:
        """2 x multiply-adds per skimmed frame (the context mean is negligible)."""
        macs = self.embed.weight.numel() + self.mix.weight.numel() + self.score.weight.numel()
        return 2 * macs / 1e9


def plackett_luce_sample(scores: torch.Tensor, k: torch.Tensor, generator: torch.Generator):
    """Draw ``k[b]`` distinct candidates per row from the softmax over ``scores`` (B, N;
    :data:`PAD_SCORE` on padding, never drawn while ``k[b]`` is at most the row's candidates), without replacement. Returns (picks (B, K) candidate indices, sorted by draw
    order, valid where ``arange(K) < k``; log-probability (B,) of each ordered draw).

    The top K of ``scores + Gumbel noise`` is distributed as K sequential categorical draws
    without replacement (Plackett-Luce); the log-probability sums, over draws j, the drawn
    score minus the logsumexp of the scores still available."""
    kmax = int(k.max())
    u = torch.rand(scores.shape, generator=generator).to(scores.device).clamp(1e-10, 1 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    picks = torch.topk(scores.detach() + gumbel, kmax, dim=1).indices  # (B, kmax)
    drawn = scores.gather(1, picks)  # (B, kmax)
    valid = torch.arange(kmax, device=scores.device)[None, :] < k[:, None]
    # logsumexp over what is left before draw j: all scores minus the j drawn before it
    available = scores.unsqueeze(1).expand(-1, kmax, -1).clone()  # (B, kmax, N)
    before = torch.tril(torch.ones(kmax, kmax, dtype=torch.bool, device=scores.device), -1)
    taken = torch.zeros_like(available, dtype=torch.bool)
    taken.scatter_(2, picks.unsqueeze(1).expand(-1, kmax, -1), before.unsqueeze(0).expand(
        len(scores), -1, -1))  # fmt: skip
    available = available.masked_fill(taken, -math.inf)
    step = drawn - torch.logsumexp(available, dim=2)
    return picks, (step * valid).sum(1)


class OCSamplerAgent(TorchAgent):
    def __init__(self, k: int, settings: dict[str, str] | None = None):
        self.k = k
        self.settings = apply_settings(OCSamplerSettings(), settings or {}, "ocsampler")
        n = self.settings.candidates
        if n and n < k:
            raise ValueError(
                f"ocsampler-{k}: --set candidates={n} is fewer than the K={k} frames to pick; "
                f"use candidates >= {k} (or 0: every frame)"
            )
        skim = "every frame" if n == 0 else f"{n} uniform frames"
        self.description = (
            f"OCSampler: light model on {skim}, a scorer picks {k} frames in one step for the "
            "heavy recognizer; one-step REINFORCE against uniform frames"
        )
        self.model = None
        self.buffers = {}
        self.log = None

    def hparams(self) -> dict:
        return {"k": self.k, **dataclasses.asdict(self.settings), "version": 1}

    def setup(self, store, config: RunConfig) -> None:
        self.bind(store)
        torch.manual_seed(config.seed)
        self.device = torch.device(config.device)
        self.model = FrameScorer(store.light_dim, self.settings.hidden).to(self.device)

    # ---------------------------------------------------------------- data
    def candidates(self, store, videos, rng: np.random.Generator | None = None):
        """Candidate frame indices per video: segment centres, or jittered inside their
        segments when ``rng`` is given (training); every frame with ``candidates=0``."""
        n = self.settings.candidates
        out = []
        for t in store.length[videos]:
            t = int(t)
            if n == 0 or n >= t:
                out.append(np.arange(t))
            elif rng is not None and self.settings.jitter:
                out.append(jittered_uniform_frames(t, n, rng))
            else:
                out.append(uniform_frames(t, n))
        return out

    def _inputs(self, store, videos, cands):
        """(x (B, N, Dl) standardized light features, mask (B, N)) as tensors."""
        counts = np.array([len(c) for c in cands])
        x = np.zeros((len(videos), counts.max(), store.light_dim), np.float32)
        mask = np.arange(counts.max())[None, :] < counts[:, None]
        rows = store.lookup("light", np.repeat(videos, counts), np.concatenate(cands))
        x[mask] = (rows.astype(np.float32) - self.buffers["mean"]) / self.buffers["std"]
        return torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device)

    def _reward(self, store, videos, frames) -> np.ndarray:
        """The recognizer's score of the true class on each video's ``frames`` (pooled
        softmax of the heavy logits): its probability, or its margin over the best other."""
        probs = pooled_scores(store, videos, frames)
        gt = probs[np.arange(len(videos)), store.label[videos]]
        if self.settings.reward == "prediction":
            return gt
        others = probs.copy()
        others[np.arange(len(videos)), store.label[videos]] = -np.inf
        return gt - others.max(1)

    def select(self, store, videos) -> list[np.ndarray]:
        """Test-time frames: each video's K best-scored candidates, in temporal order."""
        out = []
        with torch.no_grad():
            for i in range(0, len(videos), EVAL_BATCH):
                vids = np.asarray(videos[i : i + EVAL_BATCH])
                cands = self.candidates(store, vids)
                scores = self.model(*self._inputs(store, vids, cands)).cpu().numpy()
                for c, s in zip(cands, scores, strict=True):
                    best = np.argsort(-s[: len(c)], kind="stable")[: self.k]
                    out.append(np.sort(c[best]))
        return out

    # ---------------------------------------------------------------- training
    def fit(self, store, train_videos, config: RunConfig) -> None:
        s = self.settings
        rng = np.random.default_rng(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        rows = np.concatenate(
            [np.arange(store.offset[v], store.offset[v] + store.length[v]) for v in train_videos]
        )
        sample = np.sort(rng.choice(rows, min(20000, len(rows)), replace=False))
        light = store.array("light")[sample].astype(np.float32)
        self.buffers = {"mean": light.mean(0), "std": light.std(0) + 1e-3}
        opt = torch.optim.Adam(self.model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        val_videos = store.videos("val")
        # the uniform baseline's reward of every train video, once (it never changes)
        baseline = dict(zip(train_videos.tolist(), self._reward(
            store, train_videos, [uniform_frames(int(t), self.k)
                                  for t in store.length[train_videos]]), strict=True))  # fmt: skip

        def one_update() -> dict[str, float]:
            self.model.train()
            vids = rng.choice(train_videos, min(s.batch_size, len(train_videos)), replace=False)
            cands = self.candidates(store, vids, rng)
            scores = self.model(*self._inputs(store, vids, cands))
            k = torch.tensor([min(self.k, len(c)) for c in cands], device=self.device)
            picks, log_prob = plackett_luce_sample(scores, k, gen)
            picks = picks.cpu().numpy()
            frames = [np.sort(c[p[:n]]) for c, p, n in zip(cands, picks, k.tolist(), strict=True)]
            reward = self._reward(store, vids, frames)
            advantage = reward - np.array([baseline[int(v)] for v in vids])
            adv = torch.as_tensor(advantage, dtype=torch.float32, device=self.device)
            p = torch.softmax(scores, 1)
            entropy = -(p * torch.log_softmax(scores, 1)).sum(1).mean()
            loss = -(adv * log_prob).mean() - s.entropy * entropy
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss.item(), "reward": float(reward.mean()),
                    "advantage": float(advantage.mean()), "entropy": entropy.item()}  # fmt: skip

        def val_map() -> float:
            if len(val_videos) == 0:
                return math.nan
            self.model.eval()
            frames = self.select(store, val_videos)
            return mean_average_precision(
                pooled_scores(store, val_videos, frames), store.label[val_videos]
            )

        per_epoch = math.ceil(len(train_videos) / s.batch_size)
        schedule = resolve_schedule(Schedule.of(s), config,
                                    updates_per_epoch=per_epoch)  # fmt: skip
        self.log = train_on_schedule(schedule, one_update, val_map, self.model,
                                     desc=f"train {self.name}", progress=config.progress)  # fmt: skip
        self.model.eval()

    def save(self, directory) -> None:
        super().save(directory)
        if self.log is not None:
            write_curves(self.log, directory, f"{self.name or f'ocsampler-{self.k}'}")

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        self.model.eval()
        frames = self.select(store, videos)
        scores = pooled_scores(store, videos, frames)
        per_frame = self.model.gflops_per_candidate()
        n = self.settings.candidates
        skimmed = [int(t) if n == 0 else min(n, int(t)) for t in store.length[videos]]
        return [VideoResult(scores=sc, frames=f, light_frames=m, extra_gflops=per_frame * m)
                for f, sc, m in zip(frames, scores, skimmed, strict=True)]  # fmt: skip
