"""Tiled inference for images too large to super-resolve in one pass, without wasted work.

An H×W output is cut into a grid of evenly spaced windows of at most ``window`` output
pixels per side that overlap their neighbours by at least ``window - stride`` pixels (the
seam margin: 64 by default, not half a window). Each window is super-resolved on its own
and the results are blended with weights that ramp across each overlap (and are 1 at the
image border), so every pixel is covered and adjacent windows cross-fade. Windows are
processed one at a time into a preallocated output, so peak memory is that of one window
plus the output, whatever the image size.

Models with an ``upsampler`` and a ``fuse(upsampled, ref)`` stage (CrossNet) run the
upsampler once for the whole image, not per window: an MDSR-like upsampler (``head``,
``pre_process``, ``body``, ``upsample``, ``tail``) runs its LR-resolution body on the whole
LR image and only its short upsampling tail in strips with an exact halo; any other
upsampler runs whole. A model's ``global_alignment(upsampled, ref)`` (CrossNet's: the
pre-aligner's phase-correlation shift) is computed once on the whole image and handed to
every window's ``fuse(..., prior=)``; nothing on the model is patched, so one model can serve
several threads. Only ``fuse`` is tiled, so the overlap costs about
``(window / (window - overlap))²`` of the fusion stage alone: at 3840×2160, with the
defaults (768-pixel windows, 64-pixel overlap), about 1.1× the whole-image FLOPs in total
(``python benchmarks/tiled.py`` measures it).

Windows are sized to multiples of the model's ``size_multiple`` (the coarsest padding of its
components, e.g. FlowNetS's 64) where the image allows, so no window is padded.

Mistakes in the inputs or the windowing raise :class:`~refsr_blocks.core.errors.InputError` (a
``ValueError``), which the command line reports as one line; ``stride == window`` (no overlap)
is allowed but warns that the window borders will show as seams.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite")
    >>> lr, ref = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 160, 192)
    >>> super_resolve(model, lr, ref, window=128, stride=96, progress=False).shape
    torch.Size([1, 3, 160, 192])
    >>> plan_tiles(2160, 768, 704, multiple=64)
    [(0, 768), (696, 768), (1392, 768)]
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.errors import InputError
from ..ops.inputs import prepare_pair
from ..ops.references import fit_reference

__all__ = [
    "BLEND_MODES",
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOW",
    "SeamWarning",
    "blend_bands",
    "blend_window",
    "count_tiles",
    "default_stride",
    "default_windowing",
    "evaluating",
    "is_staged",
    "matches_whole_references",
    "model_size_multiple",
    "plan_tiles",
    "plan_windows",
    "super_resolve",
    "tile_starts",
    "upsample_whole",
]

BLEND_MODES = ("linear", "mean")
#: Default largest window side and overlap between windows, in output pixels. A 768×768 float32
#: CrossNet window needs about 1.3 GB of activations on the CPU; 64 pixels of cross-fade leave
#: no visible seam (``python benchmarks/tiled.py`` prints the PSNR difference to whole-image inference).
DEFAULT_WINDOW, DEFAULT_OVERLAP = 768, 64
#: CrossNet's original protocol (512 windows every 256 pixels), for comparisons.
CROSSNET_WINDOW, CROSSNET_STRIDE = 512, 256
#: LR rows of halo around each strip of an MDSR-like upsampler's tail (its 3×3 convs reach
#: 1 + 1/2 + 1/4 + ... < 2 LR pixels), so the strips give the whole-image result exactly.
TAIL_HALO = 2
RefSRCallable = Callable[[Tensor, Tensor], Tensor]


class SeamWarning(UserWarning):
    """Tiled inference without overlap: window borders will show as seams."""


def tile_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of ``window`` pixels every ``stride`` pixels covering ``size``.

    The last window is moved back to end at ``size`` (so no window leaves the image); when
    ``window >= size`` a single window at 0 covers everything. (:func:`plan_tiles` spaces the
    windows evenly instead; this is the classic layout.)

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


def plan_tiles(size: int, window: int, stride: int, *, multiple: int = 1, align: int = 1) -> list[tuple[int, int]]:
    """Evenly spaced windows covering ``size`` pixels: ``(start, length)`` pairs.

    The fewest windows of at most ``window`` pixels that overlap by at least ``window -
    stride``; all have the same length, rounded up to a multiple of ``multiple`` when that
    still fits in ``window`` (no padding inside the model), and starts are multiples of
    ``align`` (the upscale factor: windows cover whole LR pixels). One window of ``size``
    when ``size <= window``.

    Example:
        >>> plan_tiles(3840, 768, 704, multiple=64, align=4)
        [(0, 704), (628, 704), (1256, 704), (1880, 704), (2508, 704), (3136, 704)]
        >>> plan_tiles(300, 512, 448)
        [(0, 300)]
    """
    if size <= window:
        return [(0, size)]
    overlap = window - stride
    count = max(2, math.ceil((size - overlap) / stride)) if stride > 0 else 2
    length = math.ceil((size + (count - 1) * overlap) / count)
    unit = math.lcm(multiple, align)
    rounded = -(-length // unit) * unit
    length = rounded if rounded <= window else -(-length // align) * align
    length = min(length, size)
    span = size - length
    starts = [round(i * span / (count - 1) / align) * align for i in range(count)]
    starts[-1] = span  # the last window ends at the border (span is a multiple of align)
    return [(start, length) for start in starts]


def default_windowing(scale: int) -> tuple[int, int]:
    """The default window and stride (768 and 704 output pixels: a 64-pixel overlap) rounded down
    to multiples of ``scale``.

    Example:
        >>> default_windowing(4), default_windowing(3)
        ((768, 704), (768, 702))
    """
    window = max(scale, DEFAULT_WINDOW // scale * scale)
    return window, default_stride(window, scale)


def default_stride(window: int, scale: int) -> int:
    """The stride for ``window``: an overlap of 64 pixels (at most a quarter of the window),
    rounded up to a multiple of ``scale``.

    Example:
        >>> default_stride(768, 4), default_stride(128, 4), default_stride(8, 2)
        (704, 96, 6)
    """
    overlap = -(-min(DEFAULT_OVERLAP, window // 4) // scale) * scale
    return max(scale, window - overlap)


def blend_window(length: int, overlap: int, mode: str = "linear", *, before: int | None = None) -> Tensor:
    """1-D weights of a window of ``length`` pixels (float32, shape ``length``).

    ``"linear"``: rising linearly over the first ``before`` pixels (default ``overlap``), from
    ``0.5 / before`` to 1, flat in the middle, and falling over the last ``overlap`` pixels:
    where two windows overlap by ``n`` pixels and each ramps over those ``n``, their weights
    sum to 1 (a cross-fade); no weight is zero. A ramp of 0 pixels (an image border) is flat.
    ``"mean"``: all ones (overlapping predictions are averaged).
    """
    if mode not in BLEND_MODES:
        raise InputError(f"blend must be one of {list(BLEND_MODES)}, got {mode!r}")
    before = overlap if before is None else before
    weights = torch.ones(length)
    if mode == "mean":
        return weights
    pos = torch.arange(length, dtype=torch.float32) + 0.5
    if before > 0:
        weights = torch.minimum(weights, pos / before)
    if overlap > 0:
        weights = torch.minimum(weights, (length - pos) / overlap)
    return weights


def _tile_weights(tiles: list[tuple[int, int]], index: int, mode: str) -> Tensor:
    """The blend weights of window ``index`` of ``tiles``: ramps over its overlaps with its neighbours."""
    start, length = tiles[index]
    before = tiles[index - 1][0] + tiles[index - 1][1] - start if index > 0 else 0
    after = start + length - tiles[index + 1][0] if index + 1 < len(tiles) else 0
    return blend_window(length, max(after, 0), mode, before=max(before, 0))


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
    """The upscale factor: the model's own, else the ratio of an on-grid reference to ``lr``."""
    if lr.ndim != 4 or ref.ndim != 4 or lr.shape[0] != ref.shape[0]:
        raise InputError(
            f"lr and ref must be B×C×h×w and B×C×H×W with one batch size, got {tuple(lr.shape)} and {tuple(ref.shape)}"
        )
    model_scale = getattr(model, "upscale", None)
    if isinstance(model_scale, int):
        return model_scale
    (h, w), (H, W) = lr.shape[-2:], ref.shape[-2:]
    if H % h or W % w or H // h != W // w:
        raise InputError(
            f"ref must be an integer multiple s of lr in both dimensions (same batch): lr {tuple(lr.shape)}, ref {tuple(ref.shape)}"
        )
    return H // h


