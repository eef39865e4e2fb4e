"""Sliding-window (tiled) inference for images too large to super-resolve in one pass.

CrossNet's protocol: 512×512 windows with a stride of 256 (in output pixels). Each window of
the output grid is super-resolved on its own from the matching LR and reference windows; the
results are blended with a weight window that ramps up over the overlap and never reaches
zero, so every pixel, including those at the image border, is covered. Tiles are processed
one at a time into a preallocated output, so peak memory is that of one window (plus the
output itself) whatever the image size. Without ``window``/``stride``, :func:`default_windowing`
picks CrossNet's sizes rounded to multiples of the model's scale, so any scale works.

Mistakes in the inputs or the windowing raise :class:`~refsr_blocks.core.errors.InputError` (a
``ValueError``), which the command line reports as one line.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite")
    >>> lr, ref = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 160, 192)
    >>> super_resolve(model, lr, ref, window=128, stride=64, progress=False).shape
    torch.Size([1, 3, 160, 192])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.errors import InputError

__all__ = ["BLEND_MODES", "blend_window", "count_tiles", "default_windowing", "super_resolve", "tile_starts"]

BLEND_MODES = ("linear", "mean")
#: CrossNet's window and stride, in output pixels.
CROSSNET_WINDOW, CROSSNET_STRIDE = 512, 256
RefSRCallable = Callable[[Tensor, Tensor], Tensor]


def tile_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of ``window`` pixels every ``stride`` pixels covering ``size``.

    The last window is moved back to end at ``size`` (so no window leaves the image); when
    ``window >= size`` a single window at 0 covers everything.

    Example:
        >>> tile_starts(1000, 512, 256)
        [0, 256, 488]
        >>> tile_starts(300, 512, 256)
        [0]
    """
    if window >= size:
        return [0]
    starts = list(range(0, size - window, stride))
    starts.append(size - window)
    return starts


