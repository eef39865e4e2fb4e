"""CrossNet (Zheng et al., ECCV 2018) assembled from swappable components.

Pipeline, for an LR image ``lr`` (B×3×h×w) and a reference ``ref`` (B×3×H×W, H = s·h):

1. the upsampler (MDSR) enlarges ``lr`` to ``up`` (B×3×H×W);
2. the LR encoder turns ``up`` and the reference encoder turns ``ref`` into feature pyramids;
3. the aligner brings the reference features onto the LR grid, level by level. The default,
   ``flow_warp``, is the paper's: an optional pre-aligner finds a global whole-pixel shift,
   the flow estimator (FlowNetS+) takes ``(up, shifted ref)`` (never the ground truth) and
   returns one flow per level, and the warper backward-warps each reference level with it
   (``warp_target="image"`` instead warps the reference *image* with the level-0 flow and
   encodes the result: CrossNet-iw);
4. the fusion decoder (U-Net) turns the LR and aligned reference features into the image
   (``residual=True`` adds it to ``up``).

Inputs of any size work: the pair is padded once (replicate, bottom/right) to a multiple of
2^(scales-1) and the result cropped back.

The spec keeps ``prealign``, ``flow`` and ``warper`` slots (``build_model("crossnet",
flow="raft_small")``); the builder hands the built parts to the aligner, which owns them
(checkpoint keys ``aligner.flow.*``). Aligners that take no flow (``attention``) get none. A
reference whose size is not s× the LR is brought to it by ``ref_policy`` (resize, crop_pad,
strict) for grid-bound aligners (flow, deformable); the others take K references of any
size (a list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ...core.build import instantiate
from ...core.errors import InputError
from ...core.registry import get_component
from ...core.spec import BUILT, Architecture, GlobalParam, Slot, in_range, one_of, register_preset
from ...ops.flow import crop_to, level_size, pad_to_multiple
from ...ops.inputs import _cast, check_fuse_inputs, check_model_input, model_dtype
from ...ops.references import REF_POLICIES, as_references, check_references, fit_reference
from ..aligners.flow_warp import FlowWarpAligner
from ..conventions import pyramid_channels, register_architecture

__all__ = ["CROSSNET", "CrossNet"]

WARP_TARGETS = ("features", "image")


class CrossNet(nn.Module):
    """The CrossNet network; build it with ``build_model("crossnet")`` rather than directly.

    Args:
        upsampler, lr_encoder, aligner, decoder: components honouring their kinds' contracts.
        ref_encoder: the reference encoder, or ``None`` to share ``lr_encoder``.
        upscale: the SR factor s.
        scales: pyramid levels.
        image_channels: channels of lr and ref.
        warp_target: ``"features"`` (CrossNet) or ``"image"`` (CrossNet-iw, flow_warp only).
        residual: add the decoder output to the upsampled LR.
        ref_policy: how a grid-bound aligner's reference is brought to the output size
            (see :mod:`~refsr_blocks.ops.references`).
    """

    def __init__(
        self,
        upsampler: nn.Module,
        lr_encoder: nn.Module,
        ref_encoder: nn.Module | None,
        aligner: nn.Module,
        decoder: nn.Module,
        *,
        upscale: int,
        scales: int,
        image_channels: int = 3,
        warp_target: str = "features",
        residual: bool = False,
        ref_policy: str = "resize",
    ) -> None:
        super().__init__()
        if warp_target == "image" and not isinstance(aligner, FlowWarpAligner):
            raise ValueError("warp_target='image' (CrossNet-iw) needs the flow_warp aligner")
        self.upsampler = upsampler
        self.lr_encoder = lr_encoder
        self.ref_encoder = ref_encoder  # None: shared with lr_encoder (registered once)
        self.aligner = aligner
        self.decoder = decoder
        self.upscale = upscale
        self.scales = scales
        self.image_channels = image_channels
        self.warp_target = warp_target
        self.residual = residual
        self.ref_policy = ref_policy
        self.spec: dict[str, Any] = {}

    def encode_ref(self, image: Tensor) -> list[Tensor]:
        """Reference feature pyramid (through the shared encoder when there is none of its own)."""
        encoder = self.ref_encoder if self.ref_encoder is not None else self.lr_encoder
        return encoder(image)

    def forward(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor:
        """Super-resolve ``lr`` with the help of ``ref``.

        Args:
            lr: B×C×h×w in [0, 1].
            ref: B×C×(s·h)×(s·w) in [0, 1] (another size goes through ``ref_policy``); with
                an aligner that is not grid-bound, any size, or a list of K references.

        Returns:
            B×C×(s·h)×(s·w).
        """
        return self.forward_intermediates(lr, ref)["sr"]

    def forward_intermediates(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        """Everything the forward pass computes, by name (what losses and viewers read).

        Returns:
            A dict with ``sr`` and ``upsampled`` (B×C×H×W), ``warped_ref`` (the aligned
            reference features per level, finest first), ``confidence`` (per level B×1×H_k×W_k,
            or ``None`` per level when the aligner has no such measure), ``warped_image``
            (B×C×H×W, CrossNet-iw only, else ``None``), ``flows`` (per level,
            B×2×⌈H/2^k⌉×⌈W/2^k⌉, applying to the unshifted reference) and ``shift`` (B×2, the
            pre-alignment shift in HR pixels), both ``None`` when the aligner has no flow, and
            whatever else the aligner shows (e.g. ``index``, ``offsets``).
        """
        refs = check_references(lr, ref, self.image_channels)  # checks lr before the upsampler reads it
        if getattr(self.aligner, "grid_bound", False):
            if len(refs) != 1:
                raise InputError(
                    f"the {type(self.aligner).__name__} aligner takes one reference, got {len(refs)}; "
                    "use an aligner that matches several (attention, match_flow)"
                )
            refs = [fit_reference(refs[0], (lr.shape[-2] * self.upscale, lr.shape[-1] * self.upscale), self.ref_policy)]
        return self.fuse_intermediates(self.upsampler(_cast(lr, model_dtype(self))), refs)

    def global_alignment(self, upsampled: Tensor, ref: Tensor) -> dict[str, Tensor] | None:
        """What the aligner finds once on the whole image (e.g. the pre-alignment shift), or ``None``.

        Tiled inference computes it on the whole pair and hands it to every window's
        :meth:`fuse` (``prior=``), so the windows share one global alignment.
        """
        prior = getattr(self.aligner, "global_prior", None)
        return None if prior is None else prior(upsampled, ref)

    def fuse(self, upsampled: Tensor, ref: Tensor | Sequence[Tensor], **options: Any) -> Tensor:
        """Everything after the upsampler: encoders, alignment and fusion (B×C×H×W).

        The authors precompute the MDSR output; this entry point takes it directly. Arguments:
        those of :meth:`fuse_intermediates`, whose ``sr`` this returns.
        """
        return self.fuse_intermediates(upsampled, ref, **options)["sr"]

    def fuse_intermediates(
        self,
        upsampled: Tensor,
        ref: Tensor | Sequence[Tensor],
        *,
        flow_input: Tensor | None = None,
        prior: dict[str, Tensor] | None = None,
    ) -> dict[str, Any]:
        """:meth:`fuse`, returning every intermediate (see :meth:`forward_intermediates`).

        Args:
            upsampled: the upsampled LR image, B×C×H×W.
            ref: the reference, B×C×H×W (or, with an aligner that is not grid-bound, any size,
                or a list).
            flow_input: the image the aligner matches against the reference instead of
                ``upsampled`` (B×C×H×W; aligners that read images only). The authors' code
                feeds the bicubic upsampling to the flow and the MDSR output to the encoder.
            prior: the whole-image alignment of :meth:`global_alignment` (tiled inference).
        """
        aligner = self.aligner
        upsampled, refs, match_target = self._fuse_inputs(upsampled, as_references(ref), flow_input)
        multiple = 2 ** (self.scales - 1)
        up_padded, size = pad_to_multiple(upsampled, multiple)
        refs_padded = [pad_to_multiple(r, multiple)[0] for r in refs]
        target = up_padded if match_target is None else pad_to_multiple(match_target, multiple)[0]
        extra = {} if prior is None else {"prior": prior}

        lr_feats = self.lr_encoder(up_padded)
        warped_image = None
        if self.warp_target == "image":
            flows, shift = aligner.estimate(target, refs_padded[0], **extra)
            warped_image = aligner.warper(refs_padded[0], flows[0])
            aligned = {"aligned": self.encode_ref(warped_image), "flows": flows, "shift": shift}
        else:
            ref_feats = [self.encode_ref(r) for r in refs_padded]
            aligned = aligner(lr_feats, ref_feats, target=target, refs=refs_padded, **extra)
            del ref_feats  # the aligner has read them; the decoder needs only the aligned maps
        out = self.decoder(lr_feats, aligned["aligned"])
        if self.residual:
            out = out + up_padded
        # Cropping is a view: returning the intermediates costs no copies.
        levels = aligned.pop("aligned")
        result = {
            "sr": crop_to(out, size),
            "upsampled": upsampled,
            "warped_ref": _crop_levels(levels, size),
            "confidence": _crop_levels(aligned.pop("confidence", None) or [None] * len(levels), size),
            "warped_image": None if warped_image is None else crop_to(warped_image, size),
            "flows": _crop_levels(aligned.pop("flows", None), size),
            "shift": aligned.pop("shift", None),
        }
        return {**result, **aligned}

    def _fuse_inputs(
        self, upsampled: Tensor, refs: list[Tensor], flow_input: Tensor | None
    ) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """Checked ``(upsampled, refs, flow_input)`` in the weights' dtype (metadata only)."""
        aligner = self.aligner
        name = type(aligner).__name__
        if flow_input is not None and not getattr(aligner, "needs_images", False):
            raise InputError(f"flow_input feeds an aligner that matches images; this CrossNet aligns with {name}")
        if getattr(aligner, "grid_bound", False):
            if len(refs) != 1:
                raise InputError(f"{name} takes one reference, got {len(refs)}")
            upsampled, ref = check_fuse_inputs(upsampled, refs[0], self)
            if flow_input is not None:
                flow_input = check_fuse_inputs(flow_input, ref, self, name="flow_input")[0]
            return upsampled, [ref], flow_input
        dtype = model_dtype(self)
        upsampled = _cast(check_model_input(upsampled, "upsampled", self.image_channels), dtype)
        refs = [_cast(check_model_input(r, "ref", self.image_channels), dtype) for r in refs]
        if flow_input is not None:
            flow_input = check_fuse_inputs(flow_input, upsampled, self, name="flow_input")[0]
        return upsampled, refs, flow_input


