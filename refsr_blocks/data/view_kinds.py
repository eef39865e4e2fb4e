"""Random reference-view geometry, one sampler per kind of viewpoint change.

Each kind draws a :class:`~refsr_blocks.data.view_geometry.LayeredView`: one homography per
depth layer, target pixel → reference pixel, built around the two images' centres
(``A = T(c_ref) · M · T(-c_target)``). Pixel amounts scale with :class:`ViewRanges`
(``max_shift``, ``max_parallax``, in HR pixels); angles and ratios are fixed per kind:

| kind | geometry (defaults: ``max_shift`` 48, ``max_parallax`` 16) |
| --- | --- |
| ``shift2d`` | 2-D shift, each axis in ±max_shift; 1-3 layers moving up to max_parallax / 4 more along one random direction (small local parallax) |
| ``unrectified`` | 2-4 layers, horizontal disparity d0 + Δk (d0 ≤ max_shift, Δk ≤ max_parallax, nearer larger, random side); vertical disparity v0 + ρ·dx (v0 within ±0.15·max_shift, ρ within ±0.1); roll ±4°; focal ratio 0.98-1.02 |
| ``homography`` | each corner of the frame moved by up to ±15 % of the width / height |
| ``scale`` | zoom 0.6-1.6× (log-uniform) about a point in the central half, shift ±max_shift / 2; > 1 is a zoomed-in, telephoto-like reference |
| ``rotation`` | in-plane rotation ±15°, shift ±max_shift / 2 |
| ``partial_overlap`` | the reference frame covers 40-80 % of the target's area (a shift in a random direction), with rotation ±3° and scale 0.9-1.1 |
| ``layers`` | 2-4 layers; the background shifts ±max_shift / 2, nearer layers move max_parallax / 4 to 2·max_parallax more along one random direction, so they cover background the target shows and uncover background it does not |

``max_shift`` and ``max_parallax`` are capped at 25 % and 10 % of the target's shorter side
(48 and 19 px for a 192-px patch), so small targets keep overlapping their reference.

With ``free_size`` (the ``scale`` and ``partial_overlap`` kinds only), the reference's height
and width are drawn independently in 0.75-1.33× the target's: another size and aspect.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._random import randint, uniform, uniform_float
from .errors import DataError
from .view_geometry import LayeredView, transform_grid

__all__ = ["DEFAULT_RANGES", "FREE_SIZE_KINDS", "GEOMETRIC_KINDS", "ViewRanges", "overlap_fraction", "sample_view"]

#: Limits of the fixed amounts (see the module docstring).
ROLL_DEGREES = 4.0
ROTATION_DEGREES = 15.0
CORNER_FRACTION = 0.15
ZOOM_RANGE = (0.6, 1.6)
OVERLAP_RANGE = (0.4, 0.8)
FREE_SIZE_RANGE = (0.75, 4 / 3)
#: ``max_shift`` and ``max_parallax`` are capped at these fractions of the target's shorter side.
SHIFT_CAP = 0.25
PARALLAX_CAP = 0.1

Size = tuple[int, int]


@dataclass(frozen=True)
class ViewRanges:
    """Pixel amounts of the viewpoint changes (HR pixels of the target).

    Attributes:
        max_shift: bound of global shifts and stereo disparities.
        max_parallax: bound of the extra motion of nearer depth layers.
    """

    max_shift: float = 48.0
    max_parallax: float = 16.0


#: The default amounts.
DEFAULT_RANGES = ViewRanges()


def _translate(tx: float, ty: float) -> Tensor:
    m = torch.eye(3, dtype=torch.float64)
    m[0, 2], m[1, 2] = tx, ty
    return m


def _rotate_scale(degrees: float, scale: float = 1.0) -> Tensor:
    a = math.radians(degrees)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _centre(size: Size) -> tuple[float, float]:
    return (size[1] - 1) / 2, (size[0] - 1) / 2


def _about_centres(motion: Tensor, size: Size, ref_size: Size) -> Tensor:
    """``T(c_ref) · motion · T(-c_target)``: ``motion`` acts about the images' centres."""
    (cx, cy), (rx, ry) = _centre(size), _centre(ref_size)
    return _translate(rx, ry) @ motion @ _translate(-cx, -cy)


