"""FastForward (Fan et al., IJCAI 2018), on AdaFrame's environment and reward: a recurrent
agent that at each step samples a jump from a predefined set (forward and backward, as
fractions of the video: :data:`agents.adaframe.JUMPS`, the env's ``FastForward`` wrapper's
default) and decides whether to stop (REINFORCE), trained with the margin reward.
``fastforward-g`` adds the global memory.

It is AdaFrame's network, rollout and trainer (:class:`agents.adaframe.RecurrentFrameAgent`)
with a categorical jump head and a stop head. Choices:

- The jump head is a softmax over the jumps, sampled in training and its argmax at test; a
  jump past either end of the video lands on that end.
- Stopping pays only against a cost: the training reward is reduced by ``frame_cost`` for every
  step after the first (default chosen on the val split; README, "FrameGlimpse and
  FastForward").
"""

from __future__ import annotations

from agents.adaframe import AdaFrameSettings, RecurrentFrameAgent
from agents.frameglimpse import FRAME_COST


class FastForwardAgent(RecurrentFrameAgent):
    method = "fastforward"
    defaults = AdaFrameSettings(policy="jumps", stop=True, frame_cost=FRAME_COST, memory_frames=0)

    def __init__(self, k: int, global_memory: bool = False, settings=None):
        if global_memory:
            self.defaults = AdaFrameSettings(
                policy="jumps", stop=True, frame_cost=FRAME_COST, memory_frames=16
            )
            self.method = "fastforward-g"
        super().__init__(k, settings)

    def describe(self) -> str:
        g = " with the global memory" if self.settings.memory_frames else ""
        return (f"FastForward{g}: jumps back and forth from a fixed set and a learned stop "
                f"(REINFORCE, margin reward minus {self.settings.frame_cost:g} per frame), at "
                f"most {self.k} frames")  # fmt: skip