def _crop_levels(maps: Sequence[Tensor | None] | None, size: tuple[int, int]) -> list[Tensor | None] | None:
    """Per-level maps of the padded pyramid cropped to the pyramid of an H×W image (level k: 1/2^k)."""
    if maps is None:
        return None
    return [None if m is None else crop_to(m, level_size(*size, k)) for k, m in enumerate(maps)]


def _check_residual(spec: dict[str, Any]) -> tuple[str, str] | None:
    decoder = spec["components"]["decoder"]["params"]
    if spec["params"]["residual"] and decoder.get("output_activation") == "relu":
        return (
            "components.decoder.params.output_activation",
            "with residual=True the decoder predicts a signed correction; a 'relu' output "
            "cannot be negative: use 'none'",
        )
    return None


def _check_shared_encoder(spec: dict[str, Any]) -> tuple[str, str] | None:
    lr, ref = spec["components"]["lr_encoder"], spec["components"]["ref_encoder"]
    if spec["params"]["shared_encoder"] and lr != ref:
        return (
            "components.ref_encoder",
            "shared_encoder=True uses the LR encoder for the reference too; leave ref_encoder out "
            f"(it differs: {ref} vs {lr}) or set shared_encoder=False",
        )
    return None


def _aligner(spec: dict[str, Any]) -> Any:
    """The registry entry of the spec's aligner."""
    return get_component("aligner", spec["components"]["aligner"]["name"])


