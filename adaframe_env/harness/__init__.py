"""The benchmark harness: one protocol for every agent, a registry of names, the runner and the
plots (DESIGN.md 5-6). See :mod:`adaframe_env.harness.protocol` and ``docs/harness.md``."""

from adaframe_env.harness.protocol import Agent, BaseAgent, RunConfig, TorchAgent, VideoResult

__all__ = ["Agent", "BaseAgent", "RunConfig", "TorchAgent", "VideoResult"]
