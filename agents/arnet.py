"""AR-Net-style per-frame view decisions (Meng et al., ECCV 2020), on the two views a cache has.

AR-Net passes K frames; a light policy network (MobileNetV2 at low resolution + an LSTM) looks
at each and chooses a resolution for the recognizer, or to skip it; the video prediction is the
mean of the per-frame predictions of the frames not skipped. Decisions are trained end to end
with straight-through Gumbel-softmax, against cross-entropy plus a weighted FLOPs term.

Here the two "resolutions" are the two backbones of the cache, so for each of the K frames
(segment centres, :func:`baselines.sampling.uniform_frames`) a GRU over the light features of
the frames passed so far chooses one of three actions:

- ``skip``: the frame does not enter the prediction;
- ``light``: the frame's light recognizer probabilities (softmax of ``frames/light_logits``);
- ``heavy``: the frame's heavy recognizer probabilities (softmax of ``frames/logits``).

The video scores are the mean of those probabilities over the frames not skipped. When every
frame is skipped (our choice; AR-Net leaves it undefined), the scores are the mean light
probabilities of all K frames: the policy has computed those light features anyway, so the
fallback costs nothing, and a prediction is always made.

Cost (the harness's rule, adaframe_env/protocol/agent.py). AR-Net charges the policy's
low-resolution view separately from the low-resolution backbone; here both are the same light
features, so the light view is charged once per passed frame: ``light_frames = K`` whether the
light action is chosen or not (so ``light`` and ``skip`` cost the same; ``skip`` only drops a
frame that would hurt the mean). Heavy frames are those where ``heavy`` was chosen.
``extra_gflops`` is the policy's own network (GRU and action head, 2 x multiply-adds) on K
frames. The recognizer heads are the cache's frozen linear heads, charged as for every other
method (not at all: they are part of the backbone's cost).

Training (:class:`ARNetSettings`, each settable with ``--set key=value``): only the policy
learns; the recognizer heads stay frozen (they are the cache's logits). Per update, a batch of
train videos with one random frame per segment (TSN-style jitter, as agents/lstm.py; evaluation
uses the centres); loss = the cross-entropy of the video prediction + ``lam`` x (expected GFLOPs
per video under the policy's probabilities / the GFLOPs of K heavy frames). The expected cost
(not the sampled one) is our choice: the same gradient direction as AR-Net's sampled FLOPs,
with less variance. Decisions are hard one-hot samples in the forward pass and the Gumbel-softmax
relaxation in the backward pass, at temperature ``tau0 x tau_decay ** (update // tau_every)``:
AR-Net decays from 5 by 0.965 per epoch over ~50 epochs; an epoch means little here (a schedule
is in updates), so we decay once every ``tau_every`` = 12 updates, which over the default 600
updates is AR-Net's 50 decays (5 -> 0.84). The default schedule (600 updates, val every 50,
patience 4) was chosen on the val split of the fcvid proxy, where val mAP levels off after
~500 updates.

Measured on the val split of the fcvid proxy (arnet-10; avgpool-u10 is 79.8 mAP at 78.2
GFLOPs): lam=0.3 gives 79.9 mAP with 9.97 heavy frames (78.8 GFLOPs), lam=1.0 (the default)
79.5 with 9.69 (76.6 GFLOPs). There, a heavy frame is worth more cross-entropy than lam / K, so
the policy learns to look with the heavy network almost everywhere; a real saving needs a
larger lam. The argmax decisions of evaluation also use more heavy frames than the sampled ones
of training (9.69 against 7.0 at lam=1.0): a frame whose heavy probability is 0.7 is always
heavy under argmax. Evaluation takes the argmax action (deterministic).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adaframe_env.metrics import mean_average_precision, softmax
from adaframe_env.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    resolve_schedule,
    train_on_schedule,
    write_curves,
)
from baselines.sampling import jittered_uniform_frames, uniform_frames

#: the actions, in the order of the policy's outputs
ACTIONS = ("skip", "light", "heavy")


@dataclass(frozen=True)
class ARNetSettings:
    """Hyperparameters (``--set key=value``). ``lam`` is the cost knob: the weight of the
    normalized expected GFLOPs in the loss (0: accuracy only)."""

    lam: float = 1.0
    hidden: int = 64
    updates: int = 600
    eval_every: int = 50
    patience: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    tau0: float = 5.0
    tau_decay: float = 0.965
    tau_every: int = 12

    def __post_init__(self):
        ints = {"hidden": 1, "updates": 1, "eval_every": 1, "patience": 0, "batch_size": 1,
                "tau_every": 1}  # fmt: skip
        for name, least in ints.items():
            if getattr(self, name) < least:
                raise ValueError(f"--set {name}={getattr(self, name)}: must be at least {least}")
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"--set lam={self.lam}: must be a finite number >= 0")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError("--set lr must be > 0 and weight_decay >= 0")
        if not self.tau0 > 0 or not 0 < self.tau_decay <= 1:
            raise ValueError("--set tau0 must be > 0 and tau_decay in (0, 1]")

    def temperature(self, update: int) -> float:
        """The Gumbel-softmax temperature at ``update`` (0-based)."""
        return self.tau0 * self.tau_decay ** (update // self.tau_every)


class Policy(nn.Module):
    """A GRU over the standardized light features of the passed frames; per frame, the logits
    of (skip, light, heavy)."""

    def __init__(self, light_dim: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(light_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(ACTIONS))

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        """(B, K, Dl) -> (B, K, 3) action logits; step t sees frames 1..t only."""
        return self.head(self.gru(light)[0])

    def frame_gflops(self) -> float:
        """GFLOPs per passed frame: 2 x the multiply-adds of the GRU gates and the head."""
        macs = self.gru.weight_ih_l0.numel() + self.gru.weight_hh_l0.numel()
        return 2 * (macs + self.head.weight.numel()) / 1e9


def video_prediction(actions: torch.Tensor, p_light: torch.Tensor, p_heavy: torch.Tensor):
    """(B, C) mean of the per-frame probabilities of the frames not skipped.

    ``actions`` (B, K, 3) one-hot (straight-through: soft gradients behind hard values);
    ``p_light``, ``p_heavy`` (B, K, C). A video with every frame skipped gets the mean light
    probabilities of its K frames (see the module docstring)."""
    per_frame = actions[..., 1:2] * p_light + actions[..., 2:3] * p_heavy
    used = (actions[..., 1] + actions[..., 2]).sum(1, keepdim=True)  # (B, 1)
    none = (used.detach() < 0.5).float()
    return (per_frame.sum(1) + none * p_light.mean(1)) / (used + none)


def straight_through_gumbel(logits: torch.Tensor, tau: float, gen: torch.Generator):
    """Hard one-hot samples of ``softmax(logits)`` with the Gumbel-softmax gradient (noise from
    ``gen``, so that training is deterministic for a seed)."""
    u = torch.rand(logits.shape, generator=gen).clamp_(1e-10, 1 - 1e-10).to(logits.device)
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / tau, -1)
    hard = nn.functional.one_hot(soft.argmax(-1), len(ACTIONS)).to(soft.dtype)
    return hard - soft.detach() + soft


class ARNetAgent(TorchAgent):
    def __init__(self, k: int, settings: dict[str, str] | None = None):
        if k < 1:
            raise ValueError(f"arnet-{k}: K must be at least 1")
        self.k = k
        self.settings = apply_settings(ARNetSettings(), settings or {}, "arnet")
        self.description = (
            f"AR-Net-style: over {k} uniform frames a light GRU policy chooses skip / light / "
            f"heavy per frame (Gumbel-softmax, cost weight lam={self.settings.lam})"
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
        self.model = Policy(store.light_dim, self.settings.hidden).to(self.device)

    # ---------------------------------------------------------------- data
    def _inputs(self, store, videos, frames):
        """Standardized light features (B, K, Dl) and light / heavy probabilities (B, K, C) of
        each video's passed frames. A video shorter than K passes all its frames; its missing
        steps repeat its last frame (never charged: see :meth:`evaluate`) and are masked out by
        being forced to skip."""
        k = self.k
        padded = np.stack([np.pad(f, (0, k - len(f)), mode="edge") for f in frames])
        vids = np.repeat(np.asarray(videos), k)
        flat = padded.reshape(-1)
        b = self.buffers
        light = (store.lookup("light", vids, flat).astype(np.float32) - b["mean"]) / b["std"]
        p_light = softmax(store.lookup("light_logits", vids, flat).astype(np.float32))
        p_heavy = softmax(store.lookup("logits", vids, flat).astype(np.float32))
        valid = np.arange(k)[None, :] < np.array([len(f) for f in frames])[:, None]
        shape = (len(videos), k, -1)
        out = [light.reshape(shape), p_light.reshape(shape), p_heavy.reshape(shape)]
        return [torch.from_numpy(a).to(self.device) for a in out] + [
            torch.from_numpy(valid).to(self.device)
        ]

    def _masked(self, logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Padding steps (videos shorter than K) can only skip."""
        forced = torch.tensor([0.0, -1e9, -1e9], device=logits.device)
        return torch.where(valid[..., None], logits, forced)

    def _costs(self, store) -> torch.Tensor:
        """GFLOPs of each action on top of the always-charged light view (skip, light, heavy)."""
        return torch.tensor([0.0, 0.0, store.gflops_per_frame], device=self.device)

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
        labels = torch.from_numpy(store.label).long().to(self.device)
        costs = self._costs(store)
        full = self.k * store.gflops_per_frame  # the GFLOPs of K heavy frames
        fixed = self.k * (store.light_gflops_per_frame + self.model.frame_gflops())
        batch = min(s.batch_size, len(train_videos))
        val_videos = store.videos("val")
        val_inputs = (
            self._inputs(store, val_videos, self._frames(store, val_videos)) if len(val_videos)
            else None
        )  # fmt: skip
        step = [0]

        def one_update() -> dict[str, float]:
            self.model.train()
            vids = train_videos[rng.choice(len(train_videos), batch, replace=False)]
            frames = [jittered_uniform_frames(int(t), self.k, rng) for t in store.length[vids]]
            x, p_light, p_heavy, valid = self._inputs(store, vids, frames)
            logits = self._masked(self.model(x), valid)
            tau = s.temperature(step[0])
            actions = straight_through_gumbel(logits, tau, gen)
            pred = video_prediction(actions, p_light, p_heavy)
            ce = nn.functional.nll_loss(torch.log(pred + 1e-8), labels[vids])
            probs = torch.softmax(logits, -1)
            expected = fixed + (probs * costs).sum((1, 2))  # (B,) expected GFLOPs per video
            loss = ce + s.lam * (expected / full).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step[0] += 1
            hard = actions.detach()
            return {"loss": loss.item(), "ce": ce.item(), "gflops": expected.mean().item(),
                    "heavy_frames": hard[..., 2].sum(1).mean().item(),
                    "skipped": (hard[..., 0] * valid).sum(1).mean().item(), "tau": tau}  # fmt: skip

        def val_map() -> float:
            if val_inputs is None:
                return float("nan")
            scores, _ = self._decide(*val_inputs)
            return mean_average_precision(scores, store.label[val_videos])

        updates_per_epoch = math.ceil(len(train_videos) / batch)
        schedule = resolve_schedule(Schedule.of(s), config,
                                    updates_per_epoch=updates_per_epoch)  # fmt: skip
        self.log = train_on_schedule(schedule, one_update, val_map, self.model,
                                     desc=f"train {self.name}", progress=config.progress)  # fmt: skip
        self.model.eval()

    def save(self, directory) -> None:
        super().save(directory)
        if self.log is not None:
            write_curves(self.log, directory, f"arnet-{self.k} (lam={self.settings.lam})")

    # ---------------------------------------------------------------- evaluation
    def _frames(self, store, videos) -> list[np.ndarray]:
        return [uniform_frames(int(t), self.k) for t in store.length[videos]]

    @torch.no_grad()
    def _decide(self, x, p_light, p_heavy, valid) -> tuple[np.ndarray, np.ndarray]:
        """Argmax actions (B, K) and the video scores (B, C) they give."""
        self.model.eval()
        choice = self._masked(self.model(x), valid).argmax(-1)
        actions = nn.functional.one_hot(choice, len(ACTIONS)).float()
        scores = video_prediction(actions, p_light, p_heavy)
        return scores.cpu().numpy(), choice.cpu().numpy()

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        frames = self._frames(store, videos)
        scores, choice = self._decide(*self._inputs(store, videos, frames))
        step = self.model.frame_gflops()
        out = []
        for s, f, a in zip(scores, frames, choice, strict=True):
            a = a[: len(f)]
            out.append(VideoResult(scores=s, frames=f[a == 2], light_frames=len(f),
                                   extra_gflops=step * len(f), exit_step=len(f)))  # fmt: skip
        return out

    def actions(self, store, videos) -> np.ndarray:
        """(B, K) chosen action indices into :data:`ACTIONS` (padding steps of short videos:
        0, skip), for analysis and tests."""
        return self._decide(*self._inputs(store, videos, self._frames(store, videos)))[1]