def _check_warp_target(spec: dict[str, Any]) -> tuple[str, str] | None:
    factory = _aligner(spec).factory
    flow_warp = isinstance(factory, type) and issubclass(factory, FlowWarpAligner)
    if spec["params"]["warp_target"] == "image" and not flow_warp:
        return (
            "params.warp_target",
            "warp_target='image' (CrossNet-iw) warps the image by a flow: it needs the flow_warp aligner",
        )
    return None


def build_crossnet(spec: dict[str, Any]) -> CrossNet:
    """Assemble :class:`CrossNet` from a resolved spec.

    The ``prealign``, ``flow`` and ``warper`` slots are built only for an aligner that takes
    them (``flow_warp``), which then owns them. Parts are built in the paper builder's order
    (encoders, upsampler, flow, warper, decoder, prealign), so a seeded build gives the same
    weights whatever the aligner holds.
    """
    p = spec["params"]
    takes_flow = "flow" in _aligner(spec).defaults  # flow_warp (or another aligner refining a flow)
    lr_encoder = instantiate(spec, "lr_encoder")
    ref_encoder = None if p["shared_encoder"] else instantiate(spec, "ref_encoder")
    lr_channels = pyramid_channels(lr_encoder, p["scales"], "lr_encoder")
    ref_channels = lr_channels if ref_encoder is None else pyramid_channels(ref_encoder, p["scales"], "ref_encoder")
    upsampler = instantiate(spec, "upsampler")
    flow = instantiate(spec, "flow") if takes_flow else None
    warper = instantiate(spec, "warper") if takes_flow else None
    decoder = instantiate(spec, "decoder", lr_channels=lr_channels, ref_channels=ref_channels)
    prealign = instantiate(spec, "prealign") if takes_flow else None
    aligner = instantiate(
        spec, "aligner", flow=flow, warper=warper, prealign=prealign, lr_channels=lr_channels, ref_channels=ref_channels
    )
    return CrossNet(
        upsampler=upsampler,
        lr_encoder=lr_encoder,
        ref_encoder=ref_encoder,
        aligner=aligner,
        decoder=decoder,
        upscale=p["upscale"],
        scales=p["scales"],
        image_channels=p["image_channels"],
        warp_target=p["warp_target"],
        residual=p["residual"],
        ref_policy=p["ref_policy"],
    )


