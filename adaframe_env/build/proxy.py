"""Find the cache a user means: a path, a preset name, an environment variable, or the
synthetic proxy (generated on first use; the generator is imported only then).

Order for ``resolve_data(data, dataset)``:

1. ``data`` is an existing path -> that file.
2. ``data`` is a preset name ("fcvid", "activitynet", "fcvid-small", "activitynet-small",
   "tiny") -> that synthetic proxy.
3. ``data`` is None -> ``$ADAFRAME_FCVID`` / ``$ADAFRAME_ACTIVITYNET`` (by ``dataset``), or
   ``$ADAFRAME_DATA`` for the generic id.
4. otherwise the synthetic proxy of ``dataset``, generated once into the per-user cache folder
   (``$ADAFRAME_CACHE_DIR``, else ``$XDG_CACHE_HOME/adaframe-gym``, else
   ``~/.cache/adaframe-gym``) with one warning saying so.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from adaframe_env.data.paths import ENV_VARS, PRESET_NAMES, proxy_path

_warned: set[str] = set()


class SyntheticDataWarning(UserWarning):
    """Raised once per process when the env falls back to a synthetic proxy."""


def ensure_proxy(name: str, seed: int = 0, progress: bool = True) -> Path:
    """Path of preset ``name``'s proxy, generating it first if it is not cached yet."""
    path = proxy_path(name, seed)
    if not path.exists():
        from adaframe_env.build import synth  # SciPy and torch: imported only to build

        synth.synthesize(path, synth.preset(name, seed=seed), progress=progress)
    return path


def resolve_data(
    data: str | os.PathLike | None, dataset: str | None = None, progress: bool = True
) -> Path:
    """The cache path for ``data`` (see the module docstring for the order); ``progress``:
    show the generator's progress bars if a proxy has to be generated."""
    if data is not None:
        path = Path(data).expanduser()
        if path.exists() or str(data) not in PRESET_NAMES:
            return path  # a missing path is reported by the validator, naming the file
        return ensure_proxy(str(data), progress=progress)
    var = ENV_VARS.get(dataset)
    if var and os.environ.get(var):
        return Path(os.environ[var]).expanduser()
    if dataset is None:
        raise ValueError(
            "no data given: pass data=PATH (an adaframe feature cache) or a preset name "
            f"({', '.join(sorted(PRESET_NAMES))}), or set ${ENV_VARS[None]}"
        )
    path = proxy_path(dataset)
    if dataset not in _warned:
        _warned.add(dataset)
        warnings.warn(
            f"no real {dataset} cache given (data=... or ${var}); using the synthetic "
            f"{dataset} proxy at {path}" + ("" if path.exists() else " (generating it now: about 1 min on 2 cores)"),
            SyntheticDataWarning,
            stacklevel=3,
        )
    return ensure_proxy(dataset, progress=progress)
