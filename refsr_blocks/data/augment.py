"""Augmentations for RefSR samples, applied consistently to every tensor of a sample.

A *sample* is a dict such as ``{"lr": 3×h×w, "ref": 3×H×W, "hr": 3×H×W, "flow": 2×H×W,
"valid": 1×H×W, "view": 3, "name": "x"}`` (a batch of them, B×C×H×W, works as well and gets
one transform for the whole batch). Every tensor with at least three dimensions is treated as
an image whose last two axes are (H, W); the entry ``"lr"`` lives on the low-resolution grid,
every other image entry on the HR grid. Non-tensor entries pass through untouched.

The entry ``"flow"`` (channel 0 = x, channel 1 = y, in pixels) aligns the reference to the
target: ``hr[p] ≈ ref[p + flow[p]]``. Geometric transforms keep that true: flips negate the
flipped component, 90° rotations rotate the vectors, shifting the reference adds the shift.

Each function returns a new dict; random ones take ``generator`` (``None``: torch's global RNG).
The classes wrap them as callables ``t(sample, generator=None)`` for dataset ``transform=``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.warp import inside_frame
from ._checks import check_crop, check_fits, check_scale
from ._random import randint
from .errors import DataError

__all__ = [
    "Compose",
    "RandomCrop",
    "RandomDihedral",
    "RandomParallaxShift",
    "Sample",
    "center_crop",
    "dihedral",
    "hflip",
    "random_crop",
    "random_dihedral",
    "random_parallax_shift",
    "rot90",
    "shift_reference",
    "vflip",
]

Sample = dict[str, Any]

LR_KEY = "lr"
FLOW_KEY = "flow"
REF_KEY = "ref"
VALID_KEY = "valid"


def _is_image(value: Any) -> bool:
    return isinstance(value, Tensor) and value.ndim >= 3


def _check_flow(flow: Tensor) -> None:
    if flow.ndim not in (3, 4) or flow.shape[-3] != 2:
        raise DataError(f"sample['flow'] must be 2×H×W or B×2×H×W, got shape {tuple(flow.shape)}")


def _map_images(sample: Mapping[str, Any], fn: Callable[[Tensor], Tensor]) -> Sample:
    return {k: fn(v) if _is_image(v) else v for k, v in sample.items()}


def hflip(sample: Mapping[str, Any]) -> Sample:
    """Mirror every image along the width axis (``torch.flip(dims=(-1,))``).

    Channel order is untouched. ``flow`` is mirrored and its x component negated.
    """
    out = _map_images(sample, lambda t: torch.flip(t, dims=(-1,)))
    if FLOW_KEY in out:
        _check_flow(out[FLOW_KEY])
        out[FLOW_KEY] = out[FLOW_KEY] * torch.tensor([-1.0, 1.0]).view(2, 1, 1).to(out[FLOW_KEY])
    return out


def vflip(sample: Mapping[str, Any]) -> Sample:
    """Mirror every image along the height axis (``torch.flip(dims=(-2,))``).

    ``flow`` is mirrored and its y component negated.
    """
    out = _map_images(sample, lambda t: torch.flip(t, dims=(-2,)))
    if FLOW_KEY in out:
        _check_flow(out[FLOW_KEY])
        out[FLOW_KEY] = out[FLOW_KEY] * torch.tensor([1.0, -1.0]).view(2, 1, 1).to(out[FLOW_KEY])
    return out


def rot90(sample: Mapping[str, Any], k: int = 1) -> Sample:
    """Rotate every image by ``k`` quarter turns (``torch.rot90(k, dims=(-2, -1))``).

    One quarter turn sends input pixel (x, y) to (y, W - 1 - x), so a displacement
    (dx, dy) becomes (dy, -dx): ``flow`` is rotated spatially and its vectors with it.
    H and W swap for odd ``k``.
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise DataError(f"k must be an int (number of quarter turns), got {k!r}")
    k %= 4
    out = _map_images(sample, lambda t: torch.rot90(t, k, dims=(-2, -1)))
    if FLOW_KEY in out:
        flow = out[FLOW_KEY]
        _check_flow(flow)
        for _ in range(k):
            fx, fy = flow.unbind(dim=-3)
            flow = torch.stack((fy, -fx), dim=-3)
        out[FLOW_KEY] = flow
    return out


