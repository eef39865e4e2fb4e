"""Pictures of what a RefSR model does: flows, warps, comparisons and error maps, as PNGs.

Every function here takes and returns images as float tensors ``3×H×W`` with values in
[0, 1] (a leading batch dimension of 1 is accepted and dropped), so panels compose freely:
:func:`labelled` adds a caption above an image, :func:`hstack` and :func:`vstack` put images
side by side, :func:`save_png` writes the result. The higher-level helpers build the panels
the documentation shows:

- :func:`flow_levels_panel`: one colour-coded flow per pyramid level (Middlebury colour
  wheel, :func:`~refsr_blocks.ops.flow_to_color`);
- :func:`warp_panel`: the target, the reference, the reference warped onto the target, and
  what is left of the difference;
- :func:`comparison_panel`: named results side by side, with their PSNR against the ground
  truth in the labels;
- :func:`error_panel`: absolute errors as heat maps on one shared scale;
- :func:`render_intermediates`: all of the above from one ``forward_intermediates`` call
  of a model (every CrossNet variant has it), written to a folder.

Only torch, torchvision (for the flow colour wheel) and Pillow (for the labels) are used.

Example:
    >>> import torch
    >>> from refsr_blocks.tools.viz import hstack, labelled
    >>> panel = hstack([labelled(torch.rand(3, 32, 48), "a"), labelled(torch.zeros(3, 32, 48), "b")])
    >>> panel.shape[0], panel.shape[2] > 2 * 48
    (3, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.flow import flow_to_color
from ..ops.sample import warp_from

__all__ = [
    "bicubic_upsample",
    "colorize",
    "comparison_panel",
    "display_factor",
    "error_heatmap",
    "error_panel",
    "flow_convention_panel",
    "flow_levels_panel",
    "flow_wheel",
    "grid",
    "hstack",
    "labelled",
    "model_intermediates",
    "refsr_figure",
    "render_intermediates",
    "save_png",
    "synthetic_pair",
    "vstack",
    "warp_panel",
]

#: Anchor colours (0..255) of the heat-map colour scale, dark (no error) to bright (large).
HEAT_ANCHORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 4),
    (87, 16, 110),
    (188, 55, 84),
    (249, 142, 9),
    (252, 255, 164),
)

#: Panels narrower than this are enlarged (nearest neighbour, integer factor) for display.
MIN_PANEL_WIDTH = 160


# -- basic image handling -----------------------------------------------------------------
def _image(x: Tensor, name: str = "image") -> Tensor:
    """``x`` as a float32 CPU tensor 3×H×W in [0, 1] (1×C×H×W and 1-channel accepted)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"{name}: pass one image (3×H×W or 1×3×H×W), got a batch of shape {tuple(x.shape)}")
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"{name} must be 3×H×W or 1×H×W, got shape {tuple(x.shape)}")
    x = x.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.clamp(0.0, 1.0)


def _enlarge(x: Tensor, factor: int) -> Tensor:
    """Nearest-neighbour enlargement of a 3×H×W image by an integer factor."""
    if factor <= 1:
        return x
    return x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def display_factor(width: int, min_width: int = MIN_PANEL_WIDTH) -> int:
    """The integer enlargement that makes an image ``width`` pixels wide at least ``min_width``.

    Example:
        >>> display_factor(48), display_factor(400)
        (4, 1)
    """
    return max(1, math.ceil(min_width / max(1, width)))


