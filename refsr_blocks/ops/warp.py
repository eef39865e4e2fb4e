"""Backward warping with a dense flow, exact in pixel space.

``backward_warp(x, flow)[p] = x[p + flow[p]]`` with bilinear, bicubic or nearest
interpolation and border replication. It is the library's one backward warp: the warper
components, the losses, the pictures and the synthetic-data generator all call it.

Why not ``grid_sample``: it takes coordinates normalised to [-1, 1], and the round trip
pixel → normalised → pixel in float32 is inexact: a zero flow returns the input only up to
~3e-6 at 43 px wide, ~5e-5 at 512 px and ~2e-4 at 1920 px (``python -m
refsr_blocks.ops.warp`` prints these), and integer shifts blur slightly. Here coordinates
stay in pixels: each output pixel is the weighted sum of its four neighbours' feature
vectors, computed in one pass by ``embedding_bag`` (the image seen as a table of pixel rows,
each output pixel a bag of four rows). An integer position has weights (1, 0, 0, 0), so a
zero flow is the identity and an integer flow a shift, *exactly*, at any image size and
dtype. A constant image stays constant up to the rounding of the weights' sum (a few ulps).

Precision: coordinates and weights are float32 whatever the autocast state (fp16 cannot
place sub-pixel positions beyond 512 px), float64 when ``x`` or ``flow`` is float64 (so
float64 gradients, e.g. ``gradcheck``, see float64 positions). Half-precision (bf16/fp16)
images are blended without an upcast copy: each weight is split into two half-precision
parts, ``w = hi + lo`` (16 significant bits instead of bf16's 8), each neighbour enters its
bag twice, and ``embedding_bag`` accumulates in float32 (on the CPU; checked by the bf16
autocast property of ``refsr_blocks.testing.WarperContract``, not yet on a GPU), so the
result matches a float32 blend rounded once to the half dtype. The output has the dtype of ``x``.

Speed (``python benchmarks/warp.py``): on a 64×320×512 channels_last float32 map the warp
takes about 25 ms, against 50-60 ms for ``grid_sample`` and 115-160 ms for the four
gathers and three ``lerp`` passes it replaced; bf16 10-20 ms. Contiguous (NCHW) inputs
are transposed to pixel rows and back, which costs more than the warp itself.

Bicubic (for resampling images, e.g. a synthetic second view; models warp bilinearly): each
output pixel is a bag of its 4×4 neighbours with Keys' cubic weights (a = -0.75, those of
``grid_sample`` and ``F.interpolate``), neighbours beyond the edge replaced by the edge pixel;
integer positions are again exact. It overshoots at sharp edges like any cubic: clamp
images afterwards.

Non-finite flows: a NaN displacement gives NaN at that output pixel (and only there), an
infinite one reads the border; neither indexes out of bounds.

Determinism: the backward of ``embedding_bag`` (sum mode) scatters gradients into pixel
rows, in a fixed order on the CPU. On CUDA it sorts the indices before reducing, and PyTorch
lists only ``mode="max"`` as lacking a deterministic CUDA backward (unlike ``grid_sample``'s,
which raises under ``torch.use_deterministic_algorithms(True)``). See docs/determinism.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["backward_warp", "check_warp_inputs", "inside_frame", "pixel_grid", "sample"]

MODES = ("bilinear", "bicubic", "nearest")

#: Keys' cubic-convolution parameter, as in ``grid_sample``/``F.interpolate`` (and OpenCV).
CUBIC_A = -0.75


def pixel_grid(
    height: int, width: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Pixel coordinates ``1×2×H×W`` (float32 unless ``dtype``): channel 0 is x (column), 1 is y (row)."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y)).unsqueeze(0)


def check_warp_inputs(x: Tensor, flow: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is ``B×C×H×W`` and ``flow`` is ``B×2×H×W``."""
    if x.ndim != 4:
        raise ValueError(f"x must be B×C×H×W, got shape {tuple(x.shape)}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be B×2×H×W (x then y displacement), got {tuple(flow.shape)}")
    if flow.shape[0] != x.shape[0] or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"flow {tuple(flow.shape)} must match x {tuple(x.shape)} in batch size and H×W; "
            "resize it with refsr_blocks.ops.resize_flow"
        )
    if not x.is_floating_point() or not flow.is_floating_point():
        raise ValueError(f"x and flow must be floating point, got {x.dtype} and {flow.dtype}")


