"""FastForward (Fan et al., IJCAI 2018), on AdaFrame's environment and reward: a recurrent
agent that at each step samples a jump from a predefined set (forward and backward, as
fractions of the video: :data:`agents.recurrent.JUMPS`, the env's ``FastForward`` wrapper's
default) and decides whether to stop (REINFORCE), trained with the margin reward.
``fastforward-g`` adds the global memory.

It is AdaFrame's network, rollout and trainer (:class:`agents.recurrent.RecurrentFrameAgent`)
with a categorical jump head and a stop head. Choices:

- The jump head is a softmax over the jumps, sampled in training and its argmax at test; a
  jump past either end of the video lands on that end.
- Stopping pays only against a cost: the training reward is reduced by ``step_cost`` for every
  step after the first (default chosen on the val split, shared with FrameGlimpse; README,
  "FrameGlimpse and FastForward").
"""

from __future__ import annotations

from agents.frameglimpse import STEP_COST
from agents.recurrent import AdaFrameSettings, RecurrentFrameAgent


class FastForwardAgent(RecurrentFrameAgent):
    method = "fastforward"
    defaults = AdaFrameSettings(policy="jumps", stop=True, step_cost=STEP_COST, memory_frames=0)
    policy_text = "jumps back and forth from a fixed set"
