"""Named, versioned evaluation protocols: how an SR result is measured, said in one name.

Published RefSR numbers disagree mostly through undocumented choices: RGB or luma, MATLAB's
Y in [16, 235] or full-range Y, a border crop or none, how the LR image was made (PIL or
MATLAB bicubic), whether the output is rounded to 8 bits, which reference(s) the model saw.
A :class:`Protocol` fixes all of them; every table :mod:`~refsr_blocks.evaluation.report`
writes names its protocol and version (``y-matlab-crop4 v1``), so a figure can always be
reproduced and compared like with like.

Built-in protocols (:data:`PROTOCOLS`):

================  ==============================================================================
name              definition
================  ==============================================================================
``rgb``           RGB in [0, 1], whole image, the dataset's LR, first reference, no rounding:
                  what the CrossNet paper and this library's earlier tables report
``y-matlab``      Y of MATLAB's ``rgb2ycbcr`` (16 + 65.481 R + 128.553 G + 24.966 B, /255),
                  output rounded to 8 bits, LR remade from HR by MATLAB-style bicubic
                  (``imresize``: antialiased Keys a = −0.5, symmetric border), no border crop,
                  first reference
``y-matlab-crop4`` ``y-matlab`` with 4 pixels cropped from each side
``y-matlab-all``  ``y-matlab`` with every reference of the item given to the model
                  (CUFED5's five; models that take one reference are skipped)
``crossnet-       the CrossNet paper's tables (the authors' ``generate_compare_experiment_data``):
eccv2018``        the top-left 320×512 of the target view, of the reference and (÷s) of the LR
                  view made from the whole view, RGB in [0, 1], no border crop, output rounded
                  to 8 bits (their metrics ran on exported PNGs), first reference
``c2-matching-    C2-Matching's test code (``RefRestorationModel.nondist_validation``): Y of
cvpr2021``        ``bgr2ycbcr`` (MATLAB's) on the 8-bit output, ``scale`` (4) pixels cropped from
                  each side, LR made from the HR (cropped to a multiple of the scale) by PIL
                  bicubic, one reference (CUFED5's ``NNN_1``, the pairs of their
                  ``CUFED5_pairs.txt``)
``ttsr-          TTSR's test code (researchmm/TTSR, ``utils.calc_psnr_and_ssim`` on ``TestSet``):
cvpr2020``        MATLAB's Y of the 8-bit output, the whole image (no border crop), LR made by PIL
                  bicubic, one reference (CUFED5's ``NNN_1``)
``datsr-         DATSR's test code (caojiezhang/DATSR, ``test_restoration_mse.yml``): C2-Matching's
eccv2022``        loader, metrics and pairs, so ``c2-matching-cvpr2021``'s definition under DATSR's name
``masa-sr-        MASA-SR's test code (dvlab-research/MASA-SR, ``Trainer.test`` with ``TestSet_multi``,
cvpr2021``        the default of their ``test.sh``): Y of ``bgr2ycbcr`` (MATLAB's) on the 8-bit output,
                  the whole image (no border crop), LR made by PIL bicubic, every reference of
                  the item (CUFED5's five)
``masa-sr-        the same with one reference, CUFED5's ``NNN_1`` (their ``TestSet``, ``--ref_level 1``)
cvpr2021-ref1``
================  ==============================================================================

Tables break results down per light-field position (i, i) when items carry a ``"view"``.
SSIM is always :func:`~refsr_blocks.evaluation.metrics.ssim` (Gaussian window 11, σ 1.5,
valid region, averaged over channels and pixels); the CrossNet authors' SSIM code is not
published, so SSIM figures under ``crossnet-eccv2018`` compare with the paper's only roughly.

A changed definition gets a new version, never the same name and version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.degradation import matlab_downsample
from .metrics import crop_border, psnr, ssim

__all__ = ["PROTOCOLS", "Protocol", "get_protocol", "register_protocol", "y_matlab"]

CHANNELS = ("rgb", "y-matlab")
LR_KERNELS = ("dataset", "pil", "matlab")
REFERENCE_POLICIES = ("first", "all")


def y_matlab(img: Tensor) -> Tensor:
    """MATLAB ``rgb2ycbcr``'s Y of B×3×H×W RGB in [0, 1], in [16, 235]/255: B×1×H×W."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"y_matlab needs B×3×H×W RGB images, got {tuple(img.shape)}")
    weights = img.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (img * weights).sum(1, keepdim=True)) / 255.0


