"""``--set key=value`` options: typed hyperparameters of an agent, from the command line.

A learning agent keeps its hyperparameters in a dataclass; :func:`apply_settings` returns a
copy with the command line's ``key=value`` strings converted to each field's type. They are
part of the agent's ``hparams()``, hence of its checkpoint key: a changed setting trains anew.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_settings(items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a later key wins."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: write key=value, e.g. --set readout=plain")
        out[key.strip()] = value.strip()
    return out


def apply_settings(defaults: T, settings: Mapping[str, str], agent: str) -> T:
    """``defaults`` (a dataclass instance) with ``settings`` converted to the fields' types."""
    fields = {f.name: f for f in dataclasses.fields(defaults)}
    changes = {}
    for key, text in settings.items():
        if key not in fields:
            known = ", ".join(f"{k}={getattr(defaults, k)}" for k in fields)
            raise ValueError(f"--set {key}: {agent} has no setting {key!r}; its settings: {known}")
        changes[key] = _convert(text, type(getattr(defaults, key)), key)
    return dataclasses.replace(defaults, **changes)


def _convert(text: str, kind: type, key: str):
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        return kind(text)
    except ValueError:
        raise ValueError(f"--set {key}={text}: expected a {kind.__name__}") from None
