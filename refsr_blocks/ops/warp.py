"""Backward warping with a dense flow, exact in pixel space.

``backward_warp(x, flow)[p] = x[p + flow[p]]`` with bilinear (or nearest) interpolation and
border replication.

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
autocast property of ``refsr_blocks.testing.WarperProperties``, not yet on a GPU), so the
result matches a float32 blend rounded once to the half dtype. The output has the dtype of ``x``.

Speed (``python benchmarks/warp.py``): on a 64×320×512 channels_last float32 map the warp
takes about 25 ms, against 50-60 ms for ``grid_sample`` and 115-160 ms for the four
gathers and three ``lerp`` passes it replaced; bf16 10-20 ms. Contiguous (NCHW) inputs
are transposed to pixel rows and back, which costs more than the warp itself.

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

__all__ = ["backward_warp", "check_warp_inputs", "pixel_grid"]

MODES = ("bilinear", "nearest")


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
        mode: ``"bilinear"`` or ``"nearest"`` (half-way positions round up).

    Returns:
        ``B×C×H×W`` with the dtype of ``x``; positions outside the image read the border.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> flow = torch.zeros(1, 2, 4, 4); flow[:, 0] = 1.0  # read one pixel to the right
        >>> backward_warp(x, flow)[0, 0, 0].tolist()
        [1.0, 2.0, 3.0, 3.0]
    """
    check_warp_inputs(x, flow)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    h, w = x.shape[-2:]
    with torch.autocast(device_type=x.device.type, enabled=False):
        coord_dtype = torch.float64 if torch.float64 in (x.dtype, flow.dtype) else torch.float32
        coords = pixel_grid(h, w, x.device, coord_dtype) + flow.to(coord_dtype)
        cx = coords[:, 0].clamp(0, w - 1)  # border replication = clamping the position
        cy = coords[:, 1].clamp(0, h - 1)
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
            out = _from_pixel_rows(rows.index_select(0, index.reshape(-1)), x)
            invalid = (fx.isnan() | fy.isnan()).unsqueeze(1)
            return out.masked_fill(invalid, float("nan"))
        # Bags of the 4 neighbours (top-left, top-right, bottom-left, bottom-right) and their
        # bilinear weights, B×H×W×4; at an integer position the weights are exactly (1, 0, 0, 0).
        corners = torch.stack((i00, i00 + step_x, i00 + step_y, i00 + step_y + step_x), dim=-1)
        gx, gy = 1.0 - fx, 1.0 - fy
        weights = torch.stack((gx * gy, fx * gy, gx * fy, fx * fy), dim=-1)
        corners, weights = _bag_weights(corners, weights, x.dtype)
        bag = corners.shape[-1]
        blended = F.embedding_bag(corners.view(-1, bag), rows, per_sample_weights=weights.view(-1, bag), mode="sum")
        return _from_pixel_rows(blended, x)


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
