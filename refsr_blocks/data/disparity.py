"""Random layered disparity fields and their inversion, for synthetic stereo pairs.

A field ``d`` (2×H×W, channel 0 = x, 1 = y, pixels) on the *reference* grid defines a
reference view by backward warping the target: ``ref[q] = target[q - d(q)]``, i.e. the scene
point seen at ``p`` in the target is seen at ``q = p + d(q)`` in the reference. The flow that
aligns the reference to the target, ``target[p] = ref[p + flow(p)]``, is therefore the
solution of ``flow(p) = d(p + flow(p))`` (:func:`invert_displacement`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.warp import backward_warp, pixel_grid, sample
from ._checks import check_positive_int
from ._random import randint, uniform, uniform_float
from .errors import DataError

__all__ = ["invert_displacement", "random_layered_disparity"]

#: Largest disparity gradient (px per px) a straight layer boundary gets with the automatic
#: ``boundary_sigma``; curved boundaries can reach twice that, still below 1, so the warp
#: stays one-to-one.
_MAX_BOUNDARY_SLOPE = 0.4


def _smooth_noise(h: int, w: int, cells: int, generator: torch.Generator | None) -> Tensor:
    """Low-frequency noise 1×1×h×w: random values on a coarse grid, bicubically upsampled."""
    long_side = max(h, w)
    gh = max(2, round(cells * h / long_side) + 1)
    gw = max(2, round(cells * w / long_side) + 1)
    coarse = torch.randn((1, 1, gh, gw), generator=generator)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def random_layered_disparity(
    height: int,
    width: int,
    max_disparity: float = 15.0,
    generator: torch.Generator | None = None,
    *,
    layers: tuple[int, int] = (2, 4),
    boundary_sigma: float | None = None,
    vertical: float = 0.1,
) -> Tensor:
    """A smooth, depth-layered disparity field like a stereo rig's.

    A random low-frequency depth map is split at random quantiles into ``layers`` depth
    layers (count drawn uniformly from the inclusive range); each layer gets a disparity drawn
    from [-max_disparity, max_disparity] (nearer layers larger), plus a slight slant. Layer
    boundaries are Gaussian-blurred ramps of width ~``boundary_sigma``. The vertical component
    is ``rho · dx + c`` with ``|rho| ≤ vertical`` and ``|c| ≤ vertical · max_disparity / 2``:
    a slightly misaligned horizontal rig.

    Args:
        height, width: field size.
        max_disparity: bound on |dx| and |dy| in pixels (≥ 0).
        generator: random source (``None``: torch's global RNG).
        layers: (min, max) number of depth layers, 1 ≤ min ≤ max.
        boundary_sigma: blur of the layer boundaries in pixels. ``None`` picks the smallest
            blur that keeps the disparity gradient below 1 everywhere, so the induced warp is
            one-to-one (no folds, no occlusions) and exactly invertible.
        vertical: size of the vertical component relative to the horizontal one, in [0, 1).

    Returns:
        2×height×width float32 tensor (channel 0 = x, channel 1 = y), |values| ≤ max_disparity.
    """
    h = check_positive_int(height, "height")
    w = check_positive_int(width, "width")
    if not isinstance(max_disparity, (int, float)) or isinstance(max_disparity, bool) or not max_disparity >= 0:
        raise DataError(f"max_disparity must be a number >= 0 (pixels), got {max_disparity!r}")
    if (
        not isinstance(layers, (tuple, list))
        or len(layers) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in layers)
        or not 1 <= layers[0] <= layers[1]
    ):
        raise DataError(f"layers must be a pair (min, max) of ints with 1 <= min <= max, got {layers!r}")
    if boundary_sigma is not None and not (isinstance(boundary_sigma, (int, float)) and boundary_sigma > 0):
        raise DataError(f"boundary_sigma must be None or a number > 0 (pixels), got {boundary_sigma!r}")
    if not isinstance(vertical, (int, float)) or not 0 <= vertical < 1:
        raise DataError(f"vertical must be a number in [0, 1), got {vertical!r}")
    max_d = float(max_disparity)

    n_layers = randint(layers[0], layers[1] + 1, generator)
    disparities = uniform(-max_d, max_d, generator, (n_layers,)).sort().values
    span = float(disparities[-1] - disparities[0])
    sigma = (
        float(boundary_sigma)
        if boundary_sigma is not None
        else max(1.0, span / (_MAX_BOUNDARY_SLOPE * math.sqrt(2 * math.pi)))
    )

    # Build the layered map at a reduced resolution (the blur makes it smooth anyway).
    factor = max(1, int(sigma // 3))
    ch, cw = -(-h // factor), -(-w // factor)
    depth = _smooth_noise(ch, cw, randint(2, 6, generator), generator)
    sub = depth.flatten()[:: max(1, depth.numel() // 65536)]
    levels = (torch.arange(1, n_layers) + uniform(-0.3, 0.3, generator, (n_layers - 1,))) / n_layers
    thresholds = torch.quantile(sub, levels.clamp(0.05, 0.95)).sort().values
    dx = torch.full_like(depth, float(disparities[0]))
    for k in range(1, n_layers):
        dx = dx + (disparities[k] - disparities[k - 1]) * (depth > thresholds[k - 1]).float()
    coarse_sigma = sigma / factor
    ksize = 2 * math.ceil(3 * coarse_sigma) + 1
    import kornia  # imported on first use: a heavy import

    dx = kornia.filters.gaussian_blur2d(dx, (ksize, ksize), (coarse_sigma, coarse_sigma), border_type="replicate")
    if factor > 1:
        dx = F.interpolate(dx, size=(h, w), mode="bilinear", align_corners=False)

    # A gentle slant (≤ 10 % of max_disparity across the frame) inside the layers.
    ys = torch.linspace(-0.5, 0.5, h).view(1, 1, h, 1)
    xs = torch.linspace(-0.5, 0.5, w).view(1, 1, 1, w)
    tilt = uniform(-0.1 * max_d, 0.1 * max_d, generator, (2,))
    dx = (dx + tilt[0] * xs + tilt[1] * ys).clamp(-max_d, max_d)

    rho = uniform_float(-vertical, vertical, generator)
    offset = uniform_float(-vertical * max_d / 2, vertical * max_d / 2, generator)
    dy = (rho * dx + offset).clamp(-max_d, max_d)
    return torch.cat((dx, dy), dim=1).squeeze(0).float()


def invert_displacement(displacement: Tensor, *, iterations: int = 100, tol: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Solve ``flow(p) = displacement(p + flow(p))`` by fixed-point iteration.

    If ``ref[q] = target[q - d(q)]`` then ``flow = invert_displacement(d)[0]`` satisfies
    ``target[p] = ref[p + flow(p)]``. The iteration contracts when the gradient of ``d`` is
    below 1 (what :func:`random_layered_disparity` guarantees by default); ``d`` is sampled
    bilinearly and extended by its border values outside the frame.

    Args:
        displacement: 2×H×W or B×2×H×W field ``d`` in pixels (channel 0 = x).
        iterations: maximum number of iterations.
        tol: a pixel has converged when its residual ``|flow - d(p + flow)|`` (max over x, y)
            is below ``tol`` pixels.

    Returns:
        ``(flow, converged)``: flow shaped like ``displacement``; converged a boolean mask
        (1×H×W or B×1×H×W).
    """
    if not isinstance(displacement, Tensor) or displacement.ndim not in (3, 4) or displacement.shape[-3] != 2:
        shape = tuple(displacement.shape) if isinstance(displacement, Tensor) else type(displacement).__name__
        raise DataError(f"displacement must be 2×H×W or B×2×H×W, got {shape}")
    squeeze = displacement.ndim == 3
    # channels_last: the warp reads pixel rows, so it then needs no transposed copy of ``d``.
    d = (displacement.unsqueeze(0) if squeeze else displacement).float().contiguous(memory_format=torch.channels_last)
    b, _, h, w = d.shape
    # flow(p) ← d(p + flow(p)), sampled as the library's warp samples (bilinear, border
    # replication, exact pixel coordinates). Each pixel iterates on its own, and one whose
    # value comes back unchanged is fixed for good: only the pixels still moving are sampled
    # again, which gives bit for bit what iterating the whole field gives, several times faster.
    grid = pixel_grid(h, w, d.device).flatten(2)  # 1×2×(H·W)
    flow = d.flatten(2).clone(memory_format=torch.contiguous_format)  # B×2×(H·W)
    moving = torch.arange(h * w, device=d.device)
    for k in range(iterations):
        old = flow[:, :, moving]
        new = sample(d, grid[:, :, moving] + old)
        flow[:, :, moving] = new
        if k % 4 == 3 and float((new - old).abs().amax()) < tol * 0.1:
            break
        moving = moving[(new != old).any(dim=1).any(dim=0)]
        if not moving.numel():
            break
    flow = flow.view(b, 2, h, w)
    converged = (backward_warp(d, flow) - flow).abs().amax(dim=1, keepdim=True) < tol
    if squeeze:
        return flow.squeeze(0), converged.squeeze(0)
    return flow, converged
