"""Modulated deformable convolution that reads a map of any size at given positions.

``torchvision.ops.deform_conv2d`` samples its input on the output's own grid: the input must
have the output's size, so a reference of another size has to be padded or cropped to it
first (what C2-Matching's and DATSR's test code do). Here every tap of every output pixel
carries its sampling *position* in the input's pixels, so the input can have any size, and
the caller can split the output pixels into chunks (the largest temporary is the
``C·k² × N`` column block of one chunk).

Sampling follows DCNv2 and torchvision: bilinear, positions outside the input read zero
(a position within one pixel of the border blends the border with zero). With the positions
``p + tap + offset`` on an input of the output's size, the result equals
``deform_conv2d(x, offset, weight, bias, padding=k // 2, mask=mask)`` (the library's test
checks it).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .warp import sample

__all__ = ["deform_conv_at"]


def deform_conv_at(x: Tensor, positions: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``out[o, n] = bias[o] + Σ_{c,t} weight[o, c, t] · mask[g(c), t, n] · x[c](positions[g(c), t, n])``.

    Args:
        x: B×C×H'×W', any size; C divisible by the number of offset groups G.
        positions: B×G×T×2×N sampling positions in pixels of ``x`` (x then y), per offset
            group g (channels ``g·C/G … (g+1)·C/G − 1``), tap t (row-major over the kernel) and
            output pixel n.
        mask: B×G×T×N modulation.
        weight: O×C×kh×kw with kh·kw = T.
        bias: O, or ``None``.

    Returns:
        B×O×N.
    """
    b, c = x.shape[:2]
    groups, taps, n = positions.shape[1], positions.shape[2], positions.shape[-1]
    if positions.shape != (b, groups, taps, 2, n) or c % groups:
        raise ValueError(
            f"positions must be B×G×T×2×N with B = {b} and G dividing C = {c}, got {tuple(positions.shape)}"
        )
    if mask.shape != (b, groups, taps, n) or weight.shape[1] != c or weight[0, 0].numel() != taps:
        raise ValueError(
            f"mask {tuple(mask.shape)} must be B×G×T×N and weight {tuple(weight.shape)} O×{c}×k×k with k² = {taps}"
        )
    # A zero border: the border-replicating sampler then reads zero outside x, blending
    # across the last pixel as DCNv2 does.
    padded = F.pad(x, (1, 1, 1, 1))
    per_group = padded.reshape(b * groups, c // groups, *padded.shape[-2:])
    points = (positions + 1).transpose(2, 3).reshape(b * groups, 2, taps * n)
    columns = sample(per_group, points).view(b, groups, c // groups, taps, n)
    columns = (columns * mask.unsqueeze(2).to(columns.dtype)).reshape(b, c * taps, n)
    out = weight.reshape(weight.shape[0], c * taps).to(columns.dtype) @ columns
    return out if bias is None else out + bias.to(out.dtype).view(1, -1, 1)