def matches_whole_references(model: object) -> bool:
    """Whether ``model`` takes references of any size (its aligner is not bound to the output grid)."""
    aligner = getattr(model, "aligner", None)
    return isinstance(aligner, nn.Module) and not getattr(aligner, "grid_bound", True)


def _onto_grid(model: object, lr: Tensor, ref: Tensor, scale: int) -> Tensor:
    """An off-grid reference brought to the output size as the model would (its ``ref_policy``)."""
    (h, w), (H, W) = lr.shape[-2:], ref.shape[-2:]
    policy = getattr(model, "ref_policy", None)
    if not isinstance(policy, str):
        raise InputError(
            f"the model upscales by {scale}: for a {h}×{w} LR image the reference must be "
            f"{h * scale}×{w * scale}, got {H}×{W}"
        )
    return fit_reference(ref, (h * scale, w * scale), policy)


def _is_mdsr_like(upsampler: nn.Module) -> bool:
    return all(hasattr(upsampler, a) for a in ("head", "pre_process", "body", "upsample", "tail", "mean", "scale"))


def upsample_whole(upsampler: nn.Module, lr: Tensor, *, strip_pixels: int = DEFAULT_WINDOW**2) -> Tensor:
    """``upsampler(lr)`` for a whole image, in bounded memory where the upsampler allows it.

    An MDSR-like upsampler (``head``, ``pre_process``, ``body``, ``upsample``, ``tail``, as
    :class:`~refsr_blocks.components.upsamplers.mdsr.MDSR`) runs its LR-resolution stages on
    the whole image (64 channels at LR size) and its upsampling tail, whose maps are ``s²``
    times larger, in horizontal strips of about ``strip_pixels`` output pixels with a
    :data:`TAIL_HALO`-row halo: the same values as one call, without the full-size maps. Any
    other upsampler is called once.

    Args:
        upsampler: B×C×h×w → B×C×(s·h)×(s·w).
        lr: B×C×h×w.
        strip_pixels: output pixels per strip (bounds the tail's memory).

    Returns:
        B×C×(s·h)×(s·w), as ``upsampler(lr)``.
    """
    if not _is_mdsr_like(upsampler):
        return upsampler(lr)
    key = str(upsampler.scale)
    x = upsampler.head(lr - upsampler.mean)
    x = upsampler.pre_process[key](x)
    x = x + upsampler.body(x)
    h, w = x.shape[-2:]
    s = upsampler.scale
    rows = max(1, strip_pixels // (s * s * w))
    if rows >= h:
        return upsampler.tail(upsampler.upsample[key](x)) + upsampler.mean
    out: Tensor | None = None
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        lo, hi = max(0, y0 - TAIL_HALO), min(h, y1 + TAIL_HALO)
        strip = upsampler.tail(upsampler.upsample[key](x[..., lo:hi, :])) + upsampler.mean
        if out is None:
            shape = (strip.shape[0], strip.shape[1], h * s, w * s)
            out = torch.empty(shape, dtype=strip.dtype, device=strip.device, memory_format=_format_of(strip))
        out[..., y0 * s : y1 * s, :] = strip[..., (y0 - lo) * s : (y1 - lo) * s, :]
    assert out is not None
    return out


def _format_of(x: Tensor) -> torch.memory_format:
    """channels_last for NHWC tensors (not also NCHW-contiguous), else contiguous."""
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def model_size_multiple(model: object) -> int:
    """The least common multiple of the ``size_multiple`` that ``model``'s components declare
    (:class:`~refsr_blocks.core.support.Support`): sizes that need no padding inside it; 1 if none."""
    from ..core.support import size_multiple_of

    return size_multiple_of(model) if isinstance(model, nn.Module) else 1


def plan_windows(
    model: object, scale: int, size: tuple[int, int], window: int | None, stride: int | None, blend: str
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The checked window rows and columns (:func:`plan_tiles`) for an output of ``size`` (H, W).

    ``window``/``stride`` default to :func:`default_windowing`; ``stride == window`` with more
    than one window warns (:class:`SeamWarning`).

    Raises:
        InputError: window/stride not positive multiples of ``scale``, stride > window, an
            unknown ``blend``.
    """
    window = default_windowing(scale)[0] if window is None else window
    stride = default_stride(window, scale) if stride is None else stride
    _check_windowing(window, stride, scale)
    if blend not in BLEND_MODES:
        raise InputError(f"blend must be one of {list(BLEND_MODES)}, got {blend!r}")
    multiple = model_size_multiple(model)
    ys = plan_tiles(size[0], window, stride, multiple=multiple, align=scale)
    xs = plan_tiles(size[1], window, stride, multiple=multiple, align=scale)
    if stride == window and len(ys) * len(xs) > 1:
        warnings.warn(
            f"tiled inference with stride == window ({window}): the windows do not overlap and their "
            "borders will show as seams; use a stride of about window - 64",
            SeamWarning,
            stacklevel=3,
        )
    return ys, xs


@contextlib.contextmanager
def evaluating(model: object) -> Iterator[None]:
    """``model`` in eval mode (an ``nn.Module``; anything else is left alone), restored afterwards."""
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()  # type: ignore[union-attr]


def super_resolve(
    model: nn.Module | RefSRCallable,
    lr: Tensor,
    ref: Tensor,
    window: int | None = None,
    stride: int | None = None,
    blend: Literal["linear", "mean"] = "linear",
    progress: bool = True,
) -> Tensor:
    """Super-resolve ``lr`` with ``ref`` window by window (see the module docstring).

    Args:
        model: a RefSR model ``model(lr, ref) -> sr`` (any callable with that contract; an
            ``nn.Module`` is put in eval mode for the call and restored afterwards). With
            ``upsampler`` and ``fuse`` attributes (CrossNet) the upsampler runs once
            (:func:`upsample_whole`) and only ``fuse`` is tiled.
        lr: B×C×h×w in [0, 1].
        ref: B×C×H×W, H = s·h, W = s·w.
        window: largest window side in output (HR) pixels, a multiple of s; images no larger
            than the window are processed whole. Default: 768 rounded down to a multiple of s.
        stride: the largest step between windows in output pixels, a multiple of s, at most
            ``window``; ``window - stride`` is the least overlap. Default: ``window - 64``
            rounded to a multiple of s. ``stride == window`` warns (:class:`SeamWarning`).
        blend: ``"linear"`` (weights cross-fade over each overlap) or ``"mean"``.
        progress: show a tqdm bar over the windows.

    Returns:
        B×C×H×W on ``lr``'s device, float32 (or ``lr``'s dtype if it is float64).

    Raises:
        InputError: window/stride not multiples of s, stride > window, mismatched inputs
            (a ``ValueError``).
    """
    scale = _scale_of(lr, ref, model)
    H, W = lr.shape[-2] * scale, lr.shape[-1] * scale
    ys, xs = plan_windows(model, scale, (H, W), window, stride, blend)
    dtype = torch.float64 if lr.dtype == torch.float64 else torch.float32
    # A reference off the output grid: whole, for a model that matches anywhere in it (every
    # window then sees all of it); else brought onto the grid by the model's reference policy.
    whole_ref = tuple(ref.shape[-2:]) != (H, W) and matches_whole_references(model)
    if tuple(ref.shape[-2:]) != (H, W) and not whole_ref:
        ref = _onto_grid(model, lr, ref, scale)
    if isinstance(model, nn.Module):  # user data enters here: values checked, cast to the weights' dtype
        lr, ref = prepare_pair(model, lr, ref, scale, lr.shape[1], any_reference_size=whole_ref)
    with evaluating(model), torch.inference_mode():
        if len(ys) * len(xs) == 1:
            out = model(lr, ref).to(lr.device, dtype)
        else:
            out = torch.empty(lr.shape[0], lr.shape[1], H, W, dtype=dtype, device=lr.device)
            band_sr = _in_memory_bands(model, lr, ref, scale, whole_ref=whole_ref)
            for top, rows in blend_bands(
                ys, xs, band_sr, blend=blend, dtype=dtype, device=lr.device, progress=progress
            ):
                out[..., top : top + rows.shape[-2], :] = rows
    return out.clone()  # a normal tensor (not an inference tensor) that callers may modify


#: ``band_sr(y, hh)`` prepares the output rows ``[y, y + hh)`` and returns ``window_sr(x, ww)``,
#: the B×C×hh×ww result of the window at columns ``[x, x + ww)`` of that band.
BandSR = Callable[[int, int], Callable[[int, int], Tensor]]


def is_staged(model: object) -> bool:
    """Whether ``model`` has an ``upsampler`` module and a ``fuse(upsampled, ref)`` stage (CrossNet)."""
    return isinstance(getattr(model, "upsampler", None), nn.Module) and callable(getattr(model, "fuse", None))


def _in_memory_bands(
    model: nn.Module | RefSRCallable, lr: Tensor, ref: Tensor, scale: int, *, whole_ref: bool
) -> BandSR:
    """Windows cut from whole in-memory tensors; a staged model's upsampler runs once, whole.

    ``whole_ref``: every window gets the whole reference (a model matching anywhere in it),
    not the reference's window at the same place.
    """
    fmt = _format_of(lr)

    def cut(image: Tensor, y: int, x: int, hh: int, ww: int) -> Tensor:
        return image[..., y : y + hh, x : x + ww].contiguous(memory_format=fmt)

    def ref_window(y: int, x: int, hh: int, ww: int) -> Tensor:
        return ref if whole_ref else cut(ref, y, x, hh, ww)

    if not is_staged(model):

        def band(y: int, hh: int) -> Callable[[int, int], Tensor]:
            def window_sr(x: int, ww: int) -> Tensor:
                lr_tile = cut(lr, y // scale, x // scale, hh // scale, ww // scale)
                return model(lr_tile, ref_window(y, x, hh, ww))

            return window_sr

        return band
    upsampled = upsample_whole(model.upsampler, lr)  # type: ignore[union-attr]
    # One global alignment for every window (no seams where neighbouring windows' shifts differ).
    global_alignment = getattr(model, "global_alignment", None)
    prior = global_alignment(upsampled, ref) if callable(global_alignment) and not whole_ref else None
    extra = {} if prior is None else {"prior": prior}

    def staged_band(y: int, hh: int) -> Callable[[int, int], Tensor]:
        def window_sr(x: int, ww: int) -> Tensor:
            return model.fuse(cut(upsampled, y, x, hh, ww), ref_window(y, x, hh, ww), **extra)  # type: ignore[union-attr]

        return window_sr

    return staged_band


def blend_bands(
    ys: list[tuple[int, int]],
    xs: list[tuple[int, int]],
    band_sr: BandSR,
    *,
    blend: str = "linear",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Iterator[tuple[int, Tensor]]:
    """Run the windows ``ys × xs`` band by band, yielding finished output rows in order.

    Each band (one row of windows) is blended into an accumulator that holds only the rows
    still open; once the next band starts below a row, no later window touches it, so the
    finished rows are normalised and yielded as ``(top, rows)`` (B×C×n×W, ``top`` their first
    output row; valid until the next item is requested). Memory is one band wide, whatever
    the image height.
    """
    height, width = ys[-1][0] + ys[-1][1], xs[-1][0] + xs[-1][1]
    wy = [_tile_weights(ys, i, blend).to(device, dtype) for i in range(len(ys))]
    wx = [_tile_weights(xs, j, blend).to(device, dtype) for j in range(len(xs))]
    # The windows form a grid and their weights are products wy[i] ⊗ wx[j], so the total weight at
    # (y, x) is (Σ_i wy[i])(y) · (Σ_j wx[j])(x): two 1-D sums instead of an H×W map.
    total_y = torch.zeros(height, dtype=dtype, device=device)
    total_x = torch.zeros(width, dtype=dtype, device=device)
    for (y, hh), weights in zip(ys, wy):
        total_y[y : y + hh] += weights
    for (x, ww), weights in zip(xs, wx):
        total_x[x : x + ww] += weights
    acc: Tensor | None = None  # output rows [top, top + acc rows) still receiving windows
    top = 0
    bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress, leave=False)
    for i, (y, hh) in enumerate(ys):
        window_sr = band_sr(y, hh)
        for j, (x, ww) in enumerate(xs):
            sr = window_sr(x, ww).to(device, dtype)
            if acc is None:
                acc = torch.zeros(sr.shape[0], sr.shape[1], hh, width, dtype=dtype, device=device)
            if y + hh > top + acc.shape[-2]:  # this band reaches below the open rows: extend them
                more = acc.new_zeros(*acc.shape[:2], y + hh - top - acc.shape[-2], width)
                acc = torch.cat([acc, more], dim=-2)
            acc[..., y - top : y - top + hh, x : x + ww] += sr * (wy[i][:, None] * wx[j][None, :])
            del sr
            bar.update(1)
        assert acc is not None
        done = ys[i + 1][0] if i + 1 < len(ys) else height
        finished = acc[..., : done - top, :]
        yield top, finished.div_(total_y[top:done, None]).div_(total_x[None, :])
        acc = acc[..., done - top :, :].clone()  # drop the emitted rows' memory
        top = done
    bar.close()


def count_tiles(
    height: int, width: int, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_WINDOW - DEFAULT_OVERLAP
) -> int:
    """How many windows :func:`super_resolve` runs for an H×W output (``size_multiple`` 1, scale 1)."""
    return len(plan_tiles(height, window, stride)) * len(plan_tiles(width, window, stride))
