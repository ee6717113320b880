"""How a method package tells the harness its agent names (docs/design.md, "How the harness learns agent names").

A package lists :class:`AgentFamily` entries and exposes the list through the entry-point group
``adaframe_gym.agents`` in its ``pyproject.toml``::

    [project.entry-points."adaframe_gym.agents"]
    mypackage = "mypackage.families:FAMILIES"

The harness (:mod:`adaframe_env.harness.registry`) loads every such list, the built-in
``baselines`` and ``agents`` packages' exactly like a third party's, so this layer knows
nothing of the methods and the methods know nothing of the harness.

Patterns are full-match regular expressions over the agent name. A named group ``k`` holds the
frame budget when the name fixes it (``avgpool-u10``, ``adaframe-10``), a group ``all`` marks
a name that fixes "all frames" (``avgpool-all``); the runner reads both from the match
(:func:`budget_in_name`), never by parsing the name again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from adaframe_env.protocol.agent import RunConfig

#: the entry-point group the harness reads
ENTRY_POINT_GROUP = "adaframe_gym.agents"
#: the frame strategy a fixed-frame name spells (``-u10``, ``-r10``, ``-all``: group ``s``)
STRATEGIES = {"u": "uniform", "r": "random", None: "all"}


@dataclass(frozen=True)
class AgentFamily:
    """Agent names matching ``pattern``; ``factory(match, config)`` builds one."""

    pattern: str
    factory: Callable[[re.Match, RunConfig], object]
    usage: str  # how the name is written, for --list
    description: str


def k_from(m: re.Match) -> int | None:
    """The frame budget that the name fixes (group ``k``), or None."""
    k = m.groupdict().get("k")
    if k is None:
        return None
    if int(k) < 1:
        raise ValueError(f"{m.group(0)}: K must be at least 1")
    return int(k)


def k_or_budget(m: re.Match, config: RunConfig) -> int:
    """K from the name (``oracle-10``), else from ``--budget``."""
    k = k_from(m) if m.groupdict().get("k") else config.budget
    if k is None:
        raise ValueError(f"{m.group(0)} needs a frame count: --budget K or {m.group(0)}-K")
    return k


def budget_in_name(m: re.Match) -> bool:
    """Whether the name fixes the frame budget (``-K``, ``-uK``, ``-rK`` or ``-all``)."""
    groups = m.groupdict()
    return groups.get("k") is not None or groups.get("all") is not None
