"""Recurrent parts shared by the LSTM baselines and the recurrent agents (AdaFrame, FrameGlimpse,
FastForward and their -G variants): one place for the memory-augmented LSTM of paper 3.1.

- :func:`positional_encoding`: sinusoidal encoding (Vaswani et al.) of the memory frames'
  normalized temporal positions.
- :class:`MemoryAttention`: paper Eq. 2, ``z_{t,j} = (W_h h_{t-1})^T PE(v^s_j)``,
  ``beta_t = softmax(z_t)``, ``u_t = beta_t^T M`` (``context=content``) or
  ``beta_t^T PE(M)`` (``context=encoded``: the context also says where the LSTM attended),
  where ``PE(v) = v + pe(position)``. The paper is ambiguous between the two; each method
  chooses on val (AdaFrame and its kin: encoded; the LSTM-G baseline: content).
- :class:`MemoryLSTM`: paper Eq. 1, ``h_t, c_t = LSTM([v_t, u_t], h_{t-1}, c_{t-1})`` with a
  step-at-a-time API (:meth:`MemoryLSTM.step`, what an agent choosing frames needs) and a whole
  padded sequence API (:meth:`MemoryLSTM.forward`, what the fixed-frame baselines need).
  Without memory it is a plain LSTM over ``v_t``.
- :class:`Readout`: class scores from ``h_t``, one of :data:`READOUTS`.

Readouts
--------
``plain`` is the paper's prediction network: one fully connected layer on ``h_t``.
``residual`` (the default) adds the log of the recognizer's running AvgPooling probabilities
``pbar_t`` (the mean softmax of the cached frame logits seen so far, the env's ``probabilities``
observation) to that layer's output, whose weights start at zero: the network starts as
AvgPooling over the frames it looked at and learns a correction from ``h_t``.
``recognizer`` is ``log pbar_t`` alone: the policy decides where to look, the cached
recognizer decides what it saw.

Why ``residual`` is the default: the paper's LSTM reads features of a backbone fine-tuned on
the target dataset's ~190 train videos per class, so it starts from a frame classifier trained
on every train frame. With ~12 train videos per class (the proxies), a plain LSTM learns that
classifier again from 10 frames per video and memorizes the videos instead (train mAP 100, val
73.3 against AvgPooling's 79.8 on the fcvid proxy); fed the recognizer's scores as a starting
point, it matches or beats AvgPooling (README, "The recurrent core"). The recognizer's scores
of train videos are out-of-fold (schema v2), so the correction is learned on honest scores.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from adaframe_env.data.store import MEMORY_SIZE


def positional_encoding(positions: torch.Tensor, dim: int, scale: float = MEMORY_SIZE):
    """(..., dim) sinusoidal encoding of ``positions`` in [0, 1] (scaled by ``scale``, so the
    16 uniformly spaced memory frames get positions ~0.5, 1.5, ..., 15.5)."""
    pos = positions.float().unsqueeze(-1) * scale
    half = (dim + 1) // 2
    freq = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=pos.device, dtype=torch.float32) / half
    )
    angles = pos * freq
    pe = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    return pe[..., :dim]


class MemoryAttention(nn.Module):
    """Soft attention of the LSTM state over the positionally encoded global memory (Eq. 2)."""

    def __init__(self, hidden_size: int, memory_dim: int, context: str = "content"):
        super().__init__()
        if context not in CONTEXTS:
            raise ValueError(f"context={context!r}: choose one of {', '.join(CONTEXTS)}")
        self.query = nn.Linear(hidden_size, memory_dim, bias=False)  # W_h
        self.memory_dim = memory_dim
        self.context = context

    def keys(self, memory: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """PE(M): (B, M, Dl) memory plus the encoding of its (B, M) positions; compute once per
        episode and pass to :meth:`forward`."""
        return memory + positional_encoding(positions, self.memory_dim)

    def forward(self, h: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor):
        """``(u_t, beta_t)`` for state ``h`` (B, H): (B, Dl) context and (B, M) attention."""
        z = torch.einsum("bd,bmd->bm", self.query(h), keys) / math.sqrt(self.memory_dim)
        beta = torch.softmax(z, dim=-1)
        values = keys if self.context == "encoded" else memory
        return torch.einsum("bm,bmd->bd", beta, values), beta


class MemoryLSTM(nn.Module):
    """One-layer LSTM over ``[v_t, u_t]`` (``u_t`` only when ``memory_dim`` is given).

    Args:
        input_dim: size of the frame feature ``v_t``.
        hidden_size: LSTM hidden units (paper: 2048 FCVID, 1024 ActivityNet).
        memory_dim: size of a memory row (light feature); ``None`` for a plain LSTM.
    """

    def __init__(self, input_dim: int, hidden_size: int, memory_dim: int | None = None,
                 context: str = "content"):  # fmt: skip
        super().__init__()
        self.hidden_size = hidden_size
        self.use_memory = memory_dim is not None
        extra = memory_dim if self.use_memory else 0
        self.cell = nn.LSTMCell(input_dim + extra, hidden_size)
        self.attention = (
            MemoryAttention(hidden_size, memory_dim, context) if self.use_memory else None
        )

    def step_gflops(self, memory_frames: int = MEMORY_SIZE) -> float:
        """GFLOPs of one step (2 x multiply-adds of the gates and, with memory, the attention
        over ``memory_frames`` rows)."""
        macs = self.cell.weight_ih.numel() + self.cell.weight_hh.numel()
        if self.use_memory:
            macs += (
                self.attention.query.weight.numel() + 2 * memory_frames * self.attention.memory_dim
            )
        return 2 * macs / 1e9

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.hidden_size, device=device)
        return z, z.clone()

    def step(self, v, state, memory=None, keys=None):
        """One step of Eq. 1: returns ``(h_t, c_t), beta_t`` (beta None without memory)."""
        h, c = state
        beta = None
        if self.use_memory:
            u, beta = self.attention(h, memory, keys)
            v = torch.cat([v, u], dim=-1)
        return self.cell(v, (h, c)), beta

    def forward(self, frames, lengths, memory=None, positions=None):
        """Run over padded ``frames`` (B, T, D) with ``lengths`` (B,); returns the hidden state
        at each video's last valid step (B, H)."""
        b, t, _ = frames.shape
        lengths = lengths.to(frames.device)
        if not self.use_memory:  # plain LSTM: the same weights through PyTorch's fused kernel
            state = self.initial_state(b, frames.device)
            c = self.cell
            out, _, _ = torch.lstm(
                frames, (state[0][None], state[1][None]),
                [c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh], True, 1, 0.0, self.training,
                False, True,
            )  # fmt: skip
            return out[torch.arange(b, device=frames.device), lengths - 1]
        state = self.initial_state(b, frames.device)
        keys = self.attention.keys(memory, positions)
        last = torch.zeros(b, self.hidden_size, device=frames.device)
        for i in range(t):
            active = (lengths > i).unsqueeze(-1)
            (h, c), _ = self.step(frames[:, i], state, memory, keys)
            state = (torch.where(active, h, state[0]), torch.where(active, c, state[1]))
            last = torch.where(lengths.unsqueeze(-1) == i + 1, h, last)
        return last