def default_windowing(scale: int) -> tuple[int, int]:
    """CrossNet's window and stride (512 and 256 output pixels) rounded down to multiples of ``scale``.

    Example:
        >>> default_windowing(4), default_windowing(3)
        ((512, 256), (510, 255))
    """
    window = max(scale, CROSSNET_WINDOW // scale * scale)
    stride = max(scale, CROSSNET_STRIDE // scale * scale)
    return window, stride


def blend_window(length: int, overlap: int, mode: str = "linear") -> Tensor:
    """1-D weights of a window of ``length`` pixels (float32, shape ``length``).

    ``"linear"``: a trapezoid rising linearly over the first ``overlap`` pixels, from
    ``0.5 / overlap`` to 1, flat in the middle, falling symmetrically: where two windows
    overlap by ``overlap`` pixels their weights cross-fade, and no weight is zero.
    ``"mean"``: all ones (overlapping predictions are averaged).
    """
    if mode not in BLEND_MODES:
        raise InputError(f"blend must be one of {list(BLEND_MODES)}, got {mode!r}")
    if mode == "mean" or overlap <= 0:
        return torch.ones(length)
    pos = torch.arange(length, dtype=torch.float32) + 0.5
    ramp = torch.minimum(pos, length - pos) / float(overlap)
    return ramp.clamp(max=1.0)


def _check_windowing(window: int, stride: int, scale: int) -> None:
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{name} must be a positive int (output pixels), got {value!r}")
        if value % scale:
            lower, upper = value // scale * scale, -(-value // scale) * scale
            suggestion = f"{upper}" if lower == 0 else f"{lower} or {upper}"
            raise InputError(
                f"{name}={value} must be a multiple of the upscale factor {scale} (it is in output "
                f"pixels, and a window must cover whole LR pixels); try {suggestion}"
            )
    if stride > window:
        raise InputError(f"stride={stride} must not exceed window={window}: pixels between windows would be missed")


def _scale_of(lr: Tensor, ref: Tensor, model: object) -> int:
    if lr.ndim != 4 or ref.ndim != 4:
        raise InputError(f"lr and ref must be B×C×h×w and B×C×H×W, got {tuple(lr.shape)} and {tuple(ref.shape)}")
    (h, w), (H, W) = lr.shape[-2:], ref.shape[-2:]
    if lr.shape[0] != ref.shape[0] or H % h or W % w or H // h != W // w:
        raise InputError(
            f"ref must be an integer multiple s of lr in both dimensions (same batch): lr {tuple(lr.shape)}, ref {tuple(ref.shape)}"
        )
    model_scale = getattr(model, "upscale", None)
    if isinstance(model_scale, int) and H // h != model_scale:
        raise InputError(
            f"the model upscales by {model_scale}: for a {h}×{w} LR image the reference must be "
            f"{h * model_scale}×{w * model_scale}, got {H}×{W}"
        )
    return H // h


def super_resolve(
    model: nn.Module | RefSRCallable,
    lr: Tensor,
    ref: Tensor,
    window: int | None = None,
    stride: int | None = None,
    blend: Literal["linear", "mean"] = "linear",
    progress: bool = True,
) -> Tensor:
    """Super-resolve ``lr`` with ``ref`` window by window.

    Args:
        model: a RefSR model ``model(lr, ref) -> sr`` (any callable with that contract; an
            ``nn.Module`` is put in eval mode for the call and restored afterwards).
        lr: B×C×h×w in [0, 1].
        ref: B×C×H×W, H = s·h, W = s·w.
        window: window side in output (HR) pixels, a multiple of s; images smaller than the
            window are processed whole. Default: CrossNet's 512, rounded down to a multiple
            of s (:func:`default_windowing`).
        stride: step between windows in output pixels, a multiple of s, at most ``window``.
            Default: CrossNet's 256, rounded down to a multiple of s.
        blend: ``"linear"`` (weights ramp over the overlap) or ``"mean"``.
        progress: show a tqdm bar over the windows.

    Returns:
        B×C×H×W on ``lr``'s device, float32 (or ``lr``'s dtype if it is float64).

    Raises:
        InputError: window/stride not multiples of s, stride > window, mismatched inputs
            (a ``ValueError``).
    """
    scale = _scale_of(lr, ref, model)
    default_window, default_stride = default_windowing(scale)
    window = default_window if window is None else window
    stride = default_stride if stride is None else stride
    _check_windowing(window, stride, scale)
    if blend not in BLEND_MODES:
        raise InputError(f"blend must be one of {list(BLEND_MODES)}, got {blend!r}")
    b, _, H, W = ref.shape
    win_h, win_w = min(window, H), min(window, W)
    ys, xs = tile_starts(H, win_h, stride), tile_starts(W, win_w, stride)
    dtype = torch.float64 if lr.dtype == torch.float64 else torch.float32
    out: Tensor | None = None
    weight = torch.zeros(1, 1, H, W, dtype=dtype, device=lr.device)
    # Adjacent windows overlap by window - stride (or more where the last one is moved back).
    weight_y = blend_window(win_h, win_h - stride if len(ys) > 1 else 0, blend).to(lr.device, dtype)
    weight_x = blend_window(win_w, win_w - stride if len(xs) > 1 else 0, blend).to(lr.device, dtype)
    tile_weight = weight_y[:, None] * weight_x[None, :]
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.inference_mode():
            bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress, leave=False)
            for y in ys:
                for x in xs:
                    lr_tile = lr[..., y // scale : (y + win_h) // scale, x // scale : (x + win_w) // scale]
                    sr = model(lr_tile, ref[..., y : y + win_h, x : x + win_w])
                    if out is None:
                        out = torch.zeros(b, sr.shape[1], H, W, dtype=dtype, device=lr.device)
                    out[..., y : y + win_h, x : x + win_w] += sr.to(lr.device, dtype) * tile_weight
                    weight[..., y : y + win_h, x : x + win_w] += tile_weight
                    bar.update(1)
            bar.close()
            assert out is not None
            out = out.div_(weight)
    finally:
        if was_training:
            model.train()  # type: ignore[union-attr]
    return out.clone()  # a normal tensor (not an inference tensor) that callers may modify


def count_tiles(height: int, width: int, window: int = CROSSNET_WINDOW, stride: int = CROSSNET_STRIDE) -> int:
    """How many windows :func:`super_resolve` runs for an H×W output."""
    return len(tile_starts(height, min(window, height), stride)) * len(tile_starts(width, min(window, width), stride))
