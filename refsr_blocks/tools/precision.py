"""Mixed-precision helpers: how far does autocast move a model's output from float32?

What runs in which dtype is described in ``docs/precision.md``; in short, under autocast
convolutions run in the autocast dtype, warp positions and blends in float32 (the warper
returns the dtype of its input), and losses in float32.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> from refsr_blocks.tools.precision import compare_autocast, smooth_pair
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("crossnet_lite")
    >>> lr, ref, _ = smooth_pair(batch=1, lr_size=(8, 8), upscale=4)
    >>> report = compare_autocast(model, lr, ref, dtype=torch.bfloat16)
    >>> report.psnr_db > 40
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..evaluation.metrics import psnr

__all__ = ["PrecisionReport", "compare_autocast", "smooth_pair"]


def _psnr_all(a: Tensor, b: Tensor, peak: float = 1.0) -> float:
    """:func:`~refsr_blocks.evaluation.metrics.psnr` of ``a`` against ``b`` taken as one sample.

    One MSE over every element (whatever the shape, batch included) and no clamping: the
    outputs compared here are raw model outputs, not images. ``inf`` when equal.
    """
    return psnr(a.reshape(1, 1, 1, -1), b.reshape(1, 1, 1, -1), peak=peak, clamp=False).item()


def smooth_pair(
    batch: int = 2,
    lr_size: tuple[int, int] = (16, 24),
    upscale: int = 2,
    seed: int = 0,
    shift: tuple[int, int] = (3, 2),
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """A synthetic RefSR triple ``(lr, ref, target)`` from a smooth random scene.

    The scene is uniform noise upsampled bicubically (smooth at ~8 px), clamped to [0, 1].
    ``target`` is the HR image, ``ref`` the scene shifted by ``shift = (dx, dy)`` pixels and
    ``lr`` the target area-downsampled by ``upscale``, so a flow estimator has a real shift
    to find. Shapes: lr B×3×h×w, ref and target B×3×(s·h)×(s·w).
    """
    h, w = lr_size[0] * upscale, lr_size[1] * upscale
    dx, dy = shift
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 3, h // 8 + 2, w // 8 + 2, generator=g)
    scene = F.interpolate(noise, size=(h + abs(dy), w + abs(dx)), mode="bicubic", align_corners=False).clamp(0, 1)
    y0, x0 = max(-dy, 0), max(-dx, 0)
    target = scene[..., y0 : y0 + h, x0 : x0 + w]
    ref = scene[..., y0 + dy : y0 + dy + h, x0 + dx : x0 + dx + w]
    lr = F.avg_pool2d(target, upscale)
    return lr.contiguous().to(device), ref.contiguous().to(device), target.contiguous().to(device)


@dataclass(frozen=True)
class PrecisionReport:
    """Autocast output vs float32 output of the same model and inputs.

    Attributes:
        autocast_dtype: the autocast dtype compared.
        output_dtype: the dtype the model returned under autocast.
        max_abs_diff, mean_abs_diff: over all output elements.
        psnr_db: PSNR with peak 1.0 (images in [0, 1]).
        psnr_range_db: PSNR with the float32 output's range as the peak (meaningful when the
            output is not image-scaled, e.g. with random weights).
    """

    autocast_dtype: str
    output_dtype: str
    max_abs_diff: float
    mean_abs_diff: float
    psnr_db: float
    psnr_range_db: float


def compare_autocast(model: nn.Module, *inputs: Tensor, dtype: torch.dtype = torch.bfloat16) -> PrecisionReport:
    """Run ``model(*inputs)`` in float32 and under autocast(``dtype``) and compare (no autograd).

    The model is put in eval mode; the autocast device is that of the first input.
    """
    model.eval()
    device = inputs[0].device.type
    with torch.no_grad():
        reference = model(*inputs).float()
        with torch.autocast(device, dtype=dtype):
            out = model(*inputs)
    diff = (out.float() - reference).abs()
    value_range = (reference.max() - reference.min()).item() or 1.0
    return PrecisionReport(
        autocast_dtype=str(dtype).removeprefix("torch."),
        output_dtype=str(out.dtype).removeprefix("torch."),
        max_abs_diff=diff.max().item(),
        mean_abs_diff=diff.mean().item(),
        psnr_db=_psnr_all(out, reference),
        psnr_range_db=_psnr_all(out, reference, peak=value_range),
    )
