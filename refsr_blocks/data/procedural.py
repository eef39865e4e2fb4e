"""Deterministic procedural images with natural-image statistics and plenty of fine detail.

Used when no sample photos are installed. Each image is a 1/f ("pink") colour noise field —
the power spectrum of natural photos — overlaid with shapes at several scales (ellipses,
rectangles, triangles, thin lines) filled with flat colour, stripes, checkers, rings or fine
noise, and blocks of glyph-like "text". Edges are sharp (about one pixel of antialiasing), so
super-resolution has high-frequency detail to recover and a reference has detail to transfer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_positive_int
from .errors import DataError

__all__ = ["pink_noise", "procedural_image"]


def pink_noise(height: int, width: int, generator: torch.Generator, *, beta: float = 1.0, channels: int = 1) -> Tensor:
    """Random-phase noise with amplitude spectrum ∝ 1/f^beta, normalised to zero mean and unit
    standard deviation per channel. Returns channels×height×width float32."""
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    f = torch.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amplitude = f.pow(-beta)
    amplitude[0, 0] = 0.0
    phase = torch.rand((channels, height, width // 2 + 1), generator=generator) * (2 * math.pi)
    spectrum = torch.polar(amplitude.expand(channels, -1, -1).contiguous(), phase)
    field = torch.fft.irfft2(spectrum, s=(height, width))
    field = field - field.mean(dim=(-2, -1), keepdim=True)
    return field / field.std(dim=(-2, -1), keepdim=True).clamp_min(1e-8)


class _Painter:
    """Draws onto a 3×H×W canvas, one shape at a time, inside the shape's bounding box."""

    def __init__(self, canvas: Tensor, generator: torch.Generator) -> None:
        self.canvas = canvas
        self.g = generator
        self.h, self.w = canvas.shape[-2:]

    def rand(self, low: float = 0.0, high: float = 1.0) -> float:
        return float(torch.rand((), generator=self.g)) * (high - low) + low

    def randint(self, low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=self.g))

    def colour(self) -> Tensor:
        base = torch.rand(3, generator=self.g)
        grey = torch.full((3,), self.rand(0.05, 0.95))
        return (0.6 * base + 0.4 * grey).view(3, 1, 1)

    def fill(self, yy: Tensor, xx: Tensor) -> Tensor:
        """A 3×h×w fill for a shape over the pixel grid (yy, xx)."""
        kind = self.randint(0, 6)
        c1, c2 = self.colour(), self.colour()
        theta = self.rand(0, math.pi)
        u = xx * math.cos(theta) + yy * math.sin(theta)
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        period = math.exp(self.rand(math.log(2.5), math.log(24.0)))
        if kind == 0:  # flat
            return c1.expand(3, *yy.shape)
        if kind == 1:  # square-wave stripes, antialiased
            t = (torch.sin(2 * math.pi * u / period) * period / 2).clamp(-0.5, 0.5) + 0.5
        elif kind == 2:  # checker
            a = torch.sin(2 * math.pi * u / period) * torch.sin(2 * math.pi * v / period)
            t = (a * period).clamp(-0.5, 0.5) + 0.5
        elif kind == 3:  # rings with a frequency sweep (zone plate)
            r2 = (xx - xx.mean()) ** 2 + (yy - yy.mean()) ** 2
            t = 0.5 + 0.5 * torch.cos(math.pi * r2 / (period * self.rand(20, 80)))
        elif kind == 4:  # fine noise texture
            t = (torch.rand(yy.shape, generator=self.g) > 0.5).float()
            t = F.avg_pool2d(t[None, None], 3, 1, 1, count_include_pad=False)[0, 0] if self.rand() < 0.5 else t
        else:  # smooth sinusoidal grating
            t = 0.5 + 0.5 * torch.sin(2 * math.pi * u / period)
        return c1 + (c2 - c1) * t

    def paste(self, top: int, left: int, alpha: Tensor, fill: Tensor) -> None:
        h, w = alpha.shape
        region = self.canvas[:, top : top + h, left : left + w]
        region.mul_(1 - alpha).add_(alpha * fill)

    def grid(self, cy: float, cx: float, radius: float) -> tuple[int, int, Tensor, Tensor] | None:
        top, left = max(0, int(cy - radius) - 1), max(0, int(cx - radius) - 1)
        bottom, right = min(self.h, int(cy + radius) + 2), min(self.w, int(cx + radius) + 2)
        if bottom <= top or right <= left:
            return None
        yy, xx = torch.meshgrid(
            torch.arange(top, bottom, dtype=torch.float32) - cy,
            torch.arange(left, right, dtype=torch.float32) - cx,
            indexing="ij",
        )
        return top, left, yy, xx

    def shape(self, size: float) -> None:
        cy, cx = self.rand(0, self.h), self.rand(0, self.w)
        g = self.grid(cy, cx, size * 1.5)
        if g is None:
            return
        top, left, yy, xx = g
        kind = self.randint(0, 4)
        theta = self.rand(0, math.pi)
        u = xx * math.cos(theta) + yy * math.sin(theta)
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        if kind == 0:  # ellipse; signed distance approximated by the radial scale
            a, b = size, size * self.rand(0.3, 1.0)
            r = torch.sqrt((u / a) ** 2 + (v / b) ** 2)
            sd = (r - 1) * b
        elif kind == 1:  # rectangle
            a, b = size, size * self.rand(0.2, 1.0)
            sd = torch.maximum(u.abs() - a, v.abs() - b)
        elif kind == 2:  # triangle: three half-planes
            sd = torch.full_like(u, -1e9)
            start = self.rand(0, 2 * math.pi)
            for k in range(3):
                ang = start + 2 * math.pi * k / 3 + self.rand(-0.3, 0.3)
                sd = torch.maximum(sd, xx * math.cos(ang) + yy * math.sin(ang) - size * 0.6)
        else:  # thin line segment
            half_len, width = size * 1.4, self.rand(0.6, 2.5)
            sd = torch.maximum(v.abs() - width / 2, u.abs() - half_len)
        alpha = (0.5 - sd).clamp(0, 1)
        if float(alpha.max()) > 0:
            self.paste(top, left, alpha, self.fill(yy, xx))

    def text(self, glyph: int) -> None:
        """A box of random 5×3 glyphs, ``glyph`` pixels per glyph cell, in lines."""
        lines, chars = self.randint(2, 7), self.randint(8, 30)
        cells = torch.rand((lines, 7, chars, 4), generator=self.g) < 0.45
        cells[:, 5:, :, :] = False  # line spacing
        cells[:, :, :, 3] = False  # letter spacing
        spaces = torch.rand((lines, 1, chars, 1), generator=self.g) < 0.18
        cells = cells & ~spaces  # word gaps
        bitmap = cells.reshape(lines * 7, chars * 4).float()
        bitmap = F.interpolate(bitmap[None, None], scale_factor=glyph, mode="nearest")[0, 0]
        bitmap = F.pad(bitmap, (2 * glyph, 2 * glyph, 2 * glyph, 2 * glyph))
        bh, bw = bitmap.shape
        if bh >= self.h or bw >= self.w:
            return
        top, left = self.randint(0, self.h - bh), self.randint(0, self.w - bw)
        paper = 0.75 + 0.25 * torch.rand(3, 1, 1, generator=self.g)
        ink = 0.25 * torch.rand(3, 1, 1, generator=self.g)
        if self.rand() < 0.3:
            paper, ink = ink, paper
        self.paste(top, left, torch.ones_like(bitmap), paper + (ink - paper) * bitmap)