def _font(size: int) -> Any:
    """Pillow's default font at ``size`` pixels (the fixed bitmap font on old Pillows)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, AttributeError):
        return ImageFont.load_default()


def labelled(image: Tensor, text: str, *, font_size: int = 13) -> Tensor:
    """``image`` with a white strip above it holding ``text`` (3×(H+strip)×W).

    Text wider than the image is cut at the right edge; make panels wide enough (see
    :func:`display_factor`) for long labels.
    """
    from PIL import Image, ImageDraw

    img = _image(image)
    width = img.shape[-1]
    font = _font(font_size)
    strip_h = font_size + 8
    canvas = Image.new("RGB", (width, strip_h), (255, 255, 255))
    ImageDraw.Draw(canvas).text((4, 3), text, fill=(0, 0, 0), font=font)
    strip = torch.from_numpy(_pil_to_numpy(canvas)).permute(2, 0, 1).float() / 255.0
    return torch.cat([strip, img], dim=-2)


def _pil_to_numpy(image: Any) -> Any:
    """A PIL RGB image as a writable H×W×3 uint8 numpy array."""
    import numpy as np

    return np.asarray(image, dtype=np.uint8).copy()


def _stack(images: Sequence[Tensor], dim: int, gap: int, background: float, name: str) -> Tensor:
    """Concatenate 3×H×W images along ``dim`` (-1 or -2), padding the other axis, with gaps."""
    imgs = [_image(x, f"images[{i}]") for i, x in enumerate(images)]
    if not imgs:
        raise ValueError(f"{name} needs at least one image")
    other = -2 if dim == -1 else -1
    extent = max(x.shape[other] for x in imgs)
    parts: list[Tensor] = []
    for i, x in enumerate(imgs):
        if i:
            gap_shape = [3, extent, extent]
            gap_shape[dim] = gap
            parts.append(torch.full(gap_shape, background))
        missing = extent - x.shape[other]
        padding = (0, 0, 0, missing) if other == -2 else (0, missing)  # bottom or right
        parts.append(F.pad(x, padding, value=background))
    return torch.cat(parts, dim=dim)


def hstack(images: Sequence[Tensor], *, gap: int = 6, background: float = 1.0) -> Tensor:
    """Images side by side, top-aligned, ``gap`` pixels apart on a ``background`` colour."""
    return _stack(images, -1, gap, background, "hstack")


def vstack(images: Sequence[Tensor], *, gap: int = 6, background: float = 1.0) -> Tensor:
    """Images one above the other, left-aligned, ``gap`` pixels apart."""
    return _stack(images, -2, gap, background, "vstack")


def grid(images: Sequence[Tensor], columns: int, *, gap: int = 6, background: float = 1.0) -> Tensor:
    """Images in rows of ``columns`` (torchvision's ``make_grid``), each in a cell as large as the
    largest, top-left aligned, ``gap`` pixels apart on a ``background`` colour (no outer border)."""
    from torchvision.utils import make_grid

    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    imgs = [_image(x, f"images[{i}]") for i, x in enumerate(images)]
    if len(imgs) < 2:
        return _stack(imgs, -1, gap, background, "grid")
    height, width = max(x.shape[-2] for x in imgs), max(x.shape[-1] for x in imgs)
    cells = [F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]), value=background) for x in imgs]
    return make_grid(cells, nrow=columns, padding=gap, pad_value=background)[:, gap:-gap, gap:-gap]


def save_png(image: Tensor, path: str | Path) -> Path:
    """Write a 3×H×W float image in [0, 1] as an 8-bit PNG; create the folder if needed."""
    from PIL import Image

    img = _image(image)
    arr = img.mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG")
    return path


# -- measures and colour maps -------------------------------------------------------------
def _psnr_db(pred: Tensor, target: Tensor, *, border: int = 0) -> float:
    """:func:`refsr_blocks.evaluation.metrics.psnr` of one image (3×H×W or 1×3×H×W), for labels."""
    from ..evaluation.metrics import psnr

    a, b = _image(pred, "pred"), _image(target, "target")
    if a.shape != b.shape:
        raise ValueError(f"pred {tuple(a.shape)} and target {tuple(b.shape)} must have the same shape")
    return float(psnr(a[None], b[None], border=border)[0])


def colorize(values: Tensor, vmax: float | None = None) -> Tensor:
    """Map an H×W tensor of non-negative values to a 3×H×W heat map (dark = 0, bright = vmax).

    ``vmax`` defaults to the largest value (or 1 when all are zero).
    """
    if values.ndim != 2:
        raise ValueError(f"values must be H×W, got shape {tuple(values.shape)}")
    values = values.detach().cpu().float()
    top = float(values.max()) if vmax is None else float(vmax)
    if not top > 0:
        top = 1.0
    t = (values / top).clamp(0.0, 1.0) * (len(HEAT_ANCHORS) - 1)
    anchors = torch.tensor(HEAT_ANCHORS, dtype=torch.float32) / 255.0  # K×3
    low = t.floor().long().clamp(max=len(HEAT_ANCHORS) - 2)
    frac = (t - low).unsqueeze(-1)
    rgb = anchors[low] * (1 - frac) + anchors[low + 1] * frac  # H×W×3
    return rgb.permute(2, 0, 1).contiguous()


def error_heatmap(pred: Tensor, target: Tensor, vmax: float | None = 0.25) -> Tensor:
    """Absolute error, averaged over channels, as a 3×H×W heat map saturating at ``vmax``."""
    a, b = _image(pred, "pred"), _image(target, "target")
    if a.shape != b.shape:
        raise ValueError(f"pred {tuple(a.shape)} and target {tuple(b.shape)} must have the same shape")
    return colorize((a - b).abs().mean(dim=0), vmax)


def _flow_image(flow: Tensor) -> Tensor:
    """A 2×H×W or 1×2×H×W flow as a 3×H×W colour image in [0, 1]."""
    if flow.ndim == 4:
        flow = flow[0]
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"a flow must be 2×H×W or 1×2×H×W (x then y), got shape {tuple(flow.shape)}")
    return flow_to_color(flow.detach().cpu().float()).float() / 255.0


def flow_wheel(size: int = 64) -> Tensor:
    """The colour key of :func:`~refsr_blocks.ops.flow_to_color`: the flow ``p - centre``.

    A pixel's colour is the colour of a displacement pointing from the centre to it
    (right = +x, down = +y); saturation grows with the length.
    """
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    centre = (size - 1) / 2
    flow = torch.stack([xs - centre, ys - centre])
    outside = flow.norm(dim=0) > centre + 0.5
    wheel = _flow_image(flow * ~outside)  # colours scaled to the circle's radius
    wheel[outside.expand(3, -1, -1)] = 1.0
    return wheel


# -- panels ---------------------------------------------------------------------------------
def flow_levels_panel(flows: Sequence[Tensor], *, min_width: int = MIN_PANEL_WIDTH) -> Tensor:
    """One colour-coded flow per pyramid level, finest first, shown at the level-0 size.

    Each level is coloured on its own scale (a level-k flow is 2^k times smaller in
    pixels), then enlarged with nearest-neighbour interpolation to the level-0 size so that
    the levels line up; labels give each level's true size.

    Args:
        flows: level k as 2×h_k×w_k or 1×2×h_k×w_k (e.g. ``forward_intermediates(lr, ref)["flows"]``).
    """
    if not flows:
        raise ValueError("flows is empty")
    images = [_flow_image(f) for f in flows]
    height, width = images[0].shape[-2:]
    factor = display_factor(width, min_width)
    tiles = []
    for k, img in enumerate(images):
        h, w = img.shape[-2:]
        shown = F.interpolate(img[None], size=(height, width), mode="nearest")[0]
        tiles.append(labelled(_enlarge(shown, factor), f"level {k}: {h}x{w}"))
    return hstack(tiles)


def _warp_tiles(
    target: Tensor, ref: Tensor, flow: Tensor, target_label: str, min_width: int
) -> tuple[list[Tensor], list[Tensor]]:
    """(inputs: target, reference, flow), (results: warped, error before, error after).

    A reference of another size (an aligner matching anywhere in it) is shown resized to the
    target's size and compared so before warping; the flow points into its own pixel grid.
    """
    t, r = _image(target, "target"), _image(ref, "ref")
    f = flow if flow.ndim == 4 else flow[None]
    if tuple(f.shape[-2:]) != tuple(t.shape[-2:]):
        raise ValueError(f"flow {tuple(flow.shape)} must be on the target's grid {tuple(t.shape[-2:])}")
    warped = warp_from(r[None], f.detach().cpu().float())[0]
    same_size = r.shape == t.shape
    shown = r if same_size else F.interpolate(r[None], size=t.shape[-2:], mode="bilinear", antialias=True)[0]
    factor = display_factor(t.shape[-1], min_width)
    vmax = max(float((t - shown).abs().mean(0).max()), 1e-6)
    resized = "" if same_size else f" ({r.shape[-1]}x{r.shape[-2]}, resized)"
    inputs = [
        labelled(_enlarge(t, factor), target_label),
        labelled(_enlarge(shown, factor), f"reference{resized}"),
        labelled(_enlarge(_flow_image(f), factor), "flow"),
    ]
    results = [
        labelled(_enlarge(warped, factor), "warped reference"),
        labelled(_enlarge(error_heatmap(shown, t, vmax), factor), "|reference - target|"),
        labelled(_enlarge(error_heatmap(warped, t, vmax), factor), "|warped - target|"),
    ]
    return inputs, results


def warp_panel(
    target: Tensor,
    ref: Tensor,
    flow: Tensor,
    *,
    target_label: str = "target",
    min_width: int = MIN_PANEL_WIDTH,
) -> Tensor:
    """Two rows: target | reference | flow, then warped reference | error before | error after.

    The reference is backward-warped with ``flow`` (``warped[p] = ref[p + flow[p]]``); when
    the flow is right the warped reference looks like the target, and the error heat map
    after warping is darker than before (both heat maps share one scale).

    Args:
        target: 3×H×W; ref: 3×H'×W' (any size; ``flow`` is in its pixels).
        flow: 2×H×W (or 1×2×H×W) flow on the target's grid.
    """
    inputs, results = _warp_tiles(target, ref, flow, target_label, min_width)
    return grid([*inputs, *results], columns=3)


def confidence_panel(
    target: Tensor, confidence: Tensor, *, target_label: str = "target", min_width: int = MIN_PANEL_WIDTH
) -> Tensor:
    """Target | the aligner's per-pixel confidence in the reference (dark: the reference is not used).

    Args:
        target: 3×H×W.
        confidence: 1×H×W or 1×1×H×W in [0, 1] (resized to the target's size if coarser).
    """
    t = _image(target, "target")
    c = confidence.detach().cpu().float().reshape(1, 1, *confidence.shape[-2:])
    c = F.interpolate(c, size=t.shape[-2:], mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
    factor = display_factor(t.shape[-1], min_width)
    return hstack(
        [
            labelled(_enlarge(t, factor), target_label),
            labelled(_enlarge(colorize(c, 1.0), factor), f"confidence (mean {float(c.mean()):.2f})"),
        ]
    )


def comparison_panel(
    images: Mapping[str, Tensor],
    ground_truth: Tensor | None = None,
    *,
    border: int = 0,
    min_width: int = MIN_PANEL_WIDTH,
) -> Tensor:
    """Named results side by side, then the ground truth; labels carry PSNR when it is given.

    Args:
        images: label → 3×H×W result, in display order (e.g. bicubic, SISR, CrossNet).
        ground_truth: the HR image; when given, each label reads ``"name 27.41 dB"``.
        border: pixels cropped from each side before the PSNR (as in
            :func:`~refsr_blocks.evaluation.metrics.psnr`).
    """
    if not images:
        raise ValueError("images is empty")
    first = _image(next(iter(images.values())))
    factor = display_factor(first.shape[-1], min_width)
    tiles = []
    for name, img in images.items():
        label = name if ground_truth is None else f"{name} {_psnr_db(img, ground_truth, border=border):.2f} dB"
        tiles.append(labelled(_enlarge(_image(img, name), factor), label))
    if ground_truth is not None:
        tiles.append(labelled(_enlarge(_image(ground_truth, "ground_truth"), factor), "ground truth"))
    return hstack(tiles)


def refsr_figure(
    lr: Tensor,
    ref: Tensor,
    results: Mapping[str, Tensor],
    ground_truth: Tensor,
    *,
    box: tuple[int, int, int, int] | None = None,
    zoom: int = 3,
) -> Tensor:
    """A RefSR result at a glance: LR | reference | results | ground truth, then zoomed crops.

    Args:
        lr: the LR input, 3×h×w (shown enlarged, nearest neighbour, to the HR size).
        ref: the reference, 3×H×W.
        results: label → 3×H×W result (e.g. bicubic, the model); labels carry PSNR.
        ground_truth: 3×H×W.
        box: the zoomed region (top, left, height, width) in HR pixels; default: the
            centre quarter-width square.
        zoom: enlargement of the crops.

    Returns:
        3×H'×W' figure in [0, 1].
    """
    hr = _image(ground_truth, "ground_truth")
    height, width = hr.shape[-2:]
    small = _image(lr, "lr")
    factor = max(1, round(width / small.shape[-1]))
    top_row = [labelled(_enlarge(small, factor), "LR input"), labelled(_image(ref, "ref"), "reference")]
    top_row += [labelled(_image(img, name), f"{name} {_psnr_db(img, hr):.2f} dB") for name, img in results.items()]
    top_row.append(labelled(hr, "ground truth"))
    if box is None:
        side = max(8, width // 4)
        box = ((height - side) // 2, (width - side) // 2, side, side)
    y, x, h, w = box
    crops = {name: _image(img, name)[:, y : y + h, x : x + w] for name, img in results.items()}
    crops["ground truth"] = hr[:, y : y + h, x : x + w]
    bottom_row = [labelled(_enlarge(c, zoom), f"{name} (zoom)") for name, c in crops.items()]
    return vstack([grid(top_row, columns=3), hstack(bottom_row)])


def error_panel(
    images: Mapping[str, Tensor],
    ground_truth: Tensor,
    *,
    vmax: float | None = None,
    min_width: int = MIN_PANEL_WIDTH,
) -> Tensor:
    """``|result - ground truth|`` heat maps, one per named result, on one shared scale.

    ``vmax`` (the error shown brightest) defaults to the 99th percentile of the largest
    error map, so one outlier pixel does not wash the others out.
    """
    if not images:
        raise ValueError("images is empty")
    gt = _image(ground_truth, "ground_truth")
    errors = {name: (_image(img, name) - gt).abs().mean(0) for name, img in images.items()}
    if vmax is None:
        vmax = max(float(torch.quantile(e.flatten(), 0.99)) for e in errors.values()) or 1.0
    factor = display_factor(gt.shape[-1], min_width)
    tiles = [labelled(_enlarge(colorize(e, vmax), factor), f"|{name} - GT|") for name, e in errors.items()]
    return hstack(tiles)


def flow_convention_panel(target: Tensor, ref: Tensor, flow: Tensor, *, min_width: int = MIN_PANEL_WIDTH) -> Tensor:
    """:func:`warp_panel` with the flow's colour key (:func:`flow_wheel`) at the end of the first row."""
    inputs, results = _warp_tiles(target, ref, flow, "target", min_width)
    key_size = max(48, min(128, inputs[0].shape[-2] - 30))
    return grid([*inputs, labelled(flow_wheel(key_size), "colour key"), *results], columns=4)


# -- from a model -----------------------------------------------------------------------------
def synthetic_pair(scale: int = 4, size: tuple[int, int] = (96, 128), seed: int = 0) -> dict[str, Tensor]:
    """A deterministic RefSR example to draw when no images are at hand.

    The HR image is :func:`~refsr_blocks.data.procedural_image` ``(size, seed)``; the
    reference is a synthetic second view of it (:func:`~refsr_blocks.data.make_parallax_pair`,
    disparity up to ``2·scale`` pixels); the LR image is the HR image downsampled by ``scale``.

    Returns:
        ``{"lr": 3×h×w, "ref": 3×H×W, "hr": 3×H×W, "flow": 2×H×W}`` with
        ``hr[p] ≈ ref[p + flow[p]]``.
    """
    from ..data import downsample, make_parallax_pair, procedural_image

    if size[0] % scale or size[1] % scale:
        raise ValueError(f"size {tuple(size)} must be a multiple of the scale {scale}")
    hr = procedural_image(size[0], size[1], seed)
    ref, flow = make_parallax_pair(hr, max_disparity=2.0 * scale, generator=torch.Generator().manual_seed(seed))
    return {"lr": downsample(hr, scale), "ref": ref, "hr": hr, "flow": flow}


def bicubic_upsample(lr: Tensor, scale: int) -> Tensor:
    """Bicubic enlargement of a B×C×h×w (or C×h×w) image by ``scale``, clamped to [0, 1]."""
    batched = lr.ndim == 4
    x = lr if batched else lr[None]
    out = F.interpolate(x.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)
    return out if batched else out[0]


def model_intermediates(model: nn.Module, lr: Tensor, ref: Tensor) -> dict[str, Any]:
    """``model.forward_intermediates(lr, ref)`` for one pair, on the model's device, without autograd.

    Args:
        model: any module with a ``forward_intermediates(lr, ref) -> dict`` method (every
            CrossNet variant); it is put in eval mode.
        lr: 3×h×w or 1×3×h×w in [0, 1].
        ref: 3×H×W or 1×3×H×W.

    Returns:
        The model's dict: at least ``sr`` (1×3×H×W); CrossNet adds ``upsampled``
        (1×3×H×W), ``flows`` and ``warped_ref`` (lists per level, finest first),
        ``warped_image`` and ``shift`` (``None`` when unused).

    Raises:
        ValueError: the model has no ``forward_intermediates``, or it does not return a dict
            with ``sr``, or ``lr``/``ref`` hold more than one pair.
    """
    forward_intermediates = getattr(model, "forward_intermediates", None)
    if not callable(forward_intermediates):
        raise ValueError(
            f"{type(model).__name__} has no forward_intermediates(lr, ref) method, so there are no intermediates "
            "to draw; models that expose their flows and upsampled image (every CrossNet variant) have one"
        )
    lr_b = lr if lr.ndim == 4 else lr[None]
    ref_b = ref if ref.ndim == 4 else ref[None]
    if lr_b.shape[0] != 1 or ref_b.shape[0] != 1:
        raise ValueError("pass one (lr, ref) pair, not a batch")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.eval()
    with torch.no_grad():
        out = forward_intermediates(lr_b.float().to(device), ref_b.float().to(device))
    if not isinstance(out, Mapping) or not isinstance(out.get("sr"), Tensor):
        raise ValueError(
            f"{type(model).__name__}.forward_intermediates returned {type(out).__name__}; "
            "expected a dict with at least 'sr' (the output image)"
        )
    return dict(out)


def render_intermediates(
    model: nn.Module,
    lr: Tensor,
    ref: Tensor,
    out_dir: str | Path,
    *,
    hr: Tensor | None = None,
    prefix: str = "",
    min_width: int = MIN_PANEL_WIDTH,
) -> dict[str, Path]:
    """Run ``model.forward_intermediates(lr, ref)`` once and draw what it returns.

    Files written to ``out_dir`` (each name preceded by ``prefix``), each only when the
    intermediates it needs are present:

    - ``flows.png`` (needs ``flows``): :func:`flow_levels_panel` of the estimated flows;
    - ``warp.png`` (needs ``flows``): :func:`warp_panel`: the reference warped with the
      level-0 flow onto the upsampled LR image (``upsampled``; bicubic when the model
      returns none), which is the target the flow estimator aligns to;
    - ``confidence.png`` (needs ``confidence``, e.g. the match_flow and attention aligners):
      :func:`confidence_panel` of the finest level;
    - ``comparison.png``: bicubic | the model's upsampler (``upsampled``, "SISR") | the
      model's output (``sr``, labelled with the model's class name), plus the ground truth
      and PSNRs when ``hr`` is given;
    - ``errors.png`` (only with ``hr``): :func:`error_panel` of the same results.

    Args:
        model: a model with ``forward_intermediates(lr, ref) -> dict`` (see
            :func:`model_intermediates`).
        lr: 3×h×w or 1×3×h×w in [0, 1].
        ref: 3×H×W or 1×3×H×W, H = s·h (any size for a model whose aligner matches anywhere).
        hr: the ground truth, 3×H×W, if known.

    Returns:
        Picture name (``"flows"``, ``"warp"``, ``"confidence"``, ``"comparison"``, ``"errors"``) → path.

    Raises:
        ValueError: the model has no ``forward_intermediates`` (see :func:`model_intermediates`).
    """
    out = model_intermediates(model, lr, ref)
    lr_b = lr if lr.ndim == 4 else lr[None]
    ref_b = ref if ref.ndim == 4 else ref[None]
    model_scale = getattr(model, "upscale", None)
    scale = model_scale if isinstance(model_scale, int) else ref_b.shape[-1] // lr_b.shape[-1]
    results = {"bicubic": bicubic_upsample(lr_b, scale)[0]}
    if isinstance(out.get("upsampled"), Tensor):
        results["SISR"] = out["upsampled"][0].clamp(0, 1)
    results[type(model).__name__] = out["sr"][0].clamp(0, 1)
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    flows = out.get("flows") or []
    if flows:
        paths["flows"] = save_png(
            flow_levels_panel([f[0] for f in flows], min_width=min_width), out_dir / f"{prefix}flows.png"
        )
        target, label = (results["SISR"], "upsampled LR") if "SISR" in results else (results["bicubic"], "bicubic LR")
        paths["warp"] = save_png(
            warp_panel(target, ref_b[0], flows[0][0], target_label=label, min_width=min_width),
            out_dir / f"{prefix}warp.png",
        )
    confidence = (out.get("confidence") or [None])[0]
    if isinstance(confidence, Tensor):
        target, label = (results["SISR"], "upsampled LR") if "SISR" in results else (results["bicubic"], "bicubic LR")
        paths["confidence"] = save_png(
            confidence_panel(target, confidence[0], target_label=label, min_width=min_width),
            out_dir / f"{prefix}confidence.png",
        )
    paths["comparison"] = save_png(
        comparison_panel(results, hr, min_width=min_width), out_dir / f"{prefix}comparison.png"
    )
    if hr is not None:
        paths["errors"] = save_png(error_panel(results, hr, min_width=min_width), out_dir / f"{prefix}errors.png")
    return paths
