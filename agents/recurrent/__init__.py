"""The recurrent family in one place: the memory-augmented LSTM of paper 3.1 and everything
that trains it. AdaFrame (:mod:`agents.adaframe`), FrameGlimpse, FastForward and the LSTM
baselines (:mod:`agents.lstm`) are thin configurations of these parts.

Read in this order:

1. :mod:`.memory`: positional encoding, memory attention (Eq. 2), the LSTM (Eq. 1), readouts;
2. :mod:`.network`: the settings (``--set`` keys) and the network with its heads;
3. :mod:`.rollout`: one batch of episodes through the native vector env;
4. :mod:`.losses`: ``L_cls + L_utl - J_sel`` (Eq. 3-9);
5. :mod:`.inference`: Algorithm 2, the lookahead exit on the utility;
6. :mod:`.trainer`: :class:`RecurrentFrameAgent`, the harness agent that trains (Algorithm 1,
   torchrun-aware) and evaluates; ``episodes`` runs it over any videos, optionally at fixed
   locations.
"""

from agents.recurrent.inference import lookahead_exit
from agents.recurrent.losses import discounted_returns, losses
from agents.recurrent.memory import (
    MemoryAttention,
    MemoryLSTM,
    Readout,
    positional_encoding,
    standardization,
)
from agents.recurrent.network import JUMPS, AdaFrameNet, AdaFrameSettings
from agents.recurrent.rollout import Rollout, rollout
from agents.recurrent.trainer import RecurrentFrameAgent

__all__ = [
    "JUMPS", "AdaFrameNet", "AdaFrameSettings", "MemoryAttention", "MemoryLSTM", "Readout",
    "RecurrentFrameAgent", "Rollout", "discounted_returns", "lookahead_exit", "losses",
    "positional_encoding", "rollout", "standardization",
]  # fmt: skip
