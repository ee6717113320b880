"""Where caches live: the per-user cache folder, the default proxies' file names, and the
environment variables that point at real caches. Names only: nothing here reads or builds a
cache (:mod:`adaframe_env.build.proxy` finds or generates the one a user means)."""

from __future__ import annotations

import os
from pathlib import Path

from adaframe_env.data.schema import SCHEMA_VERSION

#: the synthetic proxies a name stands for (their configurations: :data:`adaframe_env.build.synth.PRESETS`)
PRESET_NAMES = ("activitynet", "activitynet-small", "fcvid", "fcvid-small", "tiny")
#: which environment variable names the real cache of each dataset (None: the generic env id)
ENV_VARS = {"fcvid": "ADAFRAME_FCVID", "activitynet": "ADAFRAME_ACTIVITYNET", None: "ADAFRAME_DATA"}


def cache_dir() -> Path:
    """``$ADAFRAME_CACHE_DIR``, else ``$XDG_CACHE_HOME/adaframe-gym``, else ``~/.cache/adaframe-gym``."""
    if os.environ.get("ADAFRAME_CACHE_DIR"):
        return Path(os.environ["ADAFRAME_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adaframe-gym"


def proxy_path(name: str, seed: int = 0) -> Path:
    """Where the default proxy ``name`` lives in the per-user cache, versioned by schema: a
    proxy written by an older adaframe-gym is not picked up, a new one is generated beside it."""
    return cache_dir() / f"{name}-proxy-v{SCHEMA_VERSION}-seed{seed}.h5"
