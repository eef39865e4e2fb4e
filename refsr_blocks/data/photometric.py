"""Small photometric differences between two views (exposure, white balance, sensor noise)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from ..core.errors import did_you_mean
from ._checks import check_image
from ._random import uniform
from .errors import DataError

__all__ = ["DEFAULT_PHOTOMETRIC", "PhotometricJitter", "photometric_jitter"]


@dataclass(frozen=True)
class PhotometricJitter:
    """Random gamma, contrast, brightness, per-channel gain and Gaussian noise.

    Each amount is the half-width of a uniform range: ``gamma=0.1`` draws γ with
    log γ ∈ [-log 1.1, log 1.1], ``contrast=0.1`` a factor in [0.9, 1.1] applied around the
    image mean, ``brightness=0.03`` an offset in [-0.03, 0.03], ``color=0.03`` a gain in
    [0.97, 1.03] per channel, and ``noise=0.01`` a noise standard deviation in [0, 0.01].
    All zeros is the identity. The result is clamped to [0, 1].

    Example:
        >>> import torch
        >>> jitter = PhotometricJitter()
        >>> out = jitter(torch.rand(3, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([3, 8, 8]), True, True)
    """

    gamma: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.03
    color: float = 0.03
    noise: float = 0.01

    def __post_init__(self) -> None:
        for name in ("gamma", "contrast", "brightness", "color", "noise"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise DataError(f"PhotometricJitter.{name} must be a number in [0, 1), got {value!r}")

    def __call__(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Jitter a 3×H×W float image in [0, 1]; returns a new 3×H×W tensor."""
        img = check_image(img, "img", batched=False)
        out = img.float().clamp(0, 1)
        g = math.log1p(self.gamma)
        import kornia  # imported on first use: a heavy import

        out = kornia.enhance.adjust_gamma(out, float(torch.exp(uniform(-g, g, generator))))
        out = kornia.enhance.adjust_contrast_with_mean_subtraction(
            out, float(uniform(1 - self.contrast, 1 + self.contrast, generator))
        )
        out = out + uniform(-self.brightness, self.brightness, generator)
        gains = uniform(1 - self.color, 1 + self.color, generator, (out.shape[0], 1, 1))
        out = out * gains
        sigma = uniform(0, self.noise, generator)
        if self.noise > 0:
            out = out + sigma * torch.randn(out.shape, generator=generator)
        return out.clamp(0, 1).to(img.dtype)


#: The default amounts of :class:`PhotometricJitter`, as plain data (what a configuration states).
DEFAULT_PHOTOMETRIC: Mapping[str, float] = MappingProxyType(dataclasses.asdict(PhotometricJitter()))


def photometric_jitter(
    value: PhotometricJitter | Mapping[str, Any] | None, what: str = "photometric"
) -> PhotometricJitter | None:
    """A :class:`PhotometricJitter` from itself, from a mapping of its amounts, or ``None`` (none).

    Args:
        value: the jitter, ``{"gamma": 0.1, ...}`` (missing amounts take their defaults), or None.
        what: how error messages name the value.

    Raises:
        DataError: an unknown amount (with the closest name), or an amount out of range.

    Example:
        >>> photometric_jitter({"noise": 0.0}) == PhotometricJitter(noise=0.0)
        True
    """
    if value is None or isinstance(value, PhotometricJitter):
        return value
    if not isinstance(value, Mapping):
        raise DataError(f"{what} must be a PhotometricJitter, a mapping of its amounts or None, got {value!r}")
    for key in value:
        if key not in DEFAULT_PHOTOMETRIC:
            raise DataError(
                f"{what}: unknown amount {key!r}.{did_you_mean(key, DEFAULT_PHOTOMETRIC)} "
                f"Amounts: {', '.join(DEFAULT_PHOTOMETRIC)}."
            )
    return PhotometricJitter(**value)
