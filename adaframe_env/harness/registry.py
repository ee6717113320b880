"""Agent names -> agents. ``make_agent(name, config)`` builds an agent for the harness.

The harness knows no method by itself: every name comes from an :class:`AgentFamily` list that
a package exposes through the entry-point group ``adaframe_gym.agents``
(:mod:`adaframe_env.protocol.names`): the built-in ``baselines`` and ``agents`` packages do it
in their ``families.py`` exactly as a third-party package would. ``adaframe run --list`` shows
them all (docs/harness.md describes each). Besides the names, ``package.module:factory`` or
``path/to/file.py:factory`` is a user's agent: ``factory(config)`` returns an object following
:mod:`adaframe_env.protocol`. A user's agent is shown under a short name (:func:`short_name`)
when it sets one (a ``name`` attribute, or ``--name``), else under its import path.

In one process, :func:`register` adds a family without packaging it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

from adaframe_env.protocol import AgentFamily, RunConfig
from adaframe_env.protocol.names import ENTRY_POINT_GROUP, budget_in_name

_REGISTERED: list[AgentFamily] = []  # by register(), newest first
_INSTALLED: list[AgentFamily] | None = None  # from the entry points, loaded on first use


def register(pattern: str, factory: Callable, usage: str, description: str) -> None:
    """Add agent names matching ``pattern`` (full match) in this process; they win over the
    installed families."""
    _REGISTERED.insert(0, AgentFamily(pattern, factory, usage, description))


def installed_families() -> list[AgentFamily]:
    """Every family of the ``adaframe_gym.agents`` entry points, in entry-point name order."""
    global _INSTALLED
    if _INSTALLED is None:
        points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                        key=lambda p: p.name)  # fmt: skip
        if not points:
            raise RuntimeError(
                f"no agent families installed (entry-point group {ENTRY_POINT_GROUP!r}): "
                "install the package (pip install -e .) so that its metadata is written"
            )
        families: list[AgentFamily] = []
        for point in points:
            families.extend(point.load())
        _INSTALLED = families
    return _INSTALLED


def families() -> list[AgentFamily]:
    """The families a name is looked up in, first match wins."""
    return _REGISTERED + installed_families()


def lookup(name: str) -> tuple[AgentFamily, re.Match] | None:
    """The family whose pattern matches ``name`` in full, with the match (None: no family)."""
    for family in families():
        m = re.fullmatch(family.pattern, name)
        if m:
            return family, m
    return None


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


def is_import_path(name: str) -> bool:
    """``package.module:factory`` or ``file.py:factory`` rather than a registered name."""
    return ":" in name and not re.fullmatch(r"[\w-]+", name)


def name_fixes_budget(name: str) -> bool:
    """Whether the registered name fixes the frame budget (``avgpool-u10``, ``adaframe-10``,
    ``lstm-all``), by its family's own pattern; False for a user's import path."""
    found = None if is_import_path(name) else lookup(name)
    return found is not None and budget_in_name(found[1])


#: a short name: a file-name token (it starts the result files' names), so no ``/``, ``:``,
#: spaces or dots (``run_name`` drops a ``.py``; a leading ``.`` would hide the file)
SHORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")


def check_short_name(label) -> str:
    """``label`` if it can name a user's agent in the table, the result files and the plots;
    else a one-line ``ValueError`` naming the fix. Refused: anything but 1-48 letters, digits,
    ``-`` and ``_`` (starting with a letter or digit), and a name a registered family matches
    (``uniform``, ``adaframe-10``): its results would be taken for that method's and share
    its result files."""
    if not isinstance(label, str) or not SHORT_NAME.fullmatch(label):
        raise ValueError(
            f"agent name {label!r}: a short name is 1-48 letters, digits, '-' or '_', starting "
            "with a letter or digit (it is part of the result files' names); e.g. --name my-agent"
        )
    found = lookup(label)
    if found is not None:
        raise ValueError(
            f"agent name {label!r} is a registered agent's name ({found[0].usage}); your results "
            f"would be mistaken for its results: choose another name, e.g. --name my-{label}"
        )
    return label


def make_agent(name: str, config: RunConfig | None = None, label: str | None = None):
    """Build the agent called ``name`` (see the module docstring) and set its ``name``.

    ``name`` becomes the agent's ``name`` for a registered agent. For a user's agent (an import
    path) it is ``label`` (``--name``) if given, else the agent's own non-empty ``name``
    attribute, else the import path; a short name is checked by :func:`check_short_name`.
    A ``label`` for a registered agent is refused: a registered method keeps its name."""
    config = config or RunConfig()
    if is_import_path(name):
        agent = load_factory(name)(config)
        label = label or getattr(agent, "name", "") or name
        if label != name:
            check_short_name(label)
        name = label
    else:
        if label is not None and label != name:
            raise ValueError(
                f"--name {label}: only your own agent (--agent path/file.py:factory) takes a "
                f"short name; the registered agent {name!r} keeps its name"
            )
        found = lookup(name)
        if found is None:
            raise ValueError(
                f"unknown agent {name!r}; `adaframe run --list` shows the names "
                "(or give package.module:factory for your own)"
            )
        family, m = found
        agent = family.factory(m, config)
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
    """(usage, description) of every family (installed, then registered), plus the import path."""
    rows = [(f.usage, f.description) for f in installed_families() + _REGISTERED[::-1]]
    rows.append(("package.module:factory", "your own agent (see docs/harness.md)"))
    return rows