def dihedral(sample: Mapping[str, Any], index: int) -> Sample:
    """Apply element ``index`` (0..7) of the dihedral group: ``index % 4`` quarter turns,
    followed by a horizontal flip when ``index >= 4``. Index 0 is the identity."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 8:
        raise DataError(f"index must be an int in 0..7, got {index!r}")
    out = rot90(sample, index % 4)
    return hflip(out) if index >= 4 else out


def random_dihedral(
    sample: Mapping[str, Any],
    generator: torch.Generator | None = None,
    *,
    horizontal: bool = True,
    vertical: bool = True,
    rotate: bool = True,
) -> Sample:
    """Random horizontal flip, vertical flip and 90° rotation, each with probability 1/2.

    With all three enabled every one of the 8 flips/rotations of the square is equally likely.
    Quarter turns are only applied to square images: turning a non-square sample would change
    its shape, and samples of different shapes cannot be batched.
    """
    out = dict(sample)
    draws = torch.randint(0, 2, (3,), generator=generator).tolist()
    if horizontal and draws[0]:
        out = hflip(out)
    if vertical and draws[1]:
        out = vflip(out)
    if rotate and draws[2] and _is_square(out):
        out = rot90(out, 1)
    return out


def _is_square(sample: Mapping[str, Any]) -> bool:
    return all(v.shape[-1] == v.shape[-2] for v in sample.values() if _is_image(v))


_PADDING = {"replicate": "replicate", "reflect": "reflect"}


def shift_reference(sample: Mapping[str, Any], dx: int, dy: int, *, padding: str = "replicate") -> Sample:
    """Translate the reference by an integer (dx, dy): ``ref'[y, x] = ref[y - dy, x - dx]``.

    The uncovered border is filled by ``padding`` ("replicate" or "reflect"). ``flow`` becomes
    ``flow + (dx, dy)`` and ``valid`` (if present) loses the pixels whose new sample position
    leaves the frame.
    """
    if padding not in _PADDING:
        raise DataError(f"padding must be one of {sorted(_PADDING)}, got {padding!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (dx, dy)):
        raise DataError(f"dx and dy must be ints (pixels), got dx={dx!r}, dy={dy!r}")
    if REF_KEY not in sample or not _is_image(sample[REF_KEY]):
        raise DataError("sample has no 'ref' image to shift")
    out = dict(sample)
    ref = sample[REF_KEY]
    h, w = ref.shape[-2:]
    if padding == "reflect" and (abs(dy) >= h or abs(dx) >= w):
        raise DataError(
            f"reflect padding needs |shift| < reference size; got shift ({dx}, {dy}) for a "
            f"{h}×{w} reference (use padding='replicate')"
        )
    if dx or dy:
        mx, my = abs(dx), abs(dy)
        batch = ref if ref.ndim == 4 else ref.unsqueeze(0)
        padded = F.pad(batch, (mx, mx, my, my), mode=_PADDING[padding])
        shifted = padded[..., my - dy : my - dy + h, mx - dx : mx - dx + w]
        out[REF_KEY] = shifted if ref.ndim == 4 else shifted.squeeze(0)
    if FLOW_KEY in out:
        flow = out[FLOW_KEY]
        _check_flow(flow)
        out[FLOW_KEY] = flow + torch.tensor([float(dx), float(dy)]).view(2, 1, 1).to(flow)
        if VALID_KEY in out:
            out[VALID_KEY] = out[VALID_KEY] * inside_frame(out[FLOW_KEY]).to(out[VALID_KEY].dtype)
    return out


def random_parallax_shift(
    sample: Mapping[str, Any],
    max_shift: int = 15,
    generator: torch.Generator | None = None,
    *,
    padding: str = "replicate",
) -> Sample:
    """The CrossNet parallax augmentation: shift the reference by an integer (dx, dy), each
    uniform in [-max_shift, max_shift], with :func:`shift_reference`."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise DataError(f"max_shift must be an int >= 0 (pixels), got {max_shift!r}")
    dx = randint(-max_shift, max_shift + 1, generator)
    dy = randint(-max_shift, max_shift + 1, generator)
    return shift_reference(sample, dx, dy, padding=padding)


def _hr_size(sample: Mapping[str, Any], scale: int) -> tuple[int, int]:
    """The HR (H, W) of a sample, after checking every image agrees with it."""
    hr_sizes = {tuple(v.shape[-2:]) for k, v in sample.items() if _is_image(v) and k != LR_KEY}
    if not hr_sizes and _is_image(sample.get(LR_KEY)):
        h, w = sample[LR_KEY].shape[-2:]
        hr_sizes = {(h * scale, w * scale)}
    if len(hr_sizes) != 1:
        shapes = {k: tuple(v.shape) for k, v in sample.items() if _is_image(v)}
        raise DataError(f"the HR-grid images of the sample must share H×W, got {shapes}")
    (h, w) = hr_sizes.pop()
    if _is_image(sample.get(LR_KEY)):
        lh, lw = sample[LR_KEY].shape[-2:]
        if (lh * scale, lw * scale) != (h, w):
            raise DataError(
                f"sample['lr'] is {lh}×{lw} but the HR images are {h}×{w}: with scale {scale} "
                f"lr must be {h // scale}×{w // scale}"
            )
    return h, w