def _direction(generator: torch.Generator | None) -> tuple[float, float]:
    angle = uniform_float(-math.pi, math.pi, generator)
    return math.cos(angle), math.sin(angle)


def _sorted_amounts(n: int, low: float, high: float, generator: torch.Generator | None) -> list[float]:
    """0 for the background, then ``n - 1`` increasing amounts in [low, high) for nearer layers."""
    return [0.0, *uniform(low, high, generator, (n - 1,)).sort().values.tolist()]


def overlap_fraction(motion: Tensor, size: Size, ref_size: Size, samples: int = 24) -> float:
    """The fraction of the target that ``motion`` (target → reference) maps inside the reference."""
    h, w = size
    ys = torch.linspace(0, h - 1, samples, dtype=torch.float64)
    xs = torch.linspace(0, w - 1, samples, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))
    q = transform_grid(motion, grid)
    inside = (q[0] >= 0) & (q[0] <= ref_size[1] - 1) & (q[1] >= 0) & (q[1] <= ref_size[0] - 1)
    return float(inside.double().mean())


def _shift2d(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    t = uniform(-r.max_shift, r.max_shift, g, (2,)).tolist()
    n = randint(1, 4, g)
    ux, uy = _direction(g)
    amounts = _sorted_amounts(n, 0.0, r.max_parallax / 4, g)
    return [_about_centres(_translate(t[0] + m * ux, t[1] + m * uy), size, ref_size) for m in amounts]


def _unrectified(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    n = randint(2, 5, g)
    side = 1.0 if uniform_float(0, 1, g) < 0.5 else -1.0
    base = uniform_float(0, r.max_shift, g)
    extra = _sorted_amounts(n, 0.0, r.max_parallax, g)
    v0 = uniform_float(-0.15 * r.max_shift, 0.15 * r.max_shift, g)
    rho = uniform_float(-0.1, 0.1, g)
    roll = _rotate_scale(uniform_float(-ROLL_DEGREES, ROLL_DEGREES, g), uniform_float(0.98, 1.02, g))
    motions = []
    for e in extra:
        dx = side * (base + e)
        motions.append(_about_centres(_translate(dx, v0 + rho * dx) @ roll, size, ref_size))
    return motions


def _homography(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    h, w = size
    src = torch.tensor([[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]], dtype=torch.float64)
    moves = uniform(-CORNER_FRACTION, CORNER_FRACTION, g, (4, 2)).double() * torch.tensor([w, h], dtype=torch.float64)
    import kornia  # imported on first use: a heavy import

    homography = kornia.geometry.transform.get_perspective_transform(src[None], (src + moves)[None])[0]
    (cx, cy), (rx, ry) = _centre(size), _centre(ref_size)
    return [_translate(rx - cx, ry - cy) @ homography]


def _scale(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    lo, hi = ZOOM_RANGE
    zoom = math.exp(uniform_float(math.log(lo), math.log(hi), g))
    h, w = size
    cx, cy = _centre(size)
    zx, zy = cx + uniform_float(-0.25, 0.25, g) * w, cy + uniform_float(-0.25, 0.25, g) * h
    t = uniform(-r.max_shift / 2, r.max_shift / 2, g, (2,)).tolist()
    rx, ry = _centre(ref_size)
    return [_translate(rx + t[0], ry + t[1]) @ _rotate_scale(0.0, zoom) @ _translate(-zx, -zy)]


def _rotation(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    angle = uniform_float(-ROTATION_DEGREES, ROTATION_DEGREES, g)
    t = uniform(-r.max_shift / 2, r.max_shift / 2, g, (2,)).tolist()
    return [_about_centres(_translate(t[0], t[1]) @ _rotate_scale(angle), size, ref_size)]


def _partial_overlap(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    goal = uniform_float(*OVERLAP_RANGE, g)
    ux, uy = _direction(g)
    turn = _rotate_scale(uniform_float(-3.0, 3.0, g), uniform_float(0.9, 1.1, g))
    # The overlap falls as the shift along (ux, uy) grows: bisect for the drawn fraction.
    low, high = 0.0, 2.0 * max(size)
    for _ in range(30):
        mid = (low + high) / 2
        if (
            overlap_fraction(_about_centres(_translate(mid * ux, mid * uy) @ turn, size, ref_size), size, ref_size)
            > goal
        ):
            low = mid
        else:
            high = mid
    return [_about_centres(_translate(low * ux, low * uy) @ turn, size, ref_size)]


def _layers(size: Size, ref_size: Size, r: ViewRanges, g: torch.Generator | None) -> list[Tensor]:
    n = randint(2, 5, g)
    b = uniform(-r.max_shift / 2, r.max_shift / 2, g, (2,)).tolist()
    ux, uy = _direction(g)
    amounts = _sorted_amounts(n, r.max_parallax / 4, 2 * r.max_parallax, g)
    return [_about_centres(_translate(b[0] + m * ux, b[1] + m * uy), size, ref_size) for m in amounts]


_SAMPLERS: dict[str, Callable[[Size, Size, ViewRanges, torch.Generator | None], list[Tensor]]] = {
    "shift2d": _shift2d,
    "unrectified": _unrectified,
    "homography": _homography,
    "scale": _scale,
    "rotation": _rotation,
    "partial_overlap": _partial_overlap,
    "layers": _layers,
}

#: The kinds made from single photos, in report order.
GEOMETRIC_KINDS: tuple[str, ...] = tuple(_SAMPLERS)
#: Kinds whose reference may take another size and aspect (``free_size``).
FREE_SIZE_KINDS: tuple[str, ...] = ("scale", "partial_overlap")


def _free_size(size: Size, multiple: int, g: torch.Generator | None) -> Size:
    lo, hi = FREE_SIZE_RANGE
    out = []
    for n in size:
        f = math.exp(uniform_float(math.log(lo), math.log(hi), g))
        out.append(max(multiple, round(n * f / multiple) * multiple))
    return out[0], out[1]


def sample_view(
    kind: str,
    size: Size,
    generator: torch.Generator | None,
    ranges: ViewRanges = DEFAULT_RANGES,
    *,
    free_size: bool = False,
    multiple: int = 8,
) -> LayeredView:
    """Draw the reference geometry of one ``kind`` for a target of ``size`` (H, W).

    Args:
        kind: one of :data:`GEOMETRIC_KINDS`.
        size: the target's (H, W).
        generator: the random source (``None``: torch's global RNG).
        ranges: the pixel amounts.
        free_size: draw another reference size (kinds in :data:`FREE_SIZE_KINDS`; others
            keep the target's size).
        multiple: a free reference size is a multiple of this.

    Returns:
        The :class:`~refsr_blocks.data.view_geometry.LayeredView`.
    """
    if kind not in _SAMPLERS:
        raise DataError(f"unknown viewpoint kind {kind!r}; kinds: {', '.join(GEOMETRIC_KINDS)}")
    ref_size = _free_size(size, multiple, generator) if free_size and kind in FREE_SIZE_KINDS else size
    # Small targets (tests, tiny patches) keep overlapping their reference.
    side = min(size)
    capped = ViewRanges(min(ranges.max_shift, SHIFT_CAP * side), min(ranges.max_parallax, PARALLAX_CAP * side))
    motions = _SAMPLERS[kind](size, ref_size, capped, generator)
    return LayeredView(motions=torch.stack(motions), ref_size=ref_size)
