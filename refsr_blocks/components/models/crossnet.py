"""CrossNet (Zheng et al., ECCV 2018) assembled from swappable components.

Pipeline, for an LR image ``lr`` (B×3×h×w) and a reference ``ref`` (B×3×H×W, H = s·h):

1. the upsampler (MDSR) enlarges ``lr`` to ``up`` (B×3×H×W);
2. the pre-aligner (optional, ``"none"`` by default) finds a global whole-pixel shift of
   ``ref`` against ``up``; the flow estimator (FlowNetS+) takes ``(up, shifted ref)`` (never
   the ground truth) and returns one residual flow per pyramid level, finest first, to which
   the shift is added back (so every flow applies to the unshifted reference);
3. the LR encoder turns ``up`` and the reference encoder turns ``ref`` into feature pyramids;
4. the warper backward-warps each reference level with that level's flow
   (``warp_target="image"`` instead warps the reference *image* with the level-0 flow and
   encodes the result: CrossNet-iw);
5. the fusion decoder (U-Net) turns the LR and warped reference features into the image
   (``residual=True`` adds it to ``up``).

Inputs of any size work: the pair is padded once (replicate, bottom/right) to a multiple of
2^(scales-1) and the result cropped back.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ...core.build import instantiate
from ...core.errors import InputError
from ...core.registry import register_component
from ...core.spec import BUILT, Architecture, GlobalParam, Slot, register_preset
from ...ops.flow import crop_to, level_size, pad_to_multiple
from ..prealigners import NoPrealign, shift_image
from .inputs import check_pair

__all__ = ["CROSSNET", "CrossNet"]

WARP_TARGETS = ("features", "image")


class CrossNet(nn.Module):
    """The CrossNet network; build it with ``build_model("crossnet")`` rather than directly.

    Args:
        upsampler, flow, lr_encoder, warper, decoder: components honouring their kinds'
            contracts.
        ref_encoder: the reference encoder, or ``None`` to share ``lr_encoder``.
        upscale: the SR factor s.
        scales: pyramid levels.
        image_channels: channels of lr and ref.
        warp_target: ``"features"`` (CrossNet) or ``"image"`` (CrossNet-iw).
        residual: add the decoder output to the upsampled LR.
        prealign: a pre-alignment component (``None``: no shift).
    """

    def __init__(
        self,
        upsampler: nn.Module,
        flow: nn.Module,
        lr_encoder: nn.Module,
        ref_encoder: nn.Module | None,
        warper: nn.Module,
        decoder: nn.Module,
        *,
        upscale: int,
        scales: int,
        image_channels: int = 3,
        warp_target: str = "features",
        residual: bool = False,
        prealign: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.upsampler = upsampler
        self.prealign = prealign if prealign is not None else NoPrealign()
        self.flow = flow
        self.lr_encoder = lr_encoder
        self.ref_encoder = ref_encoder  # None: shared with lr_encoder (registered once)
        self.warper = warper
        self.decoder = decoder
        self.upscale = upscale
        self.scales = scales
        self.image_channels = image_channels
        self.warp_target = warp_target
        self.residual = residual
        self.spec: dict[str, Any] = {}

    def encode_ref(self, image: Tensor) -> list[Tensor]:
        """Reference feature pyramid (through the shared encoder when there is none of its own)."""
        encoder = self.ref_encoder if self.ref_encoder is not None else self.lr_encoder
        return encoder(image)

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        """Super-resolve ``lr`` with the help of ``ref``.

        Args:
            lr: B×C×h×w in [0, 1].
            ref: B×C×(s·h)×(s·w) in [0, 1].

        Returns:
            B×C×(s·h)×(s·w).
        """
        check_pair(lr, ref, self.upscale, self.image_channels)
        return self.fuse(self.upsampler(lr), ref)

    def forward_intermediates(self, lr: Tensor, ref: Tensor) -> dict[str, Any]:
        """Everything the forward pass computes, by name (what losses and viewers read).

        Returns:
            A dict with ``sr`` and ``upsampled`` (B×C×H×W), ``flows`` (per level, finest
            first, B×2×⌈H/2^k⌉×⌈W/2^k⌉, applying to the unshifted reference), ``warped_ref``
            (per level), ``warped_image`` (B×C×H×W, CrossNet-iw only, else ``None``) and
            ``shift`` (B×2, the pre-alignment shift in HR pixels).
        """
        check_pair(lr, ref, self.upscale, self.image_channels)
        return self.fuse_intermediates(self.upsampler(lr), ref)

    def align(self, upsampled: Tensor, ref: Tensor) -> tuple[list[Tensor], Tensor]:
        """Flows from ``upsampled`` to ``ref`` (B×3×H×W each, H and W multiples of 2^(scales-1)).

        Returns:
            (flows per level, finest first, each including the pre-alignment shift; the
            shift, B×2 whole pixels).
        """
        shift = self.prealign(upsampled, ref)
        if isinstance(self.prealign, NoPrealign):  # the paper's path: no gather, no device sync
            return self.flow(upsampled, ref), shift
        flows = self.flow(upsampled, shift_image(ref, shift))
        s = shift.to(flows[0].dtype)[:, :, None, None]
        return [f + s / 2**k for k, f in enumerate(flows)], shift

    def fuse(self, upsampled: Tensor, ref: Tensor) -> Tensor:
        """Everything after the upsampler: alignment, encoders, warping and fusion.

        The authors precompute the MDSR output; this entry point takes it directly.

        Args:
            upsampled: the upsampled LR image, B×C×H×W.
            ref: the reference, B×C×H×W.

        Returns:
            B×C×H×W.
        """
        return self.fuse_intermediates(upsampled, ref)["sr"]

    def fuse_intermediates(self, upsampled: Tensor, ref: Tensor) -> dict[str, Any]:
        """:meth:`fuse`, returning every intermediate (see :meth:`forward_intermediates`)."""
        if upsampled.shape != ref.shape:
            raise InputError(f"upsampled {tuple(upsampled.shape)} and ref {tuple(ref.shape)} must have the same shape")
        multiple = 2 ** (self.scales - 1)
        up_padded, size = pad_to_multiple(upsampled, multiple)
        ref_padded, _ = pad_to_multiple(ref, multiple)

        flows, shift = self.align(up_padded, ref_padded)
        lr_feats = self.lr_encoder(up_padded)
        warped_image = None
        if self.warp_target == "image":
            warped_image = self.warper(ref_padded, flows[0])
            warped_ref = self.encode_ref(warped_image)
        else:
            ref_feats = self.encode_ref(ref_padded)
            # Warp level by level, dropping each unwarped map as soon as it is used.
            warped_ref = [self.warper(ref_feats.pop(0), flow) for flow in flows]
        out = self.decoder(lr_feats, warped_ref)
        if self.residual:
            out = out + up_padded
        # Cropping is a view: returning the intermediates costs no copies.
        return {
            "sr": crop_to(out, size),
            "upsampled": upsampled,
            "flows": [crop_to(f, level_size(*size, k)) for k, f in enumerate(flows)],
            "warped_ref": [crop_to(f, level_size(*size, k)) for k, f in enumerate(warped_ref)],
            "warped_image": None if warped_image is None else crop_to(warped_image, size),
            "shift": shift,
        }


def _one_of(options: tuple[Any, ...]) -> Any:
    return lambda v: None if v in options else f"must be one of {list(options)}, got {v!r}"


def _in_range(lo: int, hi: int) -> Any:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}, got {v!r}"


def _check_residual(spec: dict[str, Any]) -> tuple[str, str] | None:
    decoder = spec["components"]["decoder"]["params"]
    if spec["params"]["residual"] and decoder.get("output_activation") == "relu":
        return (
            "components.decoder.params.output_activation",
            "with residual=True the decoder predicts a signed correction; a 'relu' output "
            "cannot be negative: use 'none'",
        )
    return None


def _migrate(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec version 1 had one ``encoder`` slot built twice: it becomes ``lr_encoder`` (and the
    reference encoder, left out, follows it)."""
    components = spec.get("components")
    if isinstance(components, dict) and "encoder" in components and "lr_encoder" not in components:
        components = dict(components)
        components["lr_encoder"] = components.pop("encoder")
        spec = {**spec, "components": components}
    return spec


