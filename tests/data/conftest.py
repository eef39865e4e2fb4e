"""Shared fixtures for the data-layer tests: small images, an independent warp, PSNR."""

from __future__ import annotations

from collections.abc import Callable

import kornia
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from refsr_blocks.evaluation.metrics import psnr as metric_psnr


def _warp(ref: Tensor, flow: Tensor) -> Tensor:
    """out[p] = ref[p + flow[p]] (bilinear, border padding, align_corners=True, float32 grid).

    Written here from scratch, independent of the library's warpers.
    """
    h, w = ref.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    gx = xs + flow[0].float()
    gy = ys + flow[1].float()
    grid = torch.stack((2 * gx / (w - 1) - 1, 2 * gy / (h - 1) - 1), dim=-1).unsqueeze(0)
    return F.grid_sample(ref[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def _psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """The library's PSNR (:func:`refsr_blocks.evaluation.metrics.psnr`) of two C×H×W images,
    over the pixels where ``mask`` (1×H×W) is set, if given."""
    if mask is not None:
        keep = mask.bool().reshape(mask.shape[-2:])
        a, b = a[:, keep], b[:, keep]  # C×N
    return float(metric_psnr(a.reshape(1, a.shape[0], 1, -1), b.reshape(1, b.shape[0], 1, -1))[0])


@pytest.fixture
def warp() -> Callable[[Tensor, Tensor], Tensor]:
    return _warp


@pytest.fixture
def psnr() -> Callable[..., float]:
    return _psnr


@pytest.fixture(scope="session")
def textured() -> Tensor:
    """A 3×96×128 image with sharp detail (procedural)."""
    from refsr_blocks.data import procedural_image

    return procedural_image(96, 128, seed=7)


@pytest.fixture(scope="session")
def smooth() -> Tensor:
    """A smooth natural-looking 3×128×160 image: a procedural image blurred with sigma 2."""
    from refsr_blocks.data import procedural_image

    img = procedural_image(128, 160, seed=3)
    return kornia.filters.gaussian_blur2d(img[None], (13, 13), (2.0, 2.0))[0]