READOUTS = ("residual", "plain", "recognizer")
#: what the context vector u_t sums: the memory rows (``content``) or the rows with their
#: positional encoding (``encoded``), which tells the LSTM *where* it attended
CONTEXTS = ("content", "encoded")


def standardization(store, train_videos: np.ndarray, rng: np.random.Generator) -> dict:
    """Train-split mean and std of heavy features (a sample of up to 20,000 frames) and of the
    light features of the 16-frame memory, so that no val/test data leaks into the inputs."""
    rows = np.concatenate(
        [np.arange(store.offset[v], store.offset[v] + store.length[v]) for v in train_videos]
    )
    sample = np.sort(rng.choice(rows, min(20000, len(rows)), replace=False))
    feats = store.array("features")[sample].astype(np.float32)
    light = store.memory(train_videos).reshape(-1, store.light_dim).astype(np.float32)
    return {"mean": feats.mean(0), "std": feats.std(0) + 1e-3,
            "mem_mean": light.mean(0), "mem_std": light.std(0) + 1e-3}  # fmt: skip


class Readout(nn.Module):
    """Class logits from the hidden state ``h`` and the running recognizer probabilities
    ``pbar`` (see the module docstring for the three kinds)."""

    def __init__(self, hidden_size: int, num_classes: int, kind: str = "residual",
                 dropout: float = 0.0):  # fmt: skip
        super().__init__()
        if kind not in READOUTS:
            raise ValueError(f"readout={kind!r}: choose one of {', '.join(READOUTS)}")
        self.kind = kind
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, num_classes)
        if kind == "residual":  # start as AvgPooling; the LSTM learns a correction
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def forward(self, h: torch.Tensor, pbar: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "plain":
            return self.fc(self.dropout(h))
        if pbar is None:
            raise ValueError(f"readout={self.kind!r} needs the recognizer's probabilities")
        log_pbar = torch.log(pbar.clamp_min(1e-8))
        if self.kind == "recognizer":
            return log_pbar
        return self.fc(self.dropout(h)) + log_pbar
