"""Agent names -> factories. ``make_agent(name, config)`` builds an agent for the harness.

Built-in names (``python benchmarks/run.py --list``):

- ``avgpool-u10``, ``avgpool-r25``, ``avgpool-all``, ``avgpool-g-u10`` (any K): AvgPooling(-G)
- ``lstm-u8``, ``lstm-r10``, ``lstm-all``, ``lstm-g-u10`` (any K): LSTM(-G), trained
- ``scsampler-10`` (any K): SCSampling
- ``random``, ``uniform``: location policies as env agents (K from ``--budget``)
- ``oracle`` / ``oracle-10``: ground-truth relevance bound (synthetic caches only)
- ``adaframe-10`` / ``adaframe`` (``--budget K``): AdaFrame, one row per ``--mu``
- ``frameglimpse``, ``frameglimpse-g``, ``fastforward``, ``fastforward-g`` (``--budget K``):
  the paper's learned competitors, each with a learned stop
- ``sb3-ppo``, ``sb3-sac``, ``sb3-recurrentppo``: stable-baselines3 on the env itself
- ``package.module:factory`` or ``path/to/file.py:factory``: a user's agent; ``factory(config)``
  returns an object following :mod:`adaframe_env.harness.protocol`.

New agents (AdaFrame, FrameGlimpse, FastForward, ...) plug in with one :func:`register` call.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adaframe_env.harness.protocol import RunConfig


@dataclass
class Entry:
    pattern: str  # a full-match regular expression over the agent name
    factory: Callable  # factory(match: re.Match, config: RunConfig) -> agent
    usage: str  # how the name is written, for --list
    description: str


REGISTRY: list[Entry] = []


def register(pattern: str, factory: Callable, usage: str, description: str) -> None:
    """Add agent names matching ``pattern`` (full match); later entries win over earlier."""
    REGISTRY.insert(0, Entry(pattern, factory, usage, description))


def _k(m: re.Match) -> int | None:
    k = m.group("k")
    if k is None:
        return None
    if int(k) < 1:
        raise ValueError(f"{m.group(0)}: K must be at least 1")
    return int(k)


def _fixed(m: re.Match, config: RunConfig):
    strategy = {"u": "uniform", "r": "random", None: "all"}[m.group("s")]
    g = m.group("g") is not None
    if m.group("m") == "avgpool":
        from baselines.fixed import AvgPoolAgent

        return AvgPoolAgent(strategy, _k(m), global_memory=g)
    from baselines.lstm import LSTMAgent

    return LSTMAgent(strategy, _k(m), global_memory=g, settings=config.settings)


def _scsampler(m, config):
    from baselines.scsampler import SCSamplerAgent

    return SCSamplerAgent(_k(m))


def _k_or_budget(m: re.Match, config: RunConfig) -> int:
    """K from the name (``oracle-10``), else from ``--budget``."""
    k = _k(m) if m.group("k") else config.budget
    if k is None:
        raise ValueError(f"{m.group(0)} needs a frame count: --budget K or {m.group(0)}-K")
    return k


def _oracle(m, config):
    from baselines.oracle import OracleAgent

    return OracleAgent(_k_or_budget(m, config))


def _policy(m, config):
    from baselines.policies import RandomPolicy, UniformPolicy

    return {"random": RandomPolicy, "uniform": UniformPolicy}[m.group(0)]()


def _sb3(m, config):
    from agents.sb3_agents import SB3Agent

    return SB3Agent(m.group("algo"), model_path=config.extra.get("model"))


def _adaframe(m, config):
    from agents.adaframe import AdaFrameAgent

    return AdaFrameAgent(_k_or_budget(m, config), settings=config.settings)


def _glimpse(m, config):
    k, g = _k_or_budget(m, config), m.group("g") is not None
    if m.group("m") == "frameglimpse":
        from agents.frameglimpse import FrameGlimpseAgent

        return FrameGlimpseAgent(k, global_memory=g, settings=config.settings)
    from agents.fastforward import FastForwardAgent

    return FastForwardAgent(k, global_memory=g, settings=config.settings)


def load_factory(spec: str) -> Callable:
    """``package.module:factory`` or ``path/to/file.py:factory`` -> the factory object."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(f"agent {spec!r}: write an import path as package.module:factory")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"agent {spec!r}: no file {path}")
        name = f"_adaframe_user_agent_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules beside the user
        module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"agent {spec!r}: module {target} has no attribute {attr!r}") from None