def _check_shared_encoder(spec: dict[str, Any]) -> tuple[str, str] | None:
    lr, ref = spec["components"]["lr_encoder"], spec["components"]["ref_encoder"]
    if spec["params"]["shared_encoder"] and lr != ref:
        return (
            "components.ref_encoder",
            "shared_encoder=True uses the LR encoder for the reference too; leave ref_encoder out "
            f"(it differs: {ref} vs {lr}) or set shared_encoder=False",
        )
    return None


def build_crossnet(spec: dict[str, Any]) -> CrossNet:
    """Assemble :class:`CrossNet` from a resolved spec."""
    p = spec["params"]
    lr_encoder = instantiate(spec, "lr_encoder")
    ref_encoder = None if p["shared_encoder"] else instantiate(spec, "ref_encoder")
    lr_channels = list(_pyramid_channels(lr_encoder, p["scales"], "lr_encoder"))
    ref_channels = (
        lr_channels if ref_encoder is None else list(_pyramid_channels(ref_encoder, p["scales"], "ref_encoder"))
    )
    return CrossNet(
        upsampler=instantiate(spec, "upsampler"),
        flow=instantiate(spec, "flow"),
        lr_encoder=lr_encoder,
        ref_encoder=ref_encoder,
        warper=instantiate(spec, "warper"),
        decoder=instantiate(spec, "decoder", lr_channels=lr_channels, ref_channels=ref_channels),
        upscale=p["upscale"],
        scales=p["scales"],
        image_channels=p["image_channels"],
        warp_target=p["warp_target"],
        residual=p["residual"],
        prealign=instantiate(spec, "prealign"),
    )


