"""Flow-field utilities: level sizes, resizing between levels, padding, error, colour.

Flow convention (everywhere in refsr-blocks): a flow is ``B×2×H×W``; channel 0 is the
horizontal (x) displacement and channel 1 the vertical (y) one, in pixels of the tensor the
flow applies to. Backward warping reads ``out[p] = x[p + flow[p]]``. Level ``k`` of a
pyramid has size ``ceil(H / 2**k) × ceil(W / 2**k)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "crop_to",
    "end_point_error",
    "flow_pyramid",
    "flow_to_color",
    "level_size",
    "pad_to_multiple",
    "resize_flow",
]


def _check_flow(flow: Tensor, name: str = "flow") -> None:
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name} must be B×2×H×W (x then y displacement), got {tuple(flow.shape)}")


def level_size(height: int, width: int, level: int) -> tuple[int, int]:
    """Size of pyramid level ``level`` for a level-0 size ``height × width``.

    Example:
        >>> level_size(321, 512, 2)
        (81, 128)
    """
    if level < 0 or height < 1 or width < 1:
        raise ValueError(f"level_size needs level >= 0 and a positive size, got {height}×{width}, level {level}")
    step = 2**level
    return math.ceil(height / step), math.ceil(width / step)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a flow field and scale its values to the pixel units of the new size.

    Args:
        flow: ``B×2×H×W``.
        size: target ``(height, width)``.

    Returns:
        ``B×2×size[0]×size[1]``; x values scaled by ``size[1] / W``, y values by
        ``size[0] / H`` (bilinear, pixel-centre convention: ``align_corners=False``, no
        antialiasing). A flow already of that size is returned as is (not copied).

    For the levels of a pyramid, whose pixels are exactly ``2^k`` level-0 pixels apart even
    when ``H`` is not a multiple of ``2^k``, use :func:`flow_pyramid`: the size ratio
    ``ceil(H/2^k) / H`` is not ``2^-k`` for such sizes.

    Example:
        >>> flow = torch.ones(1, 2, 8, 8)
        >>> resize_flow(flow, (16, 16)).mean().item()
        2.0
    """
    _check_flow(flow)
    size = (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    h, w = flow.shape[-2:]
    if (h, w) == size:
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = flow.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)
    return out * scale


def flow_pyramid(flow: Tensor, levels: int) -> list[Tensor]:
    """A pyramid of ``levels`` flows, finest first, from a level-0 flow.

    Level ``k`` is ``B×2×ceil(H/2^k)×ceil(W/2^k)`` with values in that level's pixels:
    scaled by exactly ``2^-k``, the geometry of stride-2 encoders, whose level-``k`` pixels
    are ``2^k`` level-0 pixels apart whatever ``H`` and ``W``. The flow is padded (replicate,
    bottom/right) to a multiple of ``2^k`` and resized by exactly ``2^-k``, so odd sizes get
    the same scale as even ones.

    Example:
        >>> [tuple(f.shape[-2:]) for f in flow_pyramid(torch.ones(1, 2, 29, 43), 3)]
        [(29, 43), (15, 22), (8, 11)]
        >>> flow_pyramid(torch.ones(1, 2, 29, 43), 3)[2].unique().tolist()
        [0.25]
    """
    _check_flow(flow)
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    h, w = flow.shape[-2:]
    pyramid = []
    for k in range(levels):
        padded, _ = pad_to_multiple(flow, 2**k)
        pyramid.append(resize_flow(padded, level_size(h, w, k)))
    return pyramid


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "replicate") -> tuple[Tensor, tuple[int, int]]:
    """Pad ``x`` (``B×C×H×W``) at the bottom and right so H and W are multiples of ``multiple``.

    Padding only the bottom/right keeps pixel coordinates unchanged, so flows computed on
    the padded tensor need no offset. With ``"replicate"`` padding, a border-replicating
    warp of the padded tensor, cropped back, equals the warp of the original.

    Returns:
        The padded tensor and the original ``(H, W)`` (for :func:`crop_to`).

    Example:
        >>> padded, size = pad_to_multiple(torch.rand(1, 3, 29, 43), 16)
        >>> tuple(padded.shape), size
        ((1, 3, 32, 48), (29, 43))
    """
    if multiple < 1:
        raise ValueError(f"multiple must be a positive integer, got {multiple}")
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the top-left ``size`` of ``x`` (undoes :func:`pad_to_multiple`)."""
    return x[..., : size[0], : size[1]]


def end_point_error(flow: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Euclidean distance between two flows per pixel (EPE), averaged unless ``reduction="none"``.

    Args:
        flow, target: ``B×2×H×W``.

    Returns:
        A scalar, or ``B×H×W`` with ``reduction="none"``.
    """
    _check_flow(flow)
    if flow.shape != target.shape:
        raise ValueError(f"flow {tuple(flow.shape)} and target {tuple(target.shape)} differ in shape")
    epe = torch.linalg.vector_norm(flow - target, dim=1)
    if reduction == "none":
        return epe
    if reduction == "mean":
        return epe.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def flow_to_color(flow: Tensor, max_flow: float | None = None) -> Tensor:
    """Colour-code a flow with the Middlebury colour wheel (``torchvision.utils.flow_to_image``).

    Hue gives the direction, saturation the magnitude: relative to the largest finite
    displacement in the batch, or to ``max_flow`` pixels when given (longer vectors
    saturate), which keeps colours comparable between images. A zero flow is white;
    pixels with a non-finite displacement are black (a colour no flow produces).

    Args:
        flow: ``B×2×H×W`` or ``2×H×W``, any float dtype and device.
        max_flow: the displacement (in pixels) drawn at full saturation; ``None``: the
            largest one in the batch.

    Returns:
        ``uint8`` image(s) ``B×3×H×W`` (or ``3×H×W``) on the device of ``flow``.

    Example:
        >>> flow_to_color(torch.zeros(2, 4, 4)).unique().tolist()  # zero flow: white
        [255]
    """
    from torchvision.utils import flow_to_image

    if flow.ndim not in (3, 4) or flow.shape[-3] != 2:
        raise ValueError(f"flow must be B×2×H×W or 2×H×W, got {tuple(flow.shape)}")
    if max_flow is not None and not max_flow > 0:
        raise ValueError(f"max_flow must be positive, got {max_flow}")
    flow = flow.detach().float()
    finite = torch.isfinite(flow).all(dim=-3, keepdim=True)
    flow = torch.where(finite, flow, 0.0)
    if max_flow is None:
        image = flow_to_image(flow)
    else:
        # Saturate at max_flow (|v| <= 1 in those units), then append a column holding a unit
        # vector so torchvision's division by the batch maximum divides by 1; crop it off.
        norm = torch.linalg.vector_norm(flow, dim=-3, keepdim=True)
        flow = flow / torch.clamp(norm, min=max_flow)
        unit = torch.zeros_like(flow[..., :1])
        unit[..., 0, :, :] = 1.0
        image = flow_to_image(torch.cat((flow, unit), dim=-1))[..., :-1]
    return torch.where(finite, image, 0)
