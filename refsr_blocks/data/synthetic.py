"""Synthetic parallax pairs: a reference view made from any single image, with known flow.

Given a target image, a smooth depth-layered disparity field ``d`` (mostly horizontal, up to
±``max_disparity`` px) defines the reference ``ref[q] = target[q - d(q)]`` (bicubic
:func:`~refsr_blocks.ops.warp.backward_warp`, the image mirrored beyond its border), then
small photometric differences are applied to the reference. The returned
flow satisfies the library's warp convention where the pixel is visible in the reference::

    target[p] ≈ ref[p + flow[p]]        (flow channel 0 = x, channel 1 = y, pixels)

so backward-warping ``ref`` with ``flow`` reproduces the target. Training thus needs no
download: any folder of photos (or :func:`~refsr_blocks.data.sources.builtin_images`) works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.warp import backward_warp, inside_frame
from ._checks import check_fits, check_image, float_image
from ._dataset import CropMode, RefSRDataset
from ._random import randint, uniform_float
from .augment import Sample
from .degradation import crop_to_multiple, downsample
from .disparity import invert_displacement, random_layered_disparity
from .errors import DataError
from .io import list_images, load_image, read_image_size
from .photometric import DEFAULT_PHOTOMETRIC, PhotometricJitter, photometric_jitter

__all__ = ["ParallaxPair", "SyntheticParallaxDataset", "make_parallax_pair", "synthesize_parallax"]

_DEFAULT_JITTER = PhotometricJitter()


@dataclass(frozen=True)
class ParallaxPair:
    """A synthetic reference view and its geometry.

    Attributes:
        ref: 3×H×W reference view, float32 in [0, 1].
        flow: 2×H×W flow on the target grid, ``target[p] ≈ ref[p + flow[p]]``.
        valid: 1×H×W float32 mask, 1 where that holds (the flow was solved and ``p + flow[p]``
            lies inside the reference), 0 elsewhere.
        disparity: 2×H×W field ``d`` on the reference grid, ``ref[q] = target[q - d(q)]``
            before the photometric changes.
    """

    ref: Tensor
    flow: Tensor
    valid: Tensor
    disparity: Tensor


def _warp_mirrored(image: Tensor, flow: Tensor) -> Tensor:
    """``out[p] = image[p + flow[p]]`` (bicubic), reading a mirror image beyond the border.

    A second camera sees content where the first sees none; mirrored content resembles it
    more than the replicated edge pixels a plain warp reads there.

    Args:
        image: C×H×W.
        flow: 2×H×W in pixels.

    Returns:
        C×H×W, the dtype of ``image`` (not clamped: bicubic overshoots at sharp edges).
    """
    h, w = image.shape[-2:]
    reach = math.ceil(float(flow.abs().amax())) + 2 if flow.numel() else 2  # cubic taps reach 2 px
    ph, pw = min(reach, h - 1), min(reach, w - 1)  # one reflection (F.pad's limit); border beyond
    padded = F.pad(image[None], (pw, pw, ph, ph), mode="reflect")
    padded_flow = F.pad(flow[None], (pw, pw, ph, ph))  # values there are cropped away
    return backward_warp(padded, padded_flow, mode="bicubic")[0, :, ph : ph + h, pw : pw + w]


def synthesize_parallax(
    hr: Tensor,
    max_disparity: float = 15.0,
    generator: torch.Generator | None = None,
    *,
    photometric: PhotometricJitter | None = _DEFAULT_JITTER,
    layers: tuple[int, int] = (2, 4),
    boundary_sigma: float | None = None,
    vertical: float = 0.1,
    global_shift: float = 0.0,
) -> ParallaxPair:
    """Make a reference view of ``hr`` (3×H×W, float in [0, 1]) from a nearby viewpoint.

    See :func:`~refsr_blocks.data.disparity.random_layered_disparity` for ``layers``,
    ``boundary_sigma`` (small values give sharp depth edges, with occlusions where they fold)
    and ``vertical``; ``photometric=None`` disables the photometric changes. ``global_shift``
    adds one horizontal offset drawn from [-global_shift, global_shift] to the whole field, as
    a wider baseline does: the disparity then reaches ``global_shift + max_disparity``.
    """
    hr = float_image(check_image(hr, "hr", batched=False))
    if photometric is not None and not callable(photometric):
        raise DataError(f"photometric must be a PhotometricJitter or None, got {type(photometric).__name__}")
    h, w = hr.shape[-2:]
    disparity = random_layered_disparity(
        h, w, max_disparity, generator, layers=layers, boundary_sigma=boundary_sigma, vertical=vertical
    )
    if global_shift:
        disparity[0] += uniform_float(-float(global_shift), float(global_shift), generator)
    ref = _warp_mirrored(hr, -disparity).clamp(0.0, 1.0)
    flow, converged = invert_displacement(disparity)
    valid = (converged & inside_frame(flow)).float()
    if photometric is not None:
        ref = photometric(ref, generator=generator)
    return ParallaxPair(ref=ref, flow=flow, valid=valid, disparity=disparity)


def make_parallax_pair(
    hr: Tensor,
    max_disparity: float = 15.0,
    generator: torch.Generator | None = None,
    **options: Any,
) -> tuple[Tensor, Tensor]:
    """Return ``(ref, flow)`` for a target ``hr`` (3×H×W): ``hr[p] ≈ ref[p + flow[p]]``.

    ``ref`` is 3×H×W float32 in [0, 1], ``flow`` 2×H×W (x, y) in pixels. Keyword options are
    those of :func:`synthesize_parallax`, which also returns the validity mask.

    Example:
        >>> import torch
        >>> ref, flow = make_parallax_pair(torch.rand(3, 64, 80), 8.0, torch.Generator().manual_seed(0))
        >>> ref.shape, flow.shape, bool(flow.abs().max() <= 8.0 + 1e-3)
        (torch.Size([3, 64, 80]), torch.Size([2, 64, 80]), True)
    """
    pair = synthesize_parallax(hr, max_disparity, generator, **options)
    return pair.ref, pair.flow


class SyntheticParallaxDataset(RefSRDataset):
    """RefSR samples with a synthetic reference view and ground-truth flow, from any images.

    Item ``i`` uses image ``i % len(images)``. It is a dict of float32 tensors plus the name:

    - ``"lr"``: 3×h×w, the target downsampled by ``scale``;
    - ``"hr"``: 3×H×W, the target (a crop of the image, or the whole image cropped
      bottom/right to a multiple of ``scale``);
    - ``"ref"``: 3×H×W, the synthetic reference (:func:`synthesize_parallax`);
    - ``"flow"``: 2×H×W, ``hr[p] ≈ ref[p + flow[p]]``;
    - ``"valid"``: 1×H×W, 1 where that relation holds;
    - ``"name"``: ``"<image name>#<index>"``.

    With a ``crop``, the pair is synthesised on a window a margin larger than the crop (when
    the image allows), so the reference's borders show real image content from outside the
    crop, as a second camera would; the LR crop equals the crop of the whole image's LR.

    Args:
        images: a folder of images, a list of image files, or a list of 3×H×W float tensors
            in [0, 1].
        scale: upscale factor, 2, 3, 4 or 8.
        crop: HR crop (H, W) (multiples of ``scale``), an int for a square, or None.
        max_disparity: bound on the disparity in pixels.
        seed: None (torch's global RNG: new pairs each time) or an int (item ``i`` fixed per
            (seed, epoch, i), e.g. a validation set).
        length: number of items (default ``len(images)``).
        photometric: the reference's photometric changes: a :class:`PhotometricJitter`, a
            mapping of its amounts (default: its default amounts), or ``None`` for none.
        crop_mode: ``"random"`` (default) or ``"center"``.
        transform: optional callable applied last to the item dict.
        layers, boundary_sigma, vertical: passed to
            :func:`~refsr_blocks.data.disparity.random_layered_disparity`.
        global_shift: bound of a horizontal offset added to the whole disparity field
            (:func:`synthesize_parallax`); real stereo baselines need tens of pixels.
    """

    def __init__(
        self,
        images: str | Path | Sequence[Tensor | str | Path],
        scale: int = 4,
        *,
        crop: int | tuple[int, int] | None = None,
        max_disparity: float = 15.0,
        seed: int | None = None,
        length: int | None = None,
        photometric: PhotometricJitter | Mapping[str, float] | None = DEFAULT_PHOTOMETRIC,
        crop_mode: CropMode = "random",
        transform: Callable[..., Sample] | None = None,
        layers: tuple[int, int] = (2, 4),
        boundary_sigma: float | None = None,
        vertical: float = 0.1,
        global_shift: float = 0.0,
    ) -> None:
        super().__init__(scale, crop, seed, transform, crop_mode)
        if isinstance(images, (str, Path)):
            folder = Path(images)
            images = list_images(folder)
            if not images:
                raise DataError(f"no images in {str(folder)!r}")
        if not isinstance(images, Sequence) or len(images) == 0:
            raise DataError("images must be a folder, or a non-empty list of image files or 3×H×W tensors")
        self.images: list[Tensor | Path] = []
        self.names: list[str] = []
        for k, item in enumerate(images):
            if isinstance(item, Tensor):
                img = float_image(check_image(item, f"images[{k}]", batched=False))
                if img.shape[0] != 3:
                    raise DataError(f"images[{k}] must have 3 channels (RGB), got shape {tuple(img.shape)}")
                size = (img.shape[-2], img.shape[-1])
                self.images.append(img)
                self.names.append(f"image{k}")
            elif isinstance(item, (str, Path)):
                path = Path(item)
                if not path.is_file():
                    raise DataError(f"images[{k}]: file {str(path)!r} does not exist")
                size = read_image_size(path)
                self.images.append(path)
                self.names.append(path.stem)
            else:
                raise DataError(f"images[{k}] must be a tensor or a path, got {type(item).__name__}")
            usable = (size[0] - size[0] % self.scale, size[1] - size[1] % self.scale)
            if min(usable) < self.scale:
                raise DataError(f"{self.names[-1]} is {size[0]}×{size[1]}, smaller than scale {self.scale}")
            if self.crop is not None:
                check_fits(usable, self.crop, f"{self.names[-1]} (cropped to ×{self.scale})")
        if length is None:
            length = len(self.images)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise DataError(f"length must be None or an int >= 1, got {length!r}")
        self.length = length
        if isinstance(max_disparity, bool) or not isinstance(max_disparity, (int, float)) or max_disparity < 0:
            raise DataError(f"max_disparity must be a number >= 0 (pixels), got {max_disparity!r}")
        self.max_disparity = float(max_disparity)
        if isinstance(global_shift, bool) or not isinstance(global_shift, (int, float)) or not global_shift >= 0:
            raise DataError(f"global_shift must be a number >= 0 (pixels), got {global_shift!r}")
        self.global_shift = float(global_shift)
        self.photometric = photometric_jitter(photometric)
        self._disparity_options = {"layers": layers, "boundary_sigma": boundary_sigma, "vertical": vertical}
        # Fail now, not in a worker, on bad disparity options.
        random_layered_disparity(4, 4, self.max_disparity, torch.Generator(), **self._disparity_options)  # type: ignore[arg-type]
        # Margin around the crop: the largest disparity plus the antialias kernel support (2·scale).
        margin = max(math.ceil(self.max_disparity + self.global_shift) + 2, 2 * self.scale)
        self.margin = -(-margin // self.scale) * self.scale

    def __len__(self) -> int:
        return self.length

    def _image(self, k: int) -> Tensor:
        item = self.images[k]
        return item if isinstance(item, Tensor) else load_image(item)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        generator = self._generator(index)
        k = index % len(self.images)
        hr_full = crop_to_multiple(self._image(k), self.scale)
        s = self.scale
        h, w = hr_full.shape[-2:]
        if self.crop is None:
            top, left, (ch, cw) = 0, 0, (h, w)
        else:
            ch, cw = self.crop
            if self.crop_mode == "center":
                top, left = (h - ch) // 2 // s * s, (w - cw) // 2 // s * s
            else:
                top = s * randint(0, (h - ch) // s + 1, generator)
                left = s * randint(0, (w - cw) // s + 1, generator)
        # Window = crop + margin, clipped to the image; all corners stay on the scale grid.
        y0, x0 = max(0, top - self.margin), max(0, left - self.margin)
        y1, x1 = min(h, top + ch + self.margin), min(w, left + cw + self.margin)
        window = hr_full[:, y0:y1, x0:x1]
        pair = synthesize_parallax(
            window,
            self.max_disparity,
            generator,
            photometric=self.photometric,
            global_shift=self.global_shift,
            **self._disparity_options,  # type: ignore[arg-type]
        )
        oy, ox = top - y0, left - x0
        lr = downsample(window, s)[:, oy // s : (oy + ch) // s, ox // s : (ox + cw) // s]
        flow = pair.flow[:, oy : oy + ch, ox : ox + cw]
        sample: Sample = {
            "lr": lr.contiguous(),
            "ref": pair.ref[:, oy : oy + ch, ox : ox + cw].contiguous(),
            "hr": window[:, oy : oy + ch, ox : ox + cw].contiguous(),
            "flow": flow.contiguous(),
            "valid": (pair.valid[:, oy : oy + ch, ox : ox + cw] * inside_frame(flow)).contiguous(),
            "name": f"{self.names[k]}#{index}",
        }
        return self._apply_transform(sample, generator)
