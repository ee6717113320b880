"""The agent protocol (layer 4, docs/design.md): the interface every method implements
(:mod:`.agent`), agents that act in the env (:mod:`.envagent`), ``--set`` settings
(:mod:`.settings`) and how a method package names its agents (:mod:`.names`)."""

from adaframe_env.protocol.agent import Agent, BaseAgent, RunConfig, TorchAgent, VideoResult
from adaframe_env.protocol.names import AgentFamily

__all__ = ["Agent", "AgentFamily", "BaseAgent", "RunConfig", "TorchAgent", "VideoResult"]
