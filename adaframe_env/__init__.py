"""adaframe-gym: AdaFrame's "which frame next?" task as a Gymnasium benchmark."""

from adaframe_env import registration  # noqa: F401
from adaframe_env.data import SCHEMA_VERSION, CacheError, FeatureStore, validate
from adaframe_env.env import AdaFrameEnv

__all__ = ["SCHEMA_VERSION", "AdaFrameEnv", "CacheError", "FeatureStore", "validate"]
