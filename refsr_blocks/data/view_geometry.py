"""A second camera's view of a photo seen as a scene of depth layers, with the exact flow.

The scene is the target view: pixel ``p`` of the target (``H×W``) shows scene point ``p``.
Each scene point belongs to one depth layer ``k`` (0 = farthest, drawn first); layer ``k``
moves by its own homography ``A_k`` (3×3, target pixels → reference pixels), so the point
seen at ``p`` in the target is seen at ``q = A_k(p)`` in the reference (``Hr×Wr``, which may
differ from ``H×W``). Rendering works backwards: each reference pixel ``q`` reads the photo
at ``A_k⁻¹(q)`` for every layer, and nearer layers cover farther ones where their (soft,
one-pixel) masks say so. The flow on the target grid is then exact::

    target[p] ≈ ref[p + flow[p]],   flow[p] = A_L(p)(p) - p   (channel 0 = x, 1 = y)

in the reference's own pixel grid, and ``valid[p]`` is 1 where ``p + flow[p]`` lies inside
the reference and layer ``L(p)`` is the one visible there (not covered by a nearer layer).

The photo is placed under the target by a :class:`Placement` (photo pixel = ``f·p + o``):
``f > 1`` makes the target a downscaled view of the photo, which is how a reference can be
sharper than the target (a zoomed-in, telephoto-like reference). Wherever a view reads
beyond the photo it sees the photo mirrored at its border (a second camera sees content
where the first sees none; mirrored content resembles it more than a replicated edge).
Images are resampled with the library's bicubic :func:`~refsr_blocks.ops.warp.sample`
after an antialiasing reduction wherever a view reads the photo sparser than its pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.warp import pixel_grid, sample
from ._random import randint, uniform
from .disparity import _smooth_noise
from .errors import DataError

__all__ = [
    "LayeredView",
    "Placement",
    "RenderedPair",
    "fill_hidden",
    "layer_labels",
    "local_scale",
    "render",
    "render_pair",
    "transform_grid",
]

#: A view reading the photo more sparsely than this (photo pixels per output pixel) is
#: antialiased first; below it bicubic sampling aliases too little to matter.
_ANTIALIAS_ABOVE = 1.15
#: A reference pixel counts as showing one layer alone when its visibility reaches this.
_VISIBLE = 0.99


@dataclass(frozen=True)
class LayeredView:
    """The geometry of a reference view.

    Attributes:
        motions: n×3×3 float64, ``A_k``: target pixel → reference pixel for layer ``k``
            (0 = farthest). One layer is a planar scene (a homography).
        ref_size: the reference's (Hr, Wr).
    """

    motions: Tensor
    ref_size: tuple[int, int]

    @property
    def layers(self) -> int:
        return int(self.motions.shape[0])


@dataclass(frozen=True)
class Placement:
    """Where the target lies in the photo: photo pixel = ``scale · p + offset`` (target pixel ``p``)."""

    scale: float
    offset: tuple[float, float]

    def matrix(self) -> Tensor:
        """3×3 float64: target pixel → photo pixel."""
        ox, oy = self.offset
        return torch.tensor([[self.scale, 0.0, ox], [0.0, self.scale, oy], [0.0, 0.0, 1.0]], dtype=torch.float64)


@dataclass(frozen=True)
class RenderedPair:
    """A target view and a reference view of one photo, and the flow between them.

    Attributes:
        hr: 3×H×W target, float32 in [0, 1].
        ref: 3×Hr×Wr reference, float32 in [0, 1] (no photometric changes yet).
        flow: 2×H×W float32, ``hr[p] ≈ ref[p + flow[p]]`` in reference pixels.
        valid: 1×H×W float32, 1 where that holds (inside the reference, not occluded).
        labels: 1×H×W int64, the depth layer of each target pixel.
    """

    hr: Tensor
    ref: Tensor
    flow: Tensor
    valid: Tensor
    labels: Tensor


def transform_grid(matrix: Tensor, points: Tensor) -> Tensor:
    """Apply a 3×3 homography to points 2×… (x, y); returns 2×… float64."""
    flat = points.to(torch.float64).reshape(2, -1).T[None]  # 1×N×2, kornia's layout
    import kornia  # imported on first use: a heavy import

    out = kornia.geometry.linalg.transform_points(matrix.to(torch.float64)[None], flat)[0].T
    return out.reshape(points.shape)


def local_scale(matrix: Tensor, at: tuple[float, float]) -> float:
    """Output pixels per input pixel of a homography near ``at`` (x, y): sqrt |det J|."""
    x, y = at
    pts = torch.tensor([[x, x + 1.0, x], [y, y, y + 1.0]], dtype=torch.float64)
    m = transform_grid(matrix, pts)
    jac = torch.stack((m[:, 1] - m[:, 0], m[:, 2] - m[:, 0]))
    return math.sqrt(abs(float(torch.linalg.det(jac))))


def _reduce(source: Tensor, factor: float) -> tuple[Tensor, Tensor]:
    """``source`` (C×H×W) reduced by ``factor`` with antialiasing, and the 3×3 map from
    source pixels to reduced pixels (pixel centres: ``x_src = f·x_small + (f - 1) / 2``)."""
    h, w = source.shape[-2:]
    sh, sw = max(2, round(h / factor)), max(2, round(w / factor))
    small = F.interpolate(source[None], size=(sh, sw), mode="bicubic", antialias=True, align_corners=False)[0]
    fx, fy = w / sw, h / sh
    to_small = torch.tensor(
        [[1 / fx, 0.0, -(fx - 1) / (2 * fx)], [0.0, 1 / fy, -(fy - 1) / (2 * fy)], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    return small, to_small


def render(
    source: Tensor, to_source: Tensor, size: tuple[int, int], mode: str = "bicubic", where: Tensor | None = None
) -> Tensor:
    """``out[q] = source[to_source(q)]`` for the pixels ``q`` of an ``size`` (h, w) image.

    Where the map reads the source sparser than 1.15 source pixels per output pixel (at the
    output's centre), the source is first reduced by that factor with an antialiasing filter,
    as a camera's pixels integrate light rather than point-sample it.

    Args:
        source: C×Hs×Ws float image; positions outside it read its border.
        to_source: 3×3 homography, output pixel → source pixel.
        size: output (h, w).
        mode: ``"bicubic"`` (images) or ``"bilinear"`` (masks).
        where: optional h×w boolean mask: only those pixels are computed, the others are 0
            (a near layer covers a small part of the reference).

    Returns:
        C×h×w, not clamped (bicubic overshoots at sharp edges).
    """
    h, w = size
    # Source pixels per output pixel; masks are not filtered (their soft edge is one pixel).
    factor = local_scale(to_source, ((w - 1) / 2, (h - 1) / 2)) if mode == "bicubic" else 1.0
    if factor > _ANTIALIAS_ABOVE:
        source, to_small = _reduce(source, factor)
        to_source = to_small @ to_source
    points = transform_grid(to_source, pixel_grid(h, w, dtype=torch.float64)[0]).float().reshape(1, 2, -1)
    if where is None:  # float32 positions: 4x faster than float64, exact to ~1e-4 px here
        return sample(source[None], points, mode=mode)[0].reshape(source.shape[0], h, w)
    out = source.new_zeros(source.shape[0], h * w)
    keep = where.reshape(-1).nonzero()[:, 0]
    out[:, keep] = sample(source[None], points[:, :, keep], mode=mode)[0]
    return out.reshape(source.shape[0], h, w)


def layer_labels(height: int, width: int, layers: int, generator: torch.Generator | None) -> Tensor:
    """A random partition of an ``height×width`` grid into ``layers`` depth layers, 1×H×W int64.

    A low-frequency random field (2-5 cells across) is cut at random quantiles (as
    :func:`~refsr_blocks.data.disparity.random_layered_disparity` cuts its depth map): blobs
    of every size, the higher values nearer.
    """
    noise = _smooth_noise(height, width, randint(2, 6, generator), generator)[0]
    if layers == 1:
        return torch.zeros(1, height, width, dtype=torch.int64)
    levels = (torch.arange(1, layers) + uniform(-0.3, 0.3, generator, (layers - 1,))) / layers
    sub = noise.flatten()[:: max(1, noise.numel() // 65536)]
    thresholds = torch.quantile(sub, levels.clamp(0.05, 0.95)).sort().values
    return torch.bucketize(noise, thresholds.contiguous()).to(torch.int64)


def fill_hidden(image: Tensor, own: Tensor) -> Tensor:
    """Replace what a background layer cannot know with a plausible guess of it.

    Where the photo shows a nearer layer, the background behind it is unknown; a reference
    that sees it (disoccluded) shows background there, not a copy of the foreground's edge.
    The guess has the background's colours (the normalised-convolution blur of the
    background's own pixels, sigma 4 % of the image) and the texture of another part of the
    image (the detail above that blur of the image rolled by half its size), so it is neither
    a smudge a network could learn to spot nor a copy of what the target shows.

    Args:
        image: C×H×W, the background layer rendered everywhere.
        own: 1×H×W in [0, 1], where that rendering shows the background itself.

    Returns:
        C×H×W: ``image`` where ``own`` is 1, the guess where it is 0, blended between.
    """
    h, w = image.shape[-2:]
    sigma = max(2.0, 0.04 * max(h, w))
    k = 2 * math.ceil(3 * sigma) + 1
    elsewhere = image.roll((h // 2, w // 2), dims=(-2, -1))
    import kornia  # imported on first use: a heavy import

    blur = kornia.filters.gaussian_blur2d(
        torch.cat((image * own, own, elsewhere))[None], (k, k), (sigma, sigma), border_type="reflect"
    )[0]
    c = image.shape[0]
    weight = blur[c : c + 1]
    mean = (image * own).sum(dim=(1, 2), keepdim=True) / own.sum().clamp_min(1.0)
    smooth = torch.where(weight > 1e-3, blur[:c] / weight.clamp_min(1e-3), mean)
    fill = smooth + (elsewhere - blur[c + 1 :])
    return own * image + (1 - own) * fill


def _window(photo: Tensor, box: tuple[float, float, float, float]) -> tuple[Tensor, Tensor]:
    """The part of ``photo`` (3×Hp×Wp) inside ``box`` (x0, y0, x1, y1, photo pixels), mirrored
    beyond the photo's border (one reflection at most; further out reads the edge), and the
    3×3 map from photo pixels to window pixels."""
    hp, wp = photo.shape[-2:]
    x0, y0 = math.floor(box[0]), math.floor(box[1])
    x1, y1 = math.ceil(box[2]) + 1, math.ceil(box[3]) + 1
    pad = [
        min(max(0, -x0), wp - 1),
        min(max(0, x1 - wp), wp - 1),
        min(max(0, -y0), hp - 1),
        min(max(0, y1 - hp), hp - 1),
    ]
    padded = F.pad(photo[None], pad, mode="reflect")[0] if any(pad) else photo
    cx0, cy0 = max(x0 + pad[0], 0), max(y0 + pad[2], 0)
    cx1, cy1 = min(x1 + pad[0], padded.shape[-1]), min(y1 + pad[2], padded.shape[-2])
    window = padded[:, cy0:cy1, cx0:cx1]
    shift = torch.eye(3, dtype=torch.float64)
    shift[0, 2], shift[1, 2] = pad[0] - cx0, pad[2] - cy0
    return window, shift


def _corners(h: int, w: int) -> Tensor:
    return torch.tensor([[0.0, w - 1.0, w - 1.0, 0.0], [0.0, 0.0, h - 1.0, h - 1.0]], dtype=torch.float64)


def scene_box(view: LayeredView, size: tuple[int, int], margin: float = 3.0) -> tuple[float, float, float, float]:
    """The box (x0, y0, x1, y1, target pixels) holding the target and everything the reference sees."""
    h, w = size
    hr_, wr_ = view.ref_size
    seen = [_corners(h, w)] + [transform_grid(torch.linalg.inv(a), _corners(hr_, wr_)) for a in view.motions]
    pts = torch.cat(seen, dim=1)
    # A wide view may reach far; three target sizes around the target is more than any kind asks.
    lo = torch.maximum(pts.amin(dim=1) - margin, torch.tensor([-w, -h], dtype=torch.float64))
    hi = torch.minimum(pts.amax(dim=1) + margin, torch.tensor([2.0 * w, 2.0 * h], dtype=torch.float64))
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def render_pair(
    photo: Tensor,
    size: tuple[int, int],
    view: LayeredView,
    placement: Placement,
    generator: torch.Generator | None,
) -> RenderedPair:
    """Render the target and the reference of ``photo`` (3×Hp×Wp) and the flow between them.

    Args:
        photo: 3×Hp×Wp float image in [0, 1].
        size: the target's (H, W).
        view: the reference's geometry (layer motions, size).
        placement: where the target lies in the photo.
        generator: draws the layers' shapes.

    Returns:
        A :class:`RenderedPair` (see the module docstring for the flow and validity).
    """
    h, w = size
    hr_, wr_ = view.ref_size
    if view.motions.ndim != 3 or view.motions.shape[1:] != (3, 3):
        raise DataError(f"view.motions must be n×3×3, got {tuple(view.motions.shape)}")
    box = scene_box(view, size)
    bx0, by0 = math.floor(box[0]), math.floor(box[1])
    labels_box = layer_labels(math.ceil(box[3]) - by0 + 1, math.ceil(box[2]) - bx0 + 1, view.layers, generator)
    to_box = torch.eye(3, dtype=torch.float64)
    to_box[0, 2], to_box[1, 2] = -bx0, -by0
    place = placement.matrix()
    corners = transform_grid(place, torch.tensor([[box[0], box[2]], [box[1], box[3]]], dtype=torch.float64))
    reach = 2 * placement.scale + 2  # bicubic taps and the antialias kernel around the box
    window, to_window = _window(
        photo,
        (
            float(corners[0].min()) - reach,
            float(corners[1].min()) - reach,
            float(corners[0].max()) + reach,
            float(corners[1].max()) + reach,
        ),
    )
    to_target = to_window @ place
    if placement.scale == 1.0 and all(float(v).is_integer() for v in to_target[:2, 2]):
        x, y = int(to_target[0, 2]), int(to_target[1, 2])  # the photo's own pixels, exactly
        hr = window[:, y : y + h, x : x + w]
    else:
        hr = render(window, to_target, size)

    # Reference: every layer rendered whole, nearer ones composited over farther ones.
    onehot = F.one_hot(labels_box[0], view.layers).permute(2, 0, 1).float()  # n×Hb×Wb
    ref = torch.zeros(3, hr_, wr_)
    alphas = []
    for k, motion in enumerate(view.motions):
        to_scene = torch.linalg.inv(motion)  # reference pixel → target pixel
        alpha = (
            torch.ones(1, hr_, wr_) if k == 0 else render(onehot[k : k + 1], to_box @ to_scene, (hr_, wr_), "bilinear")
        )
        image = render(window, to_window @ place @ to_scene, (hr_, wr_), where=None if k == 0 else alpha[0] > 0)
        if k == 0 and view.layers > 1:
            own = render(onehot[:1], to_box @ to_scene, (hr_, wr_), "bilinear")
            image = fill_hidden(image, own)
        ref = ref + alpha * (image - ref)
        alphas.append(alpha)
    cover = torch.ones(1, hr_, wr_)
    visible = [torch.empty(0)] * view.layers
    for k in reversed(range(view.layers)):  # what of layer k no nearer layer covers
        visible[k] = alphas[k] * cover
        cover = cover * (1 - alphas[k])

    # Flow and validity on the target grid, layer by layer.
    grid = pixel_grid(h, w, dtype=torch.float64)[0]  # 2×H×W
    labels = labels_box[:, -by0 : -by0 + h, -bx0 : -bx0 + w]
    flow = torch.zeros(2, h, w, dtype=torch.float64)
    seen = torch.zeros(1, h, w)
    for k, motion in enumerate(view.motions):
        q = transform_grid(motion, grid)
        here = labels == k
        flow = torch.where(here, q - grid, flow)
        vis = sample(visible[k][None], q.reshape(1, 2, -1).float(), mode="bilinear").reshape(1, h, w)
        seen = torch.where(here, vis, seen)
    q = grid + flow
    inside = (q[0:1] >= 0) & (q[0:1] <= wr_ - 1) & (q[1:2] >= 0) & (q[1:2] <= hr_ - 1)
    valid = (inside & (seen >= _VISIBLE)).float()
    return RenderedPair(
        hr=hr.clamp(0, 1).float(),
        ref=ref.clamp(0, 1).float(),
        flow=flow.float(),
        valid=valid,
        labels=labels,
    )