register(r"(?P<m>avgpool)(?P<g>-g)?-(?:(?P<s>[ur])(?P<k>\d+)|all)", _fixed,
         "avgpool[-g]-{uK,rK,all}", "AvgPooling(-G): mean softmax over K uniform/random or all "
         "frames; -G fuses the light model's scores over the 16 memory frames")  # fmt: skip
register(r"(?P<m>lstm)(?P<g>-g)?-(?:(?P<s>[ur])(?P<k>\d+)|all)", _fixed,
         "lstm[-g]-{uK,rK,all}", "LSTM(-G) over K uniform/random or all frames, trained with "
         "cross-entropy; -G attends over the positionally encoded global memory")  # fmt: skip
register(r"scsampler-(?P<k>\d+)", _scsampler, "scsampler-K",
         "SCSampling: light model on every frame, its K most confident frames through the heavy "
         "model (cost counts the light model on all frames)")  # fmt: skip
register(r"oracle(?:-(?P<k>\d+))?", _oracle, "oracle[-K]",
         "bound: K frames from the ground-truth relevant half (synthetic caches only; "
         "a bound, not a competitor)")  # fmt: skip
register(r"random|uniform", _policy, "random, uniform",
         "env agents: a random location each step / K uniformly spaced locations")  # fmt: skip
register(r"adaframe(?:-(?P<k>\d+))?", _adaframe, "adaframe[-K]",
         "AdaFrame (paper 3): memory-augmented LSTM choosing where to look, REINFORCE on the "
         "margin reward, adaptive lookahead exit on its utility (one row per --mu)")  # fmt: skip
register(r"(?P<m>frameglimpse|fastforward)(?P<g>-g)?(?:-(?P<k>\d+))?", _glimpse,
         "frameglimpse[-g][-K], fastforward[-g][-K]",
         "FrameGlimpse (Gaussian location) / FastForward (jumps from a fixed set), each with a "
         "learned stop, on AdaFrame's core and trainer; -g adds the memory; K from --budget")  # fmt: skip
register(r"sb3-(?P<algo>ppo|sac|recurrentppo)", _sb3, "sb3-{ppo,sac,recurrentppo}",
         "stable-baselines3 trained on the env (memory features extractor); --model PATH.zip "
         "evaluates a model trained elsewhere")  # fmt: skip


def make_agent(name: str, config: RunConfig | None = None):
    """Build the agent called ``name`` (see the module docstring) and set its ``name``."""
    config = config or RunConfig()
    if ":" in name and not re.fullmatch(r"[\w-]+", name):
        agent = load_factory(name)(config)
    else:
        for entry in REGISTRY:
            m = re.fullmatch(entry.pattern, name)
            if m:
                agent = entry.factory(m, config)
                break
        else:
            raise ValueError(
                f"unknown agent {name!r}; `python benchmarks/run.py --list` shows the names "
                "(or give package.module:factory for your own)"
            )
    for attr in ("fit", "evaluate"):
        if not callable(getattr(agent, attr, None)):
            raise TypeError(f"agent {name!r} ({type(agent).__name__}) has no {attr}() method")
    if config.settings and getattr(agent, "settings", None) is None:
        raise ValueError(f"--set: agent {name!r} takes no settings")
    try:
        agent.name = name
    except AttributeError:
        pass
    return agent


def list_agents() -> list[tuple[str, str]]:
    """(usage, description) of every registered family, oldest first, plus the import path."""
    rows = [(e.usage, e.description) for e in reversed(REGISTRY)]
    rows.append(("package.module:factory", "your own agent (see docs/harness.md)"))
    return rows
