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
    step = 2**level
    return math.ceil(height / step), math.ceil(width / step)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a flow field and scale its values to the pixel units of the new size.

    Args:
        flow: ``B×2×H×W``.
        size: target ``(height, width)``.

    Returns:
        ``B×2×size[0]×size[1]``; x values scaled by ``size[1] / W``, y values by
        ``size[0] / H``.

    Example:
        >>> flow = torch.ones(1, 2, 8, 8)
        >>> resize_flow(flow, (16, 16)).mean().item()
        2.0
    """
    _check_flow(flow)
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = flow.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)
    return out * scale


def flow_pyramid(flow: Tensor, levels: int) -> list[Tensor]:
    """A pyramid of ``levels`` flows, finest first, from a level-0 flow.

    Level ``k`` is ``B×2×ceil(H/2^k)×ceil(W/2^k)`` with values in that level's pixels.
    """
    _check_flow(flow)
    h, w = flow.shape[-2:]
    return [resize_flow(flow, level_size(h, w, k)) for k in range(levels)]


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "replicate") -> tuple[Tensor, tuple[int, int]]:
    """Pad ``x`` (``B×C×H×W``) at the bottom and right so H and W are multiples of ``multiple``.

    Padding only the bottom/right keeps pixel coordinates unchanged, so flows computed on
    the padded tensor need no offset. Returns the padded tensor and the original size.
    """
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


def flow_to_color(flow: Tensor) -> Tensor:
    """Colour-code a flow with the Middlebury colour wheel (``torchvision.utils.flow_to_image``).

    Hue gives the direction, saturation the magnitude relative to the largest displacement
    in the batch.

    Args:
        flow: ``B×2×H×W`` or ``2×H×W``.

    Returns:
        ``uint8`` image(s) ``B×3×H×W`` (or ``3×H×W``).
    """
    from torchvision.utils import flow_to_image

    return flow_to_image(flow.detach().float())