def inside_frame(flow: Tensor) -> Tensor:
    """Where ``p + flow[p]`` lies inside the frame ``[0, W-1] × [0, H-1]``: the pixels a backward
    warp reads from the image rather than from its replicated border.

    Args:
        flow: ``B×2×H×W`` (or ``2×H×W``) displacement in pixels, x then y.

    Returns:
        Boolean mask ``B×1×H×W`` (or ``1×H×W``); positions are computed in float32.

    Example:
        >>> flow = torch.zeros(2, 1, 3); flow[0] = 1.0  # read one pixel to the right
        >>> inside_frame(flow)[0, 0].tolist()
        [True, True, False]
    """
    squeeze = flow.ndim == 3
    f = flow.unsqueeze(0) if squeeze else flow
    if f.ndim != 4 or f.shape[1] != 2:
        raise ValueError(f"flow must be B×2×H×W or 2×H×W (x then y displacement), got {tuple(flow.shape)}")
    h, w = f.shape[-2:]
    pos = pixel_grid(h, w, f.device) + f.float()
    x, y = pos[:, 0:1], pos[:, 1:2]
    ok = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return ok.squeeze(0) if squeeze else ok


def _cubic_weights(t: Tensor) -> Tensor:
    """Keys' cubic weights of the taps at offsets -1, 0, 1, 2 for fractions ``t`` in [0, 1): …×4.

    At ``t = 0`` they are exactly (0, 1, 0, 0).
    """
    a = CUBIC_A

    def near(d: Tensor) -> Tensor:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: Tensor) -> Tensor:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return torch.stack((far(t + 1), near(t), near(1 - t), far(2 - t)), dim=-1)


def _pixel_rows(x: Tensor) -> Tensor:
    """``x`` (B×C×H×W) as a table of pixel rows, (B·H·W)×C with strides (C, 1).

    A view for channels_last input; NCHW input is copied (``embedding_bag`` reads strided rows
    far more slowly than the copy costs). The flat round trip sets the strides to exactly
    (C, 1): a size-1 dimension can keep any stride, and ``embedding_bag`` rounds differently
    when the row stride is not 1, which would make one channel warped alone differ by an ulp.
    """
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).contiguous().view(-1).view(b * h * w, c)


def _from_pixel_rows(rows: Tensor, like: Tensor) -> Tensor:
    """Pixel rows (B·H·W)×C back to B×C×H×W in the memory format of ``like``."""
    b, c, h, w = like.shape
    out = rows.view(b, h, w, c).permute(0, 3, 1, 2)  # a channels_last view
    channels_last = like.is_contiguous(memory_format=torch.channels_last) and c > 1
    return out if channels_last else out.contiguous()


def _batch_offsets(index: Tensor, height: int, width: int) -> Tensor:
    """Per-item flat pixel indices (B×H×W…) made global to the (B·H·W) row table."""
    b = index.shape[0]
    shape = (b,) + (1,) * (index.ndim - 1)
    return index + torch.arange(b, device=index.device).view(shape) * (height * width)


