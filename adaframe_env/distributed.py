"""Training on several processes under ``torchrun``: the few collective helpers the runner and
the recurrent agents' trainer use, so that the trainer reads like the one-process loop.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``benchmarks/run.py``
calls :func:`init`, which joins the process group (gloo on CPU, nccl with ``--device cuda``,
each rank on ``cuda:LOCAL_RANK``). Without those variables every helper is a no-op for one
process (:func:`rank` 0, :func:`world` 1), so the one-process code path is unchanged.

What the ranks share (docs/distributed.md): each update's global batch is drawn from the same
seed on every rank and split ``rank::world`` (:func:`shard`); every rank runs its shard's
episodes, back-propagates its own loss, and :func:`sum_gradients` adds the ranks' gradients,
each weighted by its share of the batch, so every rank holds the gradient of the one-process
batch mean and takes the same optimizer step. Rank 0 alone evaluates, logs, writes the
checkpoint and the results.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist

#: how long a rank waits in a collective (rank 0 evaluates the val split alone every epoch)
TIMEOUT = datetime.timedelta(hours=2)


def launched() -> bool:
    """True in a process started by ``torchrun`` (``RANK`` and ``WORLD_SIZE`` are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device: str = "cpu", timeout: datetime.timedelta = TIMEOUT) -> str:
    """Join the process group when launched by ``torchrun``; returns this rank's device.

    ``device`` ``cpu``: backend gloo. ``cuda``: backend nccl, and the rank uses (and returns)
    ``cuda:LOCAL_RANK``. Outside ``torchrun`` nothing happens and ``device`` is returned as is.
    ``timeout``: how long a rank waits in a collective.
    """
    if not launched() or dist.is_initialized():
        return device
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
        dist.init_process_group("nccl", timeout=timeout, device_id=torch.device(device))
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return device


def cleanup() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_distributed() -> bool:
    """More than one process trains together (a world of one behaves as no world at all)."""
    return world() > 1


def is_main() -> bool:
    """Rank 0: the process that evaluates, logs and writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. builds a missing cache), then the others do."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (a decision every rank must take alike)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard(batch):
    """This rank's share of a global batch: ``batch[rank::world]`` (sizes differ by at most 1)."""
    return batch[rank() :: world()]


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Every rank takes rank 0's parameters (what DDP does at wrap time)."""
    if is_distributed():
        for p in module.parameters():
            dist.broadcast(p.data, src=0)


def sum_gradients(parameters, weight: float) -> None:
    """Replace each gradient by ``sum over ranks of weight_r * grad_r`` (one all-reduce).

    With ``weight_r = n_r / B`` (rank r's share of a global batch of B videos) and ``grad_r``
    the gradient of the mean loss over its ``n_r`` videos, the result is the gradient of the
    mean over all B videos: exactly the one-process gradient, also when B is not divisible by
    the world size. Parameters without a gradient are left without one (the optimizer skips
    them, as in one process); which parameters get one depends on the settings only (e.g. no
    location head gradient with K = 1), never on the data, so the list is the same on every
    rank.
    """
    if not is_distributed():
        return
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params]) * weight
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def weighted_sum(values: dict[str, float], weight: float, device="cpu") -> dict[str, float]:
    """``sum over ranks of weight_r * value_r`` for each key: with ``weight_r = n_r / B``, the
    batch mean of per-video means (the logged training metrics)."""
    if not is_distributed():
        return values
    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device) * weight
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))