@dataclass(frozen=True)
class Protocol:
    """How results are measured (see the module docstring).

    Attributes:
        name: what reports and ``--protocol`` call it.
        version: bumped whenever the definition changes.
        channel: ``"rgb"`` (RGB in [0, 1]) or ``"y-matlab"`` (MATLAB's Y in [16, 235]/255).
        border: pixels cropped from each side before measuring.
        quantize: round the output to 8 bits (as saving a PNG would) before measuring.
        lr_kernel: ``"dataset"`` (the dataset's LR image), ``"pil"`` (torch's antialiased
            bicubic, PIL's kernel and border) or ``"matlab"`` (:func:`~refsr_blocks.data.degradation.matlab_downsample`):
            how the LR image is made from the HR one.
        reference: ``"first"`` (the item's ``ref``) or ``"all"`` (its ``refs``, K ≥ 1).
        crop: a top-left (H, W) window, multiples of the scale, measured instead of the whole
            image: every image of the ground truth's size (ground truth, reference, ...) is cut
            to it, every image of the LR size to (H/s, W/s), after the LR image is made.
        doc: one line.
    """

    name: str
    version: int
    channel: str = "rgb"
    border: int = 0
    quantize: bool = False
    lr_kernel: str = "dataset"
    reference: str = "first"
    crop: tuple[int, int] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {self.channel!r}")
        if self.lr_kernel not in LR_KERNELS:
            raise ValueError(f"lr_kernel must be one of {LR_KERNELS}, got {self.lr_kernel!r}")
        if self.reference not in REFERENCE_POLICIES:
            raise ValueError(f"reference must be one of {REFERENCE_POLICIES}, got {self.reference!r}")
        if self.border < 0:
            raise ValueError(f"border must be >= 0, got {self.border}")
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) <= 0):
            raise ValueError(f"crop must be a positive (height, width), got {self.crop!r}")

    @property
    def label(self) -> str:
        """``name vN``, as tables state it."""
        return f"{self.name} v{self.version}"

    @property
    def metric_label(self) -> str:
        """What the PSNR/SSIM columns measure: ``"RGB"`` or ``"Y (MATLAB)"``."""
        return "RGB" if self.channel == "rgb" else "Y (MATLAB)"

    def describe(self) -> str:
        """The whole definition in one sentence."""
        what = "RGB in [0, 1]" if self.channel == "rgb" else "MATLAB rgb2ycbcr Y (16–235)"
        lr = {
            "dataset": "the dataset's LR image",
            "pil": "LR made by PIL-style antialiased bicubic",
            "matlab": "LR made by MATLAB-style imresize bicubic",
        }[self.lr_kernel]
        border = f"{self.border}-pixel border cropped" if self.border else "no border crop"
        region = "whole image" if self.crop is None else f"top-left {self.crop[0]}×{self.crop[1]}"
        rounding = "output rounded to 8 bits" if self.quantize else "output not rounded"
        refs = "first reference" if self.reference == "first" else "all references of each item"
        return f"protocol {self.label}: PSNR/SSIM on {what}, {region}, {border}, {rounding}, {lr}, {refs}"

    def make_lr(self, hr: Tensor, lr: Tensor, scale: int) -> Tensor:
        """The LR image the methods see: the dataset's ``lr`` or one made from ``hr`` (B×C×H×W)."""
        if self.lr_kernel == "dataset":
            return lr
        h, w = hr.shape[-2:]
        hr = hr[..., : h - h % scale, : w - w % scale]
        if self.lr_kernel == "pil":
            size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
            return F.interpolate(hr, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        return matlab_downsample(hr, scale)

    def crop_inputs(self, images: dict[str, Any], scale: int) -> dict[str, Any]:
        """Cut ``images`` (B×C×H×W tensors or lists of them, with ``"hr"`` and ``"lr"``) to :attr:`crop`.

        The window is the top left. Tensors of the ground truth's size are cut to ``crop``,
        tensors of the LR size to ``crop / scale``; anything else (a reference of another
        size, indices) is kept. Without a crop, ``images`` is returned as it is.

        Raises:
            ValueError: the crop is not a multiple of ``scale``, or the ground truth is smaller.
        """
        if self.crop is None:
            return images
        h, w = self.crop
        if h % scale or w % scale:
            raise ValueError(f"protocol {self.label} crops {h}×{w}, which is not a multiple of the scale {scale}")
        hr_size, lr_size = tuple(images["hr"].shape[-2:]), tuple(images["lr"].shape[-2:])
        if hr_size[0] < h or hr_size[1] < w:
            raise ValueError(
                f"protocol {self.label} measures the top-left {h}×{w} of each image, but this ground truth is "
                f"{hr_size[0]}×{hr_size[1]}: use a protocol without a crop for smaller images"
            )
        windows = {hr_size: (h, w), lr_size: (h // scale, w // scale)}

        def cut(value: Any) -> Any:
            if isinstance(value, list):
                return [cut(v) for v in value]
            size = windows.get(tuple(value.shape[-2:])) if isinstance(value, Tensor) and value.ndim == 4 else None
            return value if size is None else value[..., : size[0], : size[1]]

        return {key: cut(value) for key, value in images.items()}

    def _prepare(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
        sr = sr.detach().to(torch.float64).clamp(0.0, 1.0)
        hr = hr.detach().to(torch.float64)
        if self.quantize:
            sr = torch.round(sr * 255.0) / 255.0
        if self.channel == "y-matlab":
            sr, hr = y_matlab(sr), y_matlab(hr)
        return crop_border(sr, self.border), crop_border(hr, self.border)

    def measure(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
        """PSNR (dB) and SSIM per image of B×3×H×W ``sr`` against ``hr`` under this protocol."""
        sr, hr = self._prepare(sr, hr)
        return psnr(sr, hr, clamp=False), ssim(sr, hr)


#: The registered protocols by name.
PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a protocol; a name is registered once (a new definition needs a new name or version)."""
    existing = PROTOCOLS.get(protocol.name)
    if existing is not None and existing != protocol:
        raise ValueError(f"protocol {protocol.name!r} is already registered as {existing.describe()}")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` (a :class:`Protocol` is returned as is)."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown evaluation protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


register_protocol(Protocol("rgb", 1, doc="RGB, whole image, the dataset's LR, first reference (CrossNet's tables)"))
register_protocol(
    Protocol("y-matlab", 1, channel="y-matlab", quantize=True, lr_kernel="matlab", doc="MATLAB Y, 8-bit output")
)
register_protocol(
    Protocol(
        "y-matlab-crop4",
        1,
        channel="y-matlab",
        border=4,
        quantize=True,
        lr_kernel="matlab",
        doc="MATLAB Y, 8-bit output, 4-pixel border crop",
    )
)
register_protocol(
    Protocol(
        "y-matlab-all",
        1,
        channel="y-matlab",
        quantize=True,
        lr_kernel="matlab",
        reference="all",
        doc="MATLAB Y, 8-bit output, every reference of the item",
    )
)
register_protocol(
    Protocol(
        "c2-matching-cvpr2021",
        1,
        channel="y-matlab",
        border=4,
        quantize=True,
        lr_kernel="pil",
        doc="C2-Matching's test code: MATLAB Y of the 8-bit output, 4-pixel border crop, PIL-bicubic LR, one reference",
    )
)
register_protocol(
    replace(
        PROTOCOLS["c2-matching-cvpr2021"],
        name="ttsr-cvpr2020",
        border=0,
        doc="TTSR's test code: MATLAB Y of the 8-bit output, whole image, PIL-bicubic LR, one reference",
    )
)
register_protocol(
    replace(
        PROTOCOLS["c2-matching-cvpr2021"],
        name="datsr-eccv2022",
        doc="DATSR's test code (C2-Matching's loader and metrics): MATLAB Y of the 8-bit output, 4-pixel crop, "
        "PIL-bicubic LR, one reference",
    )
)
register_protocol(
    Protocol(
        "masa-sr-cvpr2021",
        1,
        channel="y-matlab",
        quantize=True,
        lr_kernel="pil",
        reference="all",
        doc="MASA-SR's test code (TestSet_multi): MATLAB Y of the 8-bit output, whole image, PIL-bicubic LR, "
        "every reference",
    )
)
register_protocol(
    replace(
        PROTOCOLS["masa-sr-cvpr2021"],
        name="masa-sr-cvpr2021-ref1",
        reference="first",
        doc="MASA-SR's test code (TestSet, ref_level 1): MATLAB Y of the 8-bit output, whole image, PIL-bicubic LR, "
        "one reference",
    )
)
register_protocol(
    Protocol(
        "crossnet-eccv2018",
        1,
        quantize=True,
        crop=(320, 512),
        doc="the CrossNet paper's tables: top-left 320×512, RGB, 8-bit output, no border crop",
    )
)