def _pyramid_channels(encoder: nn.Module, scales: int, slot: str) -> list[int]:
    channels = getattr(encoder, "out_channels", None)
    if channels is None or len(channels) != scales:
        raise ValueError(f"{slot} must expose out_channels with {scales} entries, got {channels!r}")
    return list(channels)


_ENCODER_INJECT = {"scales": "scales", "channels": "channels", "in_channels": "image_channels"}

CROSSNET = register_component(
    "model",
    "crossnet",
    Architecture(
        name="crossnet",
        doc="CrossNet: SISR upsampler, cross-scale flow, two encoders, per-level warping, U-Net fusion.",
        params={
            "upscale": GlobalParam(4, _one_of((2, 3, 4, 8)), "super-resolution factor s"),
            "scales": GlobalParam(4, _in_range(1, 7), "pyramid levels (the paper: 4)"),
            "channels": GlobalParam(64, _in_range(1, 4096), "feature channels of encoders and decoder"),
            "image_channels": GlobalParam(3, _in_range(1, 64), "channels of lr, ref and output"),
            "shared_encoder": GlobalParam(False, doc="one encoder for LR and reference (the paper: separate)"),
            "warp_target": GlobalParam("features", _one_of(WARP_TARGETS), "warp reference features or the image (iw)"),
            "residual": GlobalParam(False, doc="add the decoder output to the upsampled LR"),
        },
        slots={
            "upsampler": Slot(
                "upsampler", "mdsr", {"scale": "upscale", "in_channels": "image_channels"}, ("scale",), "SISR upsampler"
            ),
            "prealign": Slot("prealign", "none", doc="global shift of the reference before flow estimation"),
            "flow": Slot(
                "flow",
                "flownets_plus",
                {"scales": "scales", "in_channels": "image_channels"},
                ("scales",),
                "cross-scale flow",
            ),
            "lr_encoder": Slot(
                "encoder", "crossnet", _ENCODER_INJECT, ("scales",), "encoder of the upsampled LR image"
            ),
            "ref_encoder": Slot(
                "encoder",
                None,
                _ENCODER_INJECT,
                ("scales",),
                "reference encoder (default: as lr_encoder)",
                "lr_encoder",
            ),
            "warper": Slot("warper", "bilinear", doc="backward warp of reference features"),
            "decoder": Slot(
                "decoder",
                "unet_fusion",
                {"lr_channels": BUILT, "ref_channels": BUILT, "out_channels": "image_channels", "channels": "channels"},
                ("lr_channels", "ref_channels"),
                "fusion decoder",
            ),
        },
        build=build_crossnet,
        checks=(_check_residual, _check_shared_encoder),
        migrate=_migrate,
    ),
)

register_preset("crossnet", {"model": "crossnet"}, "CrossNet as in the paper: MDSR, FlowNetS+, 4 scales, ×4")
register_preset(
    "crossnet_flownets",
    {"model": "crossnet", "components": {"flow": "flownets"}},
    "CrossNet with plain FlowNetS (flow predicted down to 1/4, then upsampled)",
)
register_preset(
    "crossnet_iw",
    {"model": "crossnet", "params": {"warp_target": "image"}},
    "CrossNet-iw: the reference image is warped at full resolution instead of its features",
)
register_preset(
    "crossnet_lite",
    {
        "model": "crossnet",
        "params": {"channels": 32, "residual": True},
        "components": {
            "upsampler": {"name": "mdsr", "params": {"num_blocks": 4, "channels": 32}},
            "flow": {"name": "flownets_plus", "params": {"width": 0.25}},
            "decoder": {"name": "unet_fusion", "params": {"output_activation": "none"}},
        },
    },
    "A small CrossNet for CPU training and tests: narrow layers, residual output",
)
