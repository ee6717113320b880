"""FrameGlimpse (Yeung et al., CVPR 2016), adapted to classification as the AdaFrame paper did
(section 4.2): a recurrent agent that at each step emits class scores, a continuous next
location (Gaussian policy, REINFORCE) and a learned binary stop decision (REINFORCE), trained
with AdaFrame's margin reward. ``frameglimpse-g`` adds the global memory.

It is AdaFrame's network, rollout and trainer (:class:`agents.recurrent.RecurrentFrameAgent`)
with a stop head instead of the utility-based exit. Choices:

- The stop head is ``sigmoid(w^T h_t)``, a Bernoulli sampled in training and thresholded at 0.5
  at test; a stopped video is predicted from the scores of its stop step.
- The margin reward never falls below 0, so stopping would never pay; like Yeung et al.'s
  cost per glimpse, the training reward is reduced by ``step_cost`` for every step after the
  first. Its default was chosen on the val split (README, "FrameGlimpse and FastForward").
- The original predicts from the last glimpse's hidden state with a classification head; here
  the shared core's readout (``residual`` by default) does it, as for every recurrent model.
"""

from __future__ import annotations

from agents.recurrent import AdaFrameSettings, RecurrentFrameAgent

STEP_COST = 0.03  # chosen on val among 0, 0.01, 0.03, 0.06, 0.1 (README)


class FrameGlimpseAgent(RecurrentFrameAgent):
    method = "frameglimpse"
    defaults = AdaFrameSettings(stop=True, step_cost=STEP_COST, memory_frames=0)
    policy_text = "Gaussian location policy"
