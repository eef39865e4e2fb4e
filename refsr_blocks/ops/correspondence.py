"""What a correspondence network finds: each LR-grid pixel's match in K references of any size.

The data type shared by the ``correspondence`` kind (which makes it), the ``restoration``
kind and the ``correspondence_warp`` aligner (which read it) and their contracts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .warp import pixel_grid

__all__ = ["Correspondence", "colocated"]


@dataclass(frozen=True)
class Correspondence:
    """Where each pixel of the match grid (the LR grid at ×4) is found in the references.

    The grids: the match grid is the target image reduced by ``stride``; reference r's grid
    is reference r reduced by the same ``stride`` (``ref_sizes[r]``).

    Attributes:
        flow: B×2×h×w float: (x, y) displacement from each match-grid pixel p to the centre
            of the reference patch its 3×3 patch matched best, in pixels of that reference's
            grid. Where no 3×3 patch is centred (the one-pixel border) it is the co-located
            displacement (:func:`colocated`; zero when the reference's grid has the target's
            size, as in the authors' code, which pads the two images to one size).
        reference: B×1×h×w int64: which reference (border pixels: that of the nearest
            interior pixel).
        score: B×1×h×w float: cosine similarity of the two patches (0 on the border).
        valid: B×1×h×w bool: a whole 3×3 patch is centred at p.
        ref_sizes: (H_r, W_r) of each reference's grid.
        stride: image pixels per match-grid pixel.
    """

    flow: Tensor
    reference: Tensor
    score: Tensor
    valid: Tensor
    ref_sizes: tuple[tuple[int, int], ...]
    stride: int


def colocated(size: tuple[int, int], ref_size: tuple[int, int], like: Tensor, margin: int = 0) -> Tensor:
    """1×2×(h+2m)×(w+2m) displacement from each pixel of an h×w grid to the same relative place of an H_r×W_r grid.

    Pixel centres scale with the sizes (``(p + 0.5)·H_r/h − 0.5``); zero when the sizes agree.
    ``margin`` m extends the grid by m pixels on every side (pixels −m … h − 1 + m).
    """
    grid = pixel_grid(size[0] + 2 * margin, size[1] + 2 * margin, like.device, torch.float32) - margin
    ratio = grid.new_tensor([ref_size[1] / size[1], ref_size[0] / size[0]]).view(1, 2, 1, 1)
    return ((grid + 0.5) * ratio - 0.5 - grid).to(like.dtype)