def backward_warp(x: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """Backward-warp ``x`` by ``flow``: ``out[p] = x[p + flow[p]]``.

    Args:
        x: ``B×C×H×W`` features or image, any float dtype.
        flow: ``B×2×H×W`` displacement in pixels of ``x`` (x first, then y).
        mode: ``"bilinear"``, ``"bicubic"`` (4×4 neighbours, Keys a = -0.75; for images) or
            ``"nearest"`` (half-way positions round up).

    Returns:
        ``B×C×H×W`` with the dtype of ``x``; positions outside the image read the border.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> flow = torch.zeros(1, 2, 4, 4); flow[:, 0] = 1.0  # read one pixel to the right
        >>> backward_warp(x, flow)[0, 0, 0].tolist()
        [1.0, 2.0, 3.0, 3.0]
    """
    check_warp_inputs(x, flow)
    _check_mode(mode)
    h, w = x.shape[-2:]
    with torch.autocast(device_type=x.device.type, enabled=False):
        coord_dtype = torch.float64 if torch.float64 in (x.dtype, flow.dtype) else torch.float32
        coords = pixel_grid(h, w, x.device, coord_dtype) + flow.to(coord_dtype)
        rows, invalid = _interpolate(x, coords[:, 0], coords[:, 1], mode)
        out = _from_pixel_rows(rows, x)
        return out if invalid is None else out.masked_fill(invalid.unsqueeze(1), float("nan"))


def sample(x: Tensor, points: Tensor, mode: str = "bilinear") -> Tensor:
    """``x`` at arbitrary pixel positions, interpolated exactly as :func:`backward_warp` does.

    ``backward_warp(x, flow)`` is ``sample`` at ``pixel_grid + flow`` reshaped to the grid; this
    reads only the positions asked for (e.g. the pixels of a fixed-point iteration that are
    still moving, :func:`refsr_blocks.data.invert_displacement`), bit for bit the same values.

    Args:
        x: ``B×C×H×W``, any float dtype.
        points: ``B×2×N`` positions in pixels of ``x`` (x first, then y); outside the image
            they read the border.
        mode: as for :func:`backward_warp`.

    Returns:
        ``B×C×N`` with the dtype of ``x``.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> sample(x, torch.tensor([[[0.5, 3.0], [0.0, 9.0]]]))[0, 0].tolist()  # (0.5, 0) and (3, 9)
        [0.5, 15.0]
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point B×C×H×W tensor, got {x.dtype} {tuple(x.shape)}")
    if points.ndim != 3 or points.shape[:2] != (x.shape[0], 2) or not points.is_floating_point():
        raise ValueError(f"points must be floating-point B×2×N with B = {x.shape[0]}, got {tuple(points.shape)}")
    _check_mode(mode)
    b, c = x.shape[:2]
    with torch.autocast(device_type=x.device.type, enabled=False):
        coord_dtype = torch.float64 if torch.float64 in (x.dtype, points.dtype) else torch.float32
        coords = points.to(coord_dtype)
        rows, invalid = _interpolate(x, coords[:, 0], coords[:, 1], mode)  # (B·N)×C
        if invalid is not None:
            rows = rows.masked_fill(invalid.reshape(-1, 1), float("nan"))
        return rows.view(b, points.shape[-1], c).transpose(1, 2)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _interpolate(x: Tensor, px: Tensor, py: Tensor, mode: str) -> tuple[Tensor, Tensor | None]:
    """``x`` (B×C×H×W) interpolated at positions ``(px, py)`` (B×…, coordinate dtype).

    Returns:
        Pixel rows (B·…)×C, and for ``"nearest"`` the B×… mask of NaN positions (whose rows
        must be set to NaN; the other modes' NaN weights already make them NaN), else None.
    """
    h, w = x.shape[-2:]
    cx = px.clamp(0, w - 1)  # border replication = clamping the position
    cy = py.clamp(0, h - 1)
    x0, y0 = cx.floor(), cy.floor()
    # Exact fractions (Sterbenz: c - floor(c) is exact for c >= 0); NaN where the flow is NaN.
    fx, fy = cx - x0, cy - y0
    # NaN positions index pixel 0; their NaN weights (bilinear) or mask (nearest) mark them.
    x0 = torch.nan_to_num(x0, nan=0.0).long()
    y0 = torch.nan_to_num(y0, nan=0.0).long()
    step_x = (x0 < w - 1).long()  # 0 on the last column: its right neighbour is itself
    step_y = (y0 < h - 1).long() * w
    i00 = _batch_offsets(y0 * w + x0, h, w)
    rows = _pixel_rows(x)
    if mode == "nearest":
        # Round half up on the exact fraction; floor(c + 0.5) would round c = 0.5 - 2^-25 up.
        index = i00 + (fx >= 0.5).long() * step_x + (fy >= 0.5).long() * step_y
        return rows.index_select(0, index.reshape(-1)), fx.isnan() | fy.isnan()
    if mode == "bicubic":
        corners, weights = _bicubic_bags(x0, y0, fx, fy, h, w)
    else:
        # Bags of the 4 neighbours (top-left, top-right, bottom-left, bottom-right) and their
        # bilinear weights, B×…×4; at an integer position the weights are exactly (1, 0, 0, 0).
        corners = torch.stack((i00, i00 + step_x, i00 + step_y, i00 + step_y + step_x), dim=-1)
        gx, gy = 1.0 - fx, 1.0 - fy
        weights = torch.stack((gx * gy, fx * gy, gx * fy, fx * fy), dim=-1)
    corners, weights = _bag_weights(corners, weights, x.dtype)
    bag = corners.shape[-1]
    return F.embedding_bag(corners.view(-1, bag), rows, per_sample_weights=weights.view(-1, bag), mode="sum"), None


def _bicubic_bags(x0: Tensor, y0: Tensor, fx: Tensor, fy: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Bags of the 4×4 neighbours of each position and their cubic weights, B×…×16.

    ``x0``, ``y0`` (long) are the floors of the clamped positions, ``fx``, ``fy`` the fractions;
    neighbours beyond the edge are the edge pixel (border replication).
    """
    offsets = torch.arange(-1, 3, device=x0.device)
    cols = (x0.unsqueeze(-1) + offsets).clamp_(0, w - 1)  # B×H×W×4
    rows = (y0.unsqueeze(-1) + offsets).clamp_(0, h - 1).mul_(w)
    index = (rows.unsqueeze(-1) + cols.unsqueeze(-2)).view(*x0.shape, 16)  # row-major 4×4
    weights = (_cubic_weights(fy).unsqueeze(-1) * _cubic_weights(fx).unsqueeze(-2)).view(*x0.shape, 16)
    return _batch_offsets(index, h, w), weights


def _bag_weights(corners: Tensor, weights: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Bag indices and per-sample weights in ``dtype`` (``embedding_bag`` wants the table's).

    float32/float64: the weights, cast. bf16/fp16: each weight as ``hi + lo`` in ``dtype``
    and each corner twice, so the float32 accumulator sees 16 significant bits of weight
    rather than 8 (bf16) or 11 (fp16). ``lo`` carries no gradient: ``d hi / d w`` is already 1.
    """
    if dtype in (torch.float32, torch.float64):
        return corners, weights.to(dtype)
    hi = weights.to(dtype)
    lo = (weights - hi.to(weights.dtype)).detach().to(dtype)
    return torch.cat((corners, corners), dim=-1), torch.cat((hi, lo), dim=-1)


def _grid_sample_identity_error(height: int, width: int) -> float:
    """Max |grid_sample(x, zero flow) - x| with float32 normalised coordinates (for the docs)."""
    x = torch.rand(1, 1, height, width)
    grid = pixel_grid(height, width)
    scale = grid.new_tensor([2.0 / (width - 1), 2.0 / (height - 1)]).view(1, 2, 1, 1)
    norm = (grid * scale - 1.0).permute(0, 2, 3, 1)
    out = F.grid_sample(x, norm, mode="bilinear", padding_mode="border", align_corners=True)
    return (out - x).abs().max().item()


if __name__ == "__main__":
    for size in ((29, 43), (320, 512), (1080, 1920)):
        x = torch.rand(1, 3, *size)
        exact = (backward_warp(x, torch.zeros(1, 2, *size)) - x).abs().max().item()
        print(f"{size}: grid_sample identity error {_grid_sample_identity_error(*size):.2e}, ours {exact:.1e}")