_ENCODER_INJECT = {"scales": "scales", "channels": "channels", "in_channels": "image_channels"}

CROSSNET = register_architecture(
    Architecture(
        name="crossnet",
        doc="CrossNet: SISR upsampler, cross-scale flow, two encoders, per-level warping, U-Net fusion.",
        params={
            "upscale": GlobalParam(4, one_of((2, 3, 4, 8)), "super-resolution factor s"),
            "scales": GlobalParam(4, in_range(1, 7), "pyramid levels (the paper: 4)"),
            "channels": GlobalParam(64, in_range(1, 4096), "feature channels of encoders and decoder"),
            "image_channels": GlobalParam(3, in_range(1, 64), "channels of lr, ref and output"),
            "shared_encoder": GlobalParam(False, doc="one encoder for LR and reference (the paper: separate)"),
            "warp_target": GlobalParam("features", one_of(WARP_TARGETS), "warp reference features or the image (iw)"),
            "residual": GlobalParam(False, doc="add the decoder output to the upsampled LR"),
            "ref_policy": GlobalParam(
                "resize", one_of(REF_POLICIES), "a reference not s× the LR, for grid-bound aligners"
            ),
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
            "aligner": Slot(
                "aligner",
                "flow_warp",
                {
                    "flow": BUILT,
                    "warper": BUILT,
                    "prealign": BUILT,
                    "scales": "scales",
                    "in_channels": "image_channels",
                    "upscale": "upscale",
                    "lr_channels": BUILT,
                    "ref_channels": BUILT,
                },
                doc="alignment (aligners taking a flow get the prealign, flow and warper slots' parts)",
            ),
            "decoder": Slot(
                "decoder",
                "unet_fusion",
                {"lr_channels": BUILT, "ref_channels": BUILT, "out_channels": "image_channels", "channels": "channels"},
                ("lr_channels", "ref_channels"),
                "fusion decoder",
            ),
        },
        build=build_crossnet,
        checks=(_check_residual, _check_shared_encoder, _check_warp_target),
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
register_preset(
    "crossnet_attention",
    {"model": "crossnet", "components": {"aligner": {"name": "attention", "params": {"match_level": 2}}}},
    "CrossNet's encoders and U-Net decoder with TTSR-style attention transfer instead of flow (matched at 1/4)",
)
