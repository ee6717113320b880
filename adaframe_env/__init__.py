"""adaframe-gym: AdaFrame's "which frame next?" task as a Gymnasium benchmark."""

from adaframe_env.data import SCHEMA_VERSION, CacheError, FeatureStore, validate

__all__ = ["SCHEMA_VERSION", "CacheError", "FeatureStore", "validate"]