def _crop_at(sample: Mapping[str, Any], top: int, left: int, size: tuple[int, int], scale: int) -> Sample:
    ch, cw = size
    out: Sample = {}
    for k, v in sample.items():
        if not _is_image(v):
            out[k] = v
        elif k == LR_KEY:
            lt, ll = top // scale, left // scale
            out[k] = v[..., lt : lt + ch // scale, ll : ll + cw // scale]
        else:
            out[k] = v[..., top : top + ch, left : left + cw]
    if FLOW_KEY in out and VALID_KEY in out:
        out[VALID_KEY] = out[VALID_KEY] * inside_frame(out[FLOW_KEY]).to(out[VALID_KEY].dtype)
    return out


def random_crop(
    sample: Mapping[str, Any],
    size: int | tuple[int, int],
    scale: int,
    generator: torch.Generator | None = None,
) -> Sample:
    """Crop the same window out of every image of the sample.

    The HR window of ``size`` (H, W) starts on the scale grid (top and left are multiples of
    ``scale``), so the LR crop ``lr[top/s : (top+H)/s, left/s : (left+W)/s]`` covers exactly
    the HR crop. ``flow`` values are unchanged by a crop that moves target and reference
    together; ``valid`` loses pixels whose sample position leaves the cropped reference.

    Args:
        sample: dict with HR images (C×H×W) and optionally ``"lr"`` (C×H/s×W/s).
        size: HR crop (H, W) or an int for a square, multiples of ``scale``.
        scale: the upscale factor (2, 3, 4 or 8).
        generator: random source, ``None`` for torch's global RNG.
    """
    scale = check_scale(scale)
    crop = check_crop(size, scale, "size")
    assert crop is not None
    h, w = _hr_size(sample, scale)
    check_fits((h, w), crop, "the sample")
    top = scale * randint(0, (h - crop[0]) // scale + 1, generator)
    left = scale * randint(0, (w - crop[1]) // scale + 1, generator)
    return _crop_at(sample, top, left, crop, scale)


def center_crop(sample: Mapping[str, Any], size: int | tuple[int, int], scale: int) -> Sample:
    """Like :func:`random_crop`, with the window centred (rounded down to the scale grid)."""
    scale = check_scale(scale)
    crop = check_crop(size, scale, "size")
    assert crop is not None
    h, w = _hr_size(sample, scale)
    check_fits((h, w), crop, "the sample")
    top = (h - crop[0]) // 2 // scale * scale
    left = (w - crop[1]) // 2 // scale * scale
    return _crop_at(sample, top, left, crop, scale)


class Compose:
    """Apply transforms in order, passing the same ``generator`` to each."""

    def __init__(self, transforms: Sequence[Callable[..., Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Mapping[str, Any], generator: torch.Generator | None = None) -> Sample:
        out = dict(sample)
        for t in self.transforms:
            out = t(out, generator=generator)
        return out

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomDihedral:
    """Callable form of :func:`random_dihedral`."""

    def __init__(self, *, horizontal: bool = True, vertical: bool = True, rotate: bool = True) -> None:
        self.horizontal, self.vertical, self.rotate = horizontal, vertical, rotate

    def __call__(self, sample: Mapping[str, Any], generator: torch.Generator | None = None) -> Sample:
        return random_dihedral(
            sample, generator, horizontal=self.horizontal, vertical=self.vertical, rotate=self.rotate
        )

    def __repr__(self) -> str:
        return f"RandomDihedral(horizontal={self.horizontal}, vertical={self.vertical}, rotate={self.rotate})"


class RandomParallaxShift:
    """Callable form of :func:`random_parallax_shift` (default ±15 px, as in CrossNet)."""

    def __init__(self, max_shift: int = 15, *, padding: str = "replicate") -> None:
        if padding not in _PADDING:
            raise DataError(f"padding must be one of {sorted(_PADDING)}, got {padding!r}")
        self.max_shift, self.padding = max_shift, padding

    def __call__(self, sample: Mapping[str, Any], generator: torch.Generator | None = None) -> Sample:
        return random_parallax_shift(sample, self.max_shift, generator, padding=self.padding)

    def __repr__(self) -> str:
        return f"RandomParallaxShift(max_shift={self.max_shift}, padding={self.padding!r})"


class RandomCrop:
    """Callable form of :func:`random_crop`."""

    def __init__(self, size: int | tuple[int, int], scale: int) -> None:
        self.scale = check_scale(scale)
        self.size = check_crop(size, self.scale, "size")

    def __call__(self, sample: Mapping[str, Any], generator: torch.Generator | None = None) -> Sample:
        assert self.size is not None
        return random_crop(sample, self.size, self.scale, generator)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, scale={self.scale})"
