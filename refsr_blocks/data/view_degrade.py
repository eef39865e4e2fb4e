"""Differences between two cameras' images: photometry, blur, noise and JPEG re-compression.

Applied to the reference only (the target is the ground truth), each with its own
probability, in a camera's order: optics (blur), colour processing (photometric), sensor
noise, then compression.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ._random import randint, uniform_float
from .errors import DataError
from .photometric import DEFAULT_PHOTOMETRIC, PhotometricJitter, photometric_jitter

__all__ = ["BLUR_SIGMA", "JPEG_QUALITY", "NOISE_SIGMA", "ReferenceDegradation", "jpeg_roundtrip"]

#: Gaussian blur sigma range, HR pixels (a softer lens, slight defocus).
BLUR_SIGMA = (0.4, 1.6)
#: Gaussian noise standard deviation range, on [0, 1] values.
NOISE_SIGMA = (0.003, 0.02)
#: JPEG quality range (PIL's scale).
JPEG_QUALITY = (35, 90)


def jpeg_roundtrip(img: Tensor, quality: int) -> Tensor:
    """``img`` (3×H×W in [0, 1]) written as a JPEG of ``quality`` in memory and read back."""
    array = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    back = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(back.copy()).permute(2, 0, 1).contiguous()


def _probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ReferenceDegradation:
    """Random differences of a reference from the target's camera.

    Attributes:
        p_photometric: probability of a :class:`~refsr_blocks.data.PhotometricJitter`.
        p_blur: probability of a Gaussian blur, sigma in :data:`BLUR_SIGMA`.
        p_noise: probability of Gaussian noise, sigma in :data:`NOISE_SIGMA`.
        p_jpeg: probability of a JPEG round trip, quality in :data:`JPEG_QUALITY`.
        photometric: the jitter's amounts (a mapping, see :func:`photometric_jitter`).
    """

    p_photometric: float = 0.8
    p_blur: float = 0.3
    p_noise: float = 0.3
    p_jpeg: float = 0.3
    photometric: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PHOTOMETRIC))

    def __post_init__(self) -> None:
        for name in ("p_photometric", "p_blur", "p_noise", "p_jpeg"):
            _probability(getattr(self, name), name)
        object.__setattr__(self, "_jitter", photometric_jitter(dict(self.photometric)))

    def __call__(self, ref: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Degrade a 3×H×W reference in [0, 1]; returns a new 3×H×W float32 tensor in [0, 1].

        Every draw is made whether or not its change is applied, so one probability does not
        shift the random stream of the others.
        """
        apply = [
            uniform_float(0, 1, generator) < p for p in (self.p_blur, self.p_photometric, self.p_noise, self.p_jpeg)
        ]
        sigma = uniform_float(*BLUR_SIGMA, generator)
        noise = uniform_float(*NOISE_SIGMA, generator)
        quality = randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, generator)
        out = ref.float()
        if apply[0]:
            k = 2 * int(3 * sigma + 0.5) + 1
            import kornia  # imported on first use: a heavy import

            out = kornia.filters.gaussian_blur2d(out[None], (k, k), (sigma, sigma), border_type="reflect")[0]
        if apply[1]:
            jitter: PhotometricJitter | None = self._jitter  # type: ignore[attr-defined]
            if jitter is not None:
                out = jitter(out.clamp(0, 1), generator=generator)
        if apply[2]:
            out = out + noise * torch.randn(out.shape, generator=generator)
        out = out.clamp(0, 1)
        if apply[3]:
            out = jpeg_roundtrip(out, quality)
        return out

    @classmethod
    def from_options(cls, **options: Any) -> ReferenceDegradation:
        """Build from keyword options, with a :class:`~refsr_blocks.data.errors.DataError` for bad ones."""
        photometric = options.pop("photometric", None)
        if photometric is not None and not isinstance(photometric, Mapping):
            raise DataError(f"photometric must be a mapping of PhotometricJitter amounts, got {photometric!r}")
        photometric_jitter(photometric)  # unknown or out-of-range amounts fail here, named
        return cls(**options, photometric=dict(photometric if photometric is not None else DEFAULT_PHOTOMETRIC))
