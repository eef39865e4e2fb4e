"""The fast inference path: channels_last weights, no autograd, optional bf16 and compile.

On CPUs with oneDNN, convolutions in channels_last (NHWC) memory format run faster than in
contiguous NCHW (CrossNet: about 1.6× on the project's 2-core machine, ``python
benchmarks/run.py``); every component here preserves the format it is given (the warp
reads whole pixel rows in NHWC). ``inference_mode`` keeps no autograd state, so nothing
that is not returned is retained.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> from refsr_blocks.inference.runtime import optimize_for_inference, run
    >>> model = optimize_for_inference(build_model("crossnet_lite"))
    >>> run(model, torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import sys
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = [
    "PRECISIONS",
    "bf16_fast_path_available",
    "inference_context",
    "optimize_for_inference",
    "release_freed_memory",
    "resolve_precision",
    "retain_freed_memory",
    "run",
    "to_channels_last",
]

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: What the inference entry points accept: ``"auto"`` (what is fast here) and the autocast precisions.
PRECISIONS = ("auto", *AUTOCAST_DTYPES)

# glibc mallopt parameters (malloc.h) and glibc's defaults for them.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks from this size up are mapped on their own and unmapped when freed (release_freed_memory).
RELEASE_ABOVE_BYTES = 2**20
_INT_MAX = 2**31 - 1


def optimize_for_inference(
    model: nn.Module, *, channels_last: bool = True, compile: bool = False, fast_layers: bool = True
) -> nn.Module:
    """Put ``model`` in eval mode, freeze it, swap in the CPU fast layers and convert it to channels_last.

    Args:
        model: any refsr-blocks model.
        channels_last: convert 4-D weights to NHWC (fast on CPU and on tensor-core GPUs).
        compile: wrap the model with ``torch.compile`` (slow first call, faster after).
        fast_layers: :func:`refsr_blocks.layers.use_fast_layers` (in place; same state_dict; the
            fast twins only act in CPU inference, so this is harmless on a GPU).

    Returns:
        The same module (or its compiled wrapper).
    """
    model.eval().requires_grad_(False)
    if fast_layers:
        from ..layers.swap import use_fast_layers

        use_fast_layers(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        return torch.compile(model)  # type: ignore[return-value]
    return model


def bf16_fast_path_available() -> bool:
    """Whether bf16 CPU inference runs natively and with packed weights here
    (:func:`refsr_blocks.layers.prepacked.bf16_fast_path_problem` says why not)."""
    from ..layers.prepacked import bf16_fast_path_available as available

    return available()


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """The autocast precision that ``precision`` stands for on ``device``.

    ``"auto"`` is ``"bf16"`` on a CPU where bf16 is fast (native bf16 instructions and the packed
    bf16 convolutions: :func:`bf16_fast_path_available`) and ``"fp32"`` on every other CPU and
    on CUDA (where fp32 keeps results identical to the CPU's; ask for ``"bf16"`` / ``"fp16"``
    explicitly there). An explicit ``"bf16"`` on a CPU where it is not fast is kept, with one
    ``RuntimeWarning`` per call of this function saying it will be slow.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    on_cpu = torch.device(device).type == "cpu"
    if precision == "auto":
        return "bf16" if on_cpu and bf16_fast_path_available() else "fp32"
    if precision == "bf16" and on_cpu:
        _warn_if_bf16_is_slow()
    return precision


def _warn_if_bf16_is_slow() -> None:
    from ..layers.prepacked import bf16_fast_path_problem

    problem = bf16_fast_path_problem()
    if problem is not None:
        # bf16 without native support is emulated: 5-30× slower than fp32 measured on an AVX2 CPU.
        warnings.warn(
            f"precision 'bf16' will be slow on this CPU ({problem}); use precision 'fp32' or 'auto' "
            "(bf16 only where it is fast)",
            RuntimeWarning,
            stacklevel=4,
        )


def to_channels_last(x: Tensor) -> Tensor:
    """``x`` in NHWC memory format (4-D tensors only; others are returned unchanged)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


@contextlib.contextmanager
def inference_context(device: torch.device | str = "cpu", precision: str = "fp32") -> Iterator[None]:
    """``inference_mode`` plus autocast for ``precision`` in ``{"fp32", "bf16", "fp16"}``
    (``"auto"``: :func:`resolve_precision`)."""
    if precision == "auto":
        precision = resolve_precision(precision, device)
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    dtype = AUTOCAST_DTYPES[precision]
    device_type = torch.device(device).type
    with torch.inference_mode(), torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        yield


def run(model: nn.Module, lr: Tensor, ref: Tensor, precision: str = "fp32") -> Tensor:
    """One fast forward: NHWC inputs, inference mode, optional autocast; float32 output."""
    with inference_context(lr.device, precision):
        return model(to_channels_last(lr), to_channels_last(ref)).float()


def retain_freed_memory() -> bool:
    """Keep memory that tensors free in this process for reuse, instead of unmapping it.

    glibc's malloc serves every allocation above 32 MB (a 64-channel 320×512 float32 map is
    42 MB) with fresh pages from ``mmap`` and unmaps them on free, so each forward pass
    page-faults its large buffers anew: 240-380 MiB of first touches (two runs) per 320×512 float32
    CrossNet forward (``python benchmarks/page_faults.py``), roughly a tenth of its time on the
    project's 2-core machine (``python benchmarks/run.py`` runs the ``_retain`` modes beside
    the default ones). This sets
    ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, INT_MAX)``, so large blocks
    come from the heap and stay there after they are freed, much as tcmalloc and PyTorch's
    CUDA caching allocator do (``LD_PRELOAD`` of tcmalloc gives the same effect). The heap can
    still grow now and then when a small allocation lands in freed space; after that the
    larger free block is reused too.

    Process-wide and not undone: the resident size stays near its peak for the life of the
    process. Call it once in an inference process, not inside a library of your own.

    Returns:
        True if applied; False (changing nothing) where the C library is not glibc.
    """
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def release_freed_memory() -> bool:
    """Give memory that tensors free in this process back to the system at once, so that the
    resident size follows what is alive: for a long run whose buffers come and go in many
    sizes (a streamed result's bands and windows), where a heap keeps growing with fragments.

    glibc raises its mmap threshold, by default, each time a mapped block is freed (up to 32 MB),
    after which blocks of that size come from the heap and their freed space is kept. This fixes
    the threshold at :data:`RELEASE_ABOVE_BYTES` (``mallopt(M_MMAP_THRESHOLD)``) and limits
    malloc to two arenas (``M_ARENA_MAX``); the price is a page fault for each fresh block.
    Process-wide and not undone, like :func:`retain_freed_memory`, its opposite: call one of
    them once in an inference process (``refsr-blocks sr`` does), not inside a library.

    Returns:
        True if applied; False (changing nothing) where the C library is not glibc.
    """
    libc = _glibc()
    return (
        libc is not None
        and bool(libc.mallopt(_M_MMAP_THRESHOLD, RELEASE_ABOVE_BYTES))
        and bool(libc.mallopt(_M_ARENA_MAX, 2))
    )


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)
