"""The agent names of the paper's non-RL baselines, for the harness (entry-point group
``adaframe_gym.agents``, see :mod:`adaframe_env.protocol.names`)."""

from __future__ import annotations

from adaframe_env.protocol.names import STRATEGIES, AgentFamily, k_from, k_or_budget


def _avgpool(m, config):
    from baselines.fixed import AvgPoolAgent

    return AvgPoolAgent(STRATEGIES[m.group("s")], k_from(m), global_memory=m.group("g") is not None)


def _scsampler(m, config):
    from baselines.scsampler import SCSamplerAgent

    return SCSamplerAgent(k_from(m))


def _mgsampler(m, config):
    from baselines.mgsampler import MGSamplerAgent

    return MGSamplerAgent(k_from(m))


def _oracle(m, config):
    from baselines.oracle import OracleAgent

    return OracleAgent(k_or_budget(m, config))


def _policy(m, config):
    from baselines.policies import RandomPolicy, UniformPolicy

    return {"random": RandomPolicy, "uniform": UniformPolicy}[m.group(0)]()


FAMILIES = [
    AgentFamily(r"avgpool(?P<g>-g)?-(?:(?P<s>[ur])(?P<k>\d+)|(?P<all>all))", _avgpool,
                "avgpool[-g]-{uK,rK,all}", "AvgPooling(-G): mean softmax over K uniform/random or "
                "all frames; -G fuses the light model's scores over the 16 memory frames"),
    AgentFamily(r"scsampler-(?P<k>\d+)", _scsampler, "scsampler-K",
                "SCSampling: light model on every frame, its K most confident frames through the "
                "heavy model (cost counts the light model on all frames)"),
    AgentFamily(r"mgsampler-(?P<k>\d+)", _mgsampler, "mgsampler-K",
                "MGSampler-style: K frames evenly spaced over the cumulative motion of the light "
                "features (cost counts the light model on all frames)"),
    AgentFamily(r"oracle(?:-(?P<k>\d+))?", _oracle, "oracle[-K]",
                "bound: K frames from the ground-truth relevant half (synthetic caches only; "
                "a bound, not a competitor)"),
    AgentFamily(r"random|uniform", _policy, "random, uniform",
                "env agents: a random location each step / K uniformly spaced locations"),
]  # fmt: skip
