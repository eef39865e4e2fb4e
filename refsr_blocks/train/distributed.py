"""Process-group set-up for ``torchrun`` and the few collectives the trainer needs.

Under ``torchrun --nproc_per_node=N`` the environment holds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_distributed` then joins the process group (``nccl`` on CUDA,
``gloo`` on CPU) and picks this replica's device. Without them it returns a one-process
context and every collective here is a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_gather_strings", "all_reduce_sum", "barrier", "cleanup", "init_distributed"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank, world_size, local_rank: as set by torchrun (0, 1, 0 without it).
        device: this replica's device.
        backend: ``"nccl"``, ``"gloo"`` or ``None`` (not distributed).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def distributed(self) -> bool:
        """More than one replica."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the replica that writes files and shows progress."""
        return self.rank == 0


def _device(requested: str, local_rank: int) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device is {requested!r} but CUDA is not available; use 'cpu' or 'auto'")
    if requested == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def init_distributed(requested_device: str = "auto", timeout_minutes: float = 30.0) -> DistContext:
    """Join the process group if launched by torchrun; return this process's context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(requested_device, local_rank)
    if world_size <= 1:
        return DistContext(0, 1, 0, device, None)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistContext(rank, world_size, local_rank, device, backend)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group (if this context joined one)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every replica."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(ctx: DistContext, values: torch.Tensor) -> torch.Tensor:
    """Sum a float tensor over the replicas (returns a new tensor; identity on one process)."""
    if not ctx.distributed:
        return values.clone()
    out = values.detach().to(ctx.device, torch.float64 if ctx.backend == "gloo" else torch.float32).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device, values.dtype)


def all_gather_strings(ctx: DistContext, value: str) -> list[str]:
    """Every replica's ``value``, in rank order."""
    if not ctx.distributed:
        return [value]
    out: list[str | None] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return [str(v) for v in out]