def procedural_image(height: int = 384, width: int = 512, seed: int = 0) -> Tensor:
    """A deterministic natural-looking test image, 3×height×width float32 in [0, 1].

    Same ``seed`` and size, same image (on any machine with the same torch version).

    Example:
        >>> img = procedural_image(64, 96, seed=1)
        >>> img.shape, img.dtype, bool(img.min() >= 0) and bool(img.max() <= 1)
        (torch.Size([3, 64, 96]), torch.float32, True)
    """
    h = check_positive_int(height, "height")
    w = check_positive_int(width, "width")
    if h < 16 or w < 16:
        raise DataError(f"procedural images must be at least 16×16, got {h}×{w}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"seed must be an int, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    noise = pink_noise(h, w, g, beta=1.0 + 0.3 * float(torch.rand((), generator=g)), channels=3)
    chroma_axes = 0.35 * torch.linalg.qr(torch.randn(3, 3, generator=g))[0][:, :2]  # 3×2, random hues
    luminance = 0.5 + 0.17 * noise[0]
    tint = torch.rand(3, 1, 1, generator=g) * 0.3 - 0.15
    canvas = (luminance + tint + 0.17 * torch.einsum("ij,jhw->ihw", chroma_axes, noise[1:])).contiguous()

    painter = _Painter(canvas, g)
    side = min(h, w)
    n_shapes = max(8, (h * w) // 5000)
    sizes = torch.exp(torch.empty(n_shapes).uniform_(math.log(2.5), math.log(0.3 * side), generator=g))
    for size in sizes.sort(descending=True).values.tolist():  # big first: small ones on top
        painter.shape(size)
        if painter.rand() < 0.08:
            painter.text(painter.randint(1, 4))
    for _ in range(max(1, (h * w) // 60000)):
        painter.text(painter.randint(1, 4))
    shade = 1.0 + 0.15 * pink_noise(h, w, g, beta=2.5)  # soft illumination
    return (canvas * shade).clamp(0.0, 1.0)
