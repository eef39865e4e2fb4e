"""Loss components: ``loss(pred, target)`` returns a scalar tensor.

Example:
    >>> import torch
    >>> from refsr_blocks.components.losses import CharbonnierLoss
    >>> round(CharbonnierLoss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)).item(), 6)
    0.001
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.registry import register_component

__all__ = ["CharbonnierLoss", "L1Loss", "MSELoss"]


def _as_float(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Both inputs in float32, or float64 if ``pred`` is float64 (losses never run in half)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return pred.to(dtype), target.to(dtype)


@register_component("loss", "charbonnier")
class CharbonnierLoss(nn.Module):
    """Charbonnier penalty ``mean(sqrt((pred - target)^2 + eps^2))``, CrossNet's loss.

    A differentiable L1: it behaves like L1 for large errors and stays smooth at zero.
    Computed in float32 (``eps^2 = 1e-6`` is below fp16's resolution).

    Args:
        eps: the smoothing constant; the paper uses 1e-3.
    """

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.eps = float(eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _as_float(pred, target)
        diff = pred - target
        return torch.sqrt(diff * diff + self.eps**2).mean()


@register_component("loss", "l1")
class L1Loss(nn.Module):
    """Mean absolute error."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(*_as_float(pred, target))


@register_component("loss", "mse")
class MSELoss(nn.Module):
    """Mean squared error."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(*_as_float(pred, target))
