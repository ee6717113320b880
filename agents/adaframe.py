"""AdaFrame (Wu et al., TPAMI 2020, section 3): a memory-augmented LSTM that decides where to
look next, trained with REINFORCE on the margin reward, and at test time stops on its own
predicted utility (adaptive lookahead inference, Algorithm 2).

AdaFrame is a thin configuration of the recurrent family (:mod:`agents.recurrent`: the
settings and network, one batch of episodes through the vector env, the losses, Algorithm 2,
and the trainer shared with FrameGlimpse and FastForward); this module documents the paper's
choices and what we chose where it is vague. Training and evaluation both go through
:class:`adaframe_env.vector_env.AdaFrameVectorEnv`: the env serves the frames, the memory and the
recognizer's running probabilities, and counts the frames; the agent only chooses locations.

What the paper fixes, and we follow: LSTM on ``[v_t, u_t]`` with ``u_t`` the attention of
``W_h h_{t-1}`` over the positionally encoded memory (Eq. 1-2); selection ``a_t =
sigmoid(W_s h_t)``, ``l_{t+1} ~ N(a_t, 0.1^2)`` in training and ``a_t`` at test; utility
``V_t = W_u h_t`` regressed on the discounted return (gamma 0.9, Eq. 6-7); reward Eq. 4 from the
agent's own ``s_t``; loss ``L_cls + L_utl - J_sel`` with cross-entropy on ``s_K`` (Eq. 3, 8) and
REINFORCE with ``V_t`` as baseline (Eq. 9); the first frame at location 0 (Algorithm 1); the
exit rule of Algorithm 2 with ``p = K/2 + 1`` if ``mu < 0.7`` else ``K`` (``K/2`` rounded
down for odd K: K = 5 gives p = 3).

What the paper leaves open, and what we chose:

- **Returns.** Eq. 6 includes the current step: ``R_t = sum_{i>=0} gamma^i r_{t+i}``, and Eq. 9
  weighs ``log pi(l_{t+1} | h_t)`` by ``R_t - V_t``, for ``t = 1..K-1`` (the location chosen at
  step K is never used). ``r_1 = 0`` (Eq. 4 is defined for ``t > 1``).
- **Loss scale.** ``L_utl`` is ``1/2 (V_t - R_t)^2`` (squared; Eq. 7 writes a norm) and
  ``J_sel`` sums over steps; both are averaged over the videos of a batch, as is ``L_cls``.
- **The context vector.** Eq. 2 scores the memory rows with their positional encoding,
  ``z_{t,j} = (W_h h_{t-1})^T PE(v^s_j)``, and then writes ``u_t = beta_t^T M``. The text
  says the positions are injected "into these lightweight features" so that the context can
  "estimate the current progress roughly using temporal information": we read ``M`` as the
  encoded rows, ``u_t = beta_t^T PE(M)`` (``context=encoded``), so the LSTM learns *where*
  it attended, not only what it saw there. The literal ``u_t = beta_t^T M`` is
  ``--set context=content``. Chosen on the val split (fcvid proxy, K = 10, seeds 0-2):
  77.7 against 76.1 val mAP for AdaFrame-10, 76.4 against 74.2 for FrameGlimpse-G
  (README, "AdaFrame"). The LSTM-G baseline keeps ``content``, its own val choice.
- **Gaussian samples** outside [0, 1] are clipped to it (the paper "normalizes" them); the log
  probability is that of the unclipped sample.
- **Readout.** ``residual`` by default: ``s_t = softmax(W_p h_t + log pbar_t)``, with ``pbar_t``
  the recognizer's AvgPooling over the frames seen so far (the env's ``probs`` observation) and
  ``W_p`` starting at zero; ``--set readout=plain`` is the paper's ``softmax(W_p h_t)``,
  ``--set readout=recognizer`` is ``pbar_t`` alone. Why, with measurements:
  :mod:`agents.recurrent.memory` and the README ("The recurrent core").
- **Frame features** are standardized with train statistics, as for the LSTM baselines; dropout
  on ``h_t`` before the prediction layer only.
- **Sizes and schedule.** The paper: hidden 2048 (FCVID) / 1024 (ActivityNet), SGD momentum 0.9,
  weight decay 1e-4, lr 1e-3 divided by 10 every 40 of 100 epochs, batch 128: about 35,600
  updates on FCVID's 45,611 train videos (``--set hidden=2048 --set optimizer=sgd --set
  batch_size=128 --updates 35600 --eval-every 356 --set lr_step=14240``:
  40 of 100 passes of 356 batches). We use the recurrent core chosen on
  the val split for the LSTM baselines (hidden 256, Adam 1e-3, dropout 0.5) and a schedule
  in updates (:mod:`adaframe_env.protocol.training`), not epochs, so that a small dataset gets
  as many updates as a large one: at most ``updates``, val mAP every ``eval_every``, stop after
  ``patience`` evaluations without a new best, the best-val weights kept
  (:class:`agents.recurrent.network.AdaFrameSettings`; why these values: docs/schedules.md).
- **Batches** are whole batches of train videos in a fresh random order of the train split;
  the last ``len(train) % batch_size`` videos of an order wait for the next order.
"""

from __future__ import annotations

import numpy as np

from agents.recurrent.inference import lookahead_exit
from agents.recurrent.rollout import Rollout
from agents.recurrent.trainer import RecurrentFrameAgent


class AdaFrameAgent(RecurrentFrameAgent):
    """AdaFrame: Gaussian location policy, no learned stop; at test, Algorithm 2 on the
    utility (one result row per ``--mu``)."""

    method = "adaframe"
    uses_mu = True

    def describe(self) -> str:
        return (
            f"AdaFrame-{self.k}: memory-augmented LSTM choosing where to look, REINFORCE on the "
            f"{self.settings.reward} reward, adaptive lookahead exit (--mu)"
        )

    def exits(self, r: Rollout, mu: float | None) -> np.ndarray:
        if mu is None:
            return np.full(r.logits.shape[0], self.k)
        return lookahead_exit(r.utility.cpu().numpy(), mu, self.k)
