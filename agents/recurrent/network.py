"""The recurrent agents' settings and network: the memory-augmented LSTM of paper 3.1 with
its selection, utility and (optional) stop heads. The settings' choices are documented in
:mod:`agents.adaframe`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adaframe_env.rewards import REWARDS
from adaframe_env.wrappers import DEFAULT_JUMPS
from agents.recurrent.memory import (
    CONTEXTS,
    READOUTS,
    MemoryLSTM,
    Readout,
    positional_encoding,
)

LOCATION_DIM = 16  # size of the encoded location (observe_location)
POLICIES = ("absolute", "relative", "jumps")
#: FastForward's jumps (fractions of the video, back and forward), as the env's wrapper has them
JUMPS = DEFAULT_JUMPS


@dataclass(frozen=True)
class AdaFrameSettings:
    """Hyperparameters (each settable with ``--set key=value``; part of the checkpoint key)."""

    hidden: int = 256
    readout: str = "residual"  # residual | plain | recognizer (agents.recurrent.memory.READOUTS)
    dropout: float = 0.5
    reward: str = "margin"  # margin | prediction | prediction_transition (paper Table 5)
    memory_frames: int = 16  # light frames in the global memory (paper Table 4: 0, 12, 16, 32)
    updates: int = 4000  # the schedule (adaframe_env.protocol.training): at most this many
    eval_every: int = 200  # updates, val mAP every eval_every, stop after patience evaluations
    patience: int = 5  # without a new best, keep the best-val weights (agents.adaframe)
    batch_size: int = 64
    optimizer: str = "adam"  # adam | sgd (momentum 0.9, the paper's)
    lr: float = 1e-3
    lr_step: int = 0  # divide lr by 10 every lr_step updates (paper: 40% of them); 0: constant
    weight_decay: float = 1e-4
    sigma: float = 0.1  # std of the Gaussian location policy in training
    gamma: float = 0.9
    perstep_loss: bool = False  # cross-entropy at every step instead of the last (an option)
    policy: str = "absolute"  # absolute: a_t = sigmoid(W_s h_t) (paper) | relative: l_t + tanh(.)
    #                           | jumps: a categorical choice of JUMPS from l_t (FastForward)
    observe_location: bool = False  # add the encoded current location to the LSTM input
    stop: bool = False  # learn a binary stop policy (FrameGlimpse, FastForward); AdaFrame: Alg. 2
    step_cost: float = 0.0  # training reward minus this for every step after the first (revisits
    #                         too; a reward per step, not per GFLOP like the env's frame_cost)
    context: str = "encoded"  # u_t = beta^T PE(M) (encoded) | beta^T M (content); docstring

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ValueError(f"--set readout={self.readout}: choose one of {', '.join(READOUTS)}")
        if self.reward not in REWARDS:
            raise ValueError(f"--set reward={self.reward}: choose one of {', '.join(REWARDS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"--set policy={self.policy}: choose one of {', '.join(POLICIES)}")
        if self.context not in CONTEXTS:
            raise ValueError(f"--set context={self.context}: choose one of {', '.join(CONTEXTS)}")
        if self.step_cost < 0:
            raise ValueError(f"--set step_cost={self.step_cost}: must be >= 0")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"--set optimizer={self.optimizer}: choose adam or sgd")
        if (
            min(self.hidden, self.updates, self.eval_every, self.batch_size) < 1
            or min(self.lr_step, self.patience) < 0
        ):
            raise ValueError(
                "--set hidden, updates, eval_every, batch_size must be >= 1 and lr_step, "
                "patience >= 0"
            )
        if self.memory_frames < 0:
            raise ValueError(f"--set memory_frames={self.memory_frames}: must be >= 0 (0: none)")
        if not (0 <= self.dropout < 1 and self.sigma > 0 and 0 <= self.gamma <= 1):
            raise ValueError("--set dropout in [0, 1), sigma > 0, gamma in [0, 1]")


class AdaFrameNet(nn.Module):
    """Memory-augmented LSTM with prediction, selection and utility heads (paper Fig. 2)."""

    def __init__(self, feature_dim: int, num_classes: int, memory_dim: int | None,
                 s: AdaFrameSettings, budget: int):  # fmt: skip
        super().__init__()
        self.observe_location, self.policy = s.observe_location, s.policy
        extra = LOCATION_DIM if s.observe_location else 0
        self.core = MemoryLSTM(feature_dim + extra, s.hidden, memory_dim, s.context)
        self.predict = Readout(s.hidden, num_classes, s.readout, s.dropout)  # W_p
        self.select = nn.Linear(s.hidden, len(JUMPS) if s.policy == "jumps" else 1)  # W_s
        self.utility = nn.Linear(s.hidden, 1)  # W_u
        self.stop = nn.Linear(s.hidden, 1) if s.stop else None
        if s.policy == "relative":  # start by striding through the video, 1/K per step
            nn.init.zeros_(self.select.weight)
            nn.init.constant_(self.select.bias, math.atanh(1.0 / max(budget, 2)))

    def step(self, v, pbar, location, state, memory=None, keys=None):
        """One step: ``(state, class logits s_t, policy output, utility V_t, stop logit)``.

        The policy output is the mean location ``a_t`` (absolute, relative) or the logits over
        :data:`JUMPS` (jumps); the stop logit is None without a stop policy."""
        if self.observe_location:
            v = torch.cat([v, positional_encoding(location, LOCATION_DIM)], -1)
        state, _ = self.core.step(v, state, memory, keys)
        h = state[0]
        raw = self.select(h)
        if self.policy == "jumps":
            a = raw
        elif self.policy == "relative":
            # the mean may leave [0, 1] (a clamped mean would get no gradient there); the
            # location taken is clipped to [0, 1] in rollout()
            a = location + torch.tanh(raw.squeeze(-1))
        else:
            a = torch.sigmoid(raw.squeeze(-1))
        stop = self.stop(h).squeeze(-1) if self.stop is not None else None
        return state, self.predict(h, pbar), a, self.utility(h).squeeze(-1), stop

    def step_gflops(self, memory_frames: int = 16) -> float:
        """GFLOPs of one step: the LSTM (and attention) plus the heads."""
        heads = [self.predict.fc, self.select, self.utility] + ([self.stop] if self.stop else [])
        return self.core.step_gflops(memory_frames) + 2 * sum(m.weight.numel() for m in heads) / 1e9
