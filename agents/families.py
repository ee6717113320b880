"""The agent names of the learned methods, for the harness (entry-point group
``adaframe_gym.agents``, see :mod:`adaframe_env.protocol.names`)."""

from __future__ import annotations

from adaframe_env.protocol.names import STRATEGIES, AgentFamily, k_from, k_or_budget


def _lstm(m, config):
    from agents.lstm import LSTMAgent

    return LSTMAgent(STRATEGIES[m.group("s")], k_from(m), global_memory=m.group("g") is not None,
                     settings=config.settings)  # fmt: skip


def _adaframe(m, config):
    from agents.adaframe import AdaFrameAgent

    return AdaFrameAgent(k_or_budget(m, config), settings=config.settings)


def _glimpse(m, config):
    k, g = k_or_budget(m, config), m.group("g") is not None
    if m.group("m") == "frameglimpse":
        from agents.frameglimpse import FrameGlimpseAgent

        return FrameGlimpseAgent(k, global_memory=g, settings=config.settings)
    from agents.fastforward import FastForwardAgent

    return FastForwardAgent(k, global_memory=g, settings=config.settings)


def _frameexit(m, config):
    from agents.frameexit import FrameExitAgent

    return FrameExitAgent(k_or_budget(m, config), settings=config.settings)


def _arnet(m, config):
    from agents.arnet import ARNetAgent

    return ARNetAgent(k_from(m), settings=config.settings)


def _ocsampler(m, config):
    from agents.ocsampler import OCSamplerAgent

    return OCSamplerAgent(k_from(m), settings=config.settings)


def _sb3(m, config):
    from agents.sb3_agents import SB3Agent

    return SB3Agent(m.group("algo"), model_path=config.extra.get("model"))


FAMILIES = [
    AgentFamily(r"lstm(?P<g>-g)?-(?:(?P<s>[ur])(?P<k>\d+)|(?P<all>all))", _lstm,
                "lstm[-g]-{uK,rK,all}", "LSTM(-G) over K uniform/random or all frames, trained "
                "with cross-entropy; -G attends over the positionally encoded global memory"),
    AgentFamily(r"adaframe(?:-(?P<k>\d+))?", _adaframe, "adaframe[-K]",
                "AdaFrame (paper 3): memory-augmented LSTM choosing where to look, REINFORCE on "
                "the margin reward, adaptive lookahead exit on its utility (one row per --mu)"),
    AgentFamily(r"(?P<m>frameglimpse|fastforward)(?P<g>-g)?(?:-(?P<k>\d+))?", _glimpse,
                "frameglimpse[-g][-K], fastforward[-g][-K]",
                "FrameGlimpse (Gaussian location) / FastForward (jumps from a fixed set), each "
                "with a learned stop, on AdaFrame's core and trainer; -g adds the memory; K from "
                "--budget"),
    AgentFamily(r"frameexit(?:-(?P<k>\d+))?", _frameexit, "frameexit[-K]",
                "FrameExit (Ghodrati et al. 2021): coarse-to-fine frame order, max-pooled "
                "features, a learned gate per step exits early (--set beta=...)"),
    AgentFamily(r"arnet-(?P<k>\d+)", _arnet, "arnet-K",
                "AR-Net-style: over K uniform frames a light GRU policy chooses skip / light / "
                "heavy per frame, Gumbel-softmax with a GFLOPs penalty (--set lam=...)"),
    AgentFamily(r"ocsampler-(?P<k>\d+)", _ocsampler, "ocsampler-K",
                "OCSampler: light model on N uniform frames, a scorer picks K of them in one step "
                "for the heavy recognizer; one-step REINFORCE against K uniform frames"),
    AgentFamily(r"sb3-(?P<algo>ppo|sac|recurrentppo)", _sb3, "sb3-{ppo,sac,recurrentppo}",
                "stable-baselines3 trained on the env (memory features extractor); --model "
                "PATH.zip evaluates a model trained elsewhere"),
]  # fmt: skip
