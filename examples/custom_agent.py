"""A custom agent for the harness: look where the cheap global memory is most confident.

    python benchmarks/run.py --agent examples/custom_agent.py:make_agent --budget 5
    python benchmarks/run.py --agent examples.custom_agent:make_agent   # as a module

It reads the light model's scores on the 16 memory frames, sends the K most confident memory
positions through the heavy model, and averages their softmax scores. Nothing to train.
"""

import numpy as np

from adaframe_env.metrics import softmax
from adaframe_env.protocol import BaseAgent, VideoResult


class MemoryPeaks(BaseAgent):
    description = "example: heavy model on the K memory frames the light model is surest about"

    def __init__(self, k):
        self.k = k

    def evaluate(self, store, videos, config, mu=None):
        results = []
        for v in videos:
            light = softmax(store.light_logits(v, store.memory_frames[v]))  # (16, C)
            best = np.argsort(-light.max(axis=1))[: self.k]
            frames = np.unique(store.memory_frames[v][best])
            scores = softmax(store.logits(v, frames)).mean(axis=0)
            results.append(VideoResult(scores=scores, frames=frames, memory=True))
        return results


def make_agent(config):
    return MemoryPeaks(k=config.budget or 5)
