"""adaframe-gym: AdaFrame's "which frame next?" task as a Gymnasium benchmark."""

from adaframe_env import registration  # noqa: F401  (registers the AdaFrame-* ids)
from adaframe_env.data import SCHEMA_VERSION, CacheError, FeatureStore, validate

__all__ = [
    "SCHEMA_VERSION",
    "AdaFrameEnv",
    "CacheError",
    "FeatureStore",
    "VideoFeatures",
    "import_features",
    "validate",
]


def __getattr__(name: str):
    # The env pulls in SciPy and the proxy generator: import it on first use, so that the
    # `adaframe` CLI (validate, info) starts quickly.
    if name == "AdaFrameEnv":
        from adaframe_env.env import AdaFrameEnv

        return AdaFrameEnv
    if name in ("import_features", "VideoFeatures"):  # pulls in torch (the recognizer's fit)
        from adaframe_env.build import importer

        return getattr(importer, name)
    raise AttributeError(f"module 'adaframe_env' has no attribute {name!r}")
