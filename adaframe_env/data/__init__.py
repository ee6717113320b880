"""Feature caches: schema, loader, synthetic proxies, recognizer heads."""

from adaframe_env.data.schema import SCHEMA_VERSION, CacheError, validate
from adaframe_env.data.store import MEMORY_SIZE, FeatureStore

__all__ = ["SCHEMA_VERSION", "CacheError", "FeatureStore", "MEMORY_SIZE", "validate"]
