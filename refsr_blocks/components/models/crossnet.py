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

Alignment is a slot (kind ``aligner``). The default, ``flow_warp``, is steps 2 and 4 above,
built from the ``prealign``, ``flow`` and ``warper`` slots, which stay top-level parts of the
model (``model.flow``…), so checkpoints, ``freeze`` lists and losses keep their names. Any
other aligner is a spec change (``components: {aligner: attention}``): the reference is then
encoded and matched by that aligner, and ``prealign``/``flow``/``warper`` are not built. A
reference whose size is not s× the LR is brought to it by ``ref_policy`` (resize, crop_pad,
strict) for grid-bound aligners (flow, deformable); the attention aligner takes K references
of any size (a list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ...core.build import instantiate
from ...core.errors import InputError
from ...core.registry import get_component, register_component
from ...core.spec import BUILT, Architecture, GlobalParam, Slot, register_preset
from ...ops.flow import crop_to, level_size, pad_to_multiple
from ..aligners.flow_warp import FlowWarpAligner, estimate_flows
from ..prealigners import NoPrealign
from .inputs import _cast, check_fuse_inputs, check_image, model_dtype
from .references import REF_POLICIES, check_references, fit_reference

__all__ = ["CROSSNET", "CrossNet"]

WARP_TARGETS = ("features", "image")


class CrossNet(nn.Module):
    """The CrossNet network; build it with ``build_model("crossnet")`` rather than directly.

    Args:
        upsampler, lr_encoder, decoder: components honouring their kinds' contracts.
        flow, warper, prealign: the parts of a flow-and-warp aligner (``None`` with another
            aligner; ``prealign`` ``None`` means no shift).
        ref_encoder: the reference encoder, or ``None`` to share ``lr_encoder``.
        upscale: the SR factor s.
        scales: pyramid levels.
        image_channels: channels of lr and ref.
        warp_target: ``"features"`` (CrossNet) or ``"image"`` (CrossNet-iw).
        residual: add the decoder output to the upsampled LR.
        prealign: a pre-alignment component (``None``: no shift).
        aligner: an aligner; ``None`` builds the flow-and-warp aligner from ``flow``,
            ``warper`` and ``prealign``.
        ref_policy: how a grid-bound aligner's reference is brought to the output size
            (see :mod:`~refsr_blocks.components.models.references`).
    """

    def __init__(
        self,
        upsampler: nn.Module,
        flow: nn.Module | None,
        lr_encoder: nn.Module,
        ref_encoder: nn.Module | None,
        warper: nn.Module | None,
        decoder: nn.Module,
        *,
        upscale: int,
        scales: int,
        image_channels: int = 3,
        warp_target: str = "features",
        residual: bool = False,
        prealign: nn.Module | None = None,
        aligner: nn.Module | None = None,
        ref_policy: str = "resize",
    ) -> None:
        super().__init__()
        flow_based = aligner is None or isinstance(aligner, FlowWarpAligner)
        if flow_based:
            # The parts are the model's own top-level modules (checkpoint keys flow.*,
            # prealign.*, warper.*), used directly, so replacing one replaces it everywhere.
            if aligner is not None:
                flow, warper, prealign = aligner.flow, aligner.warper, aligner.prealign
            if flow is None or warper is None:
                raise ValueError("give an aligner, or the flow and warper of the flow-and-warp aligner")
        elif warp_target == "image":
            raise ValueError("warp_target='image' (CrossNet-iw) needs the flow_warp aligner")
        self.upsampler = upsampler
        self.prealign = (prealign if prealign is not None else NoPrealign()) if flow_based else None
        self.flow = flow if flow_based else None
        self.lr_encoder = lr_encoder
        self.ref_encoder = ref_encoder  # None: shared with lr_encoder (registered once)
        self.warper = warper if flow_based else None
        self.aligner = None if flow_based else aligner
        self.decoder = decoder
        self.upscale = upscale
        self.scales = scales
        self.image_channels = image_channels
        self.warp_target = warp_target
        self.residual = residual
        self.ref_policy = ref_policy
        self.spec: dict[str, Any] = {}

    @property
    def flow_based(self) -> bool:
        """Whether alignment is CrossNet's flow-and-warp (flows, shift and CrossNet-iw available)."""
        return self.aligner is None

    @property
    def alignment(self) -> nn.Module:
        """The aligner in use; for flow-and-warp, one made of the model's own ``flow``, ``warper``, ``prealign``."""
        if self.aligner is not None:
            return self.aligner
        return FlowWarpAligner(flow=self.flow, warper=self.warper, prealign=self.prealign)

    def _references(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor | list[Tensor]:
        """The checked references; one on the output grid for a grid-bound aligner (``ref_policy``)."""
        refs = check_references(lr, ref, self.image_channels)
        aligner = FlowWarpAligner if self.aligner is None else self.aligner
        if not getattr(aligner, "grid_bound", False):
            return refs
        if len(refs) != 1:
            raise InputError(
                f"the {getattr(aligner, '__name__', type(aligner).__name__)} aligner takes one reference, got {len(refs)}; "
                "use the attention aligner to match several"
            )
        size = (lr.shape[-2] * self.upscale, lr.shape[-1] * self.upscale)
        return fit_reference(refs[0], size, self.ref_policy)

    def encode_ref(self, image: Tensor) -> list[Tensor]:
        """Reference feature pyramid (through the shared encoder when there is none of its own)."""
        encoder = self.ref_encoder if self.ref_encoder is not None else self.lr_encoder
        return encoder(image)

    def forward(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> Tensor:
        """Super-resolve ``lr`` with the help of ``ref``.

        Args:
            lr: B×C×h×w in [0, 1].
            ref: B×C×(s·h)×(s·w) in [0, 1] (another size goes through ``ref_policy``); with
                the attention aligner, any size, or a list of K references.

        Returns:
            B×C×(s·h)×(s·w).
        """
        refs = self._references(lr, ref)  # checks lr too, before the upsampler reads it
        return self.fuse(self.upsampler(_cast(lr, model_dtype(self))), refs)

    def forward_intermediates(self, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> dict[str, Any]:
        """Everything the forward pass computes, by name (what losses and viewers read).

        Returns:
            A dict with ``sr`` and ``upsampled`` (B×C×H×W), ``flows`` (per level, finest
            first, B×2×⌈H/2^k⌉×⌈W/2^k⌉, applying to the unshifted reference), ``warped_ref``
            (per level), ``warped_image`` (B×C×H×W, CrossNet-iw only, else ``None``) and
            ``shift`` (B×2, the pre-alignment shift in HR pixels). With another aligner,
            ``flows`` and ``shift`` are ``None``, ``warped_ref`` holds its aligned features,
            and ``confidence`` (and the aligner's own outputs, e.g. ``index``) are added.
        """
        refs = self._references(lr, ref)
        return self.fuse_intermediates(self.upsampler(_cast(lr, model_dtype(self))), refs)

    def align(self, upsampled: Tensor, ref: Tensor) -> tuple[list[Tensor], Tensor]:
        """Flows from ``upsampled`` to ``ref`` (B×3×H×W each, H and W multiples of 2^(scales-1)).

        Returns:
            (flows per level, finest first, each including the pre-alignment shift; the
            shift, B×2 whole pixels).
        """
        if not self.flow_based:
            raise InputError(f"align() computes flows; this CrossNet aligns with {type(self.aligner).__name__}")
        return estimate_flows(self.prealign, self.flow, upsampled, ref)

    def fuse(self, upsampled: Tensor, ref: Tensor | Sequence[Tensor], *, flow_input: Tensor | None = None) -> Tensor:
        """Everything after the upsampler: alignment, encoders, warping and fusion.

        The authors precompute the MDSR output; this entry point takes it directly.

        Args:
            upsampled: the upsampled LR image, B×C×H×W.
            ref: the reference, B×C×H×W (or, with the attention aligner, any size, or a list).
            flow_input: the image the flow estimator matches against ``ref`` instead of
                ``upsampled`` (B×C×H×W, flow-based aligners only). The authors' code feeds the
                bicubic upsampling to the flow and the MDSR output to the encoder.

        Returns:
            B×C×H×W.
        """
        return self.fuse_intermediates(upsampled, ref, flow_input=flow_input)["sr"]

    def fuse_intermediates(
        self, upsampled: Tensor, ref: Tensor | Sequence[Tensor], *, flow_input: Tensor | None = None
    ) -> dict[str, Any]:
        """:meth:`fuse`, returning every intermediate (see :meth:`forward_intermediates`)."""
        multiple = 2 ** (self.scales - 1)
        if not self.flow_based:
            if flow_input is not None:
                raise InputError(
                    f"flow_input feeds a flow estimator; this CrossNet aligns with {type(self.aligner).__name__}"
                )
            return self._fuse_aligned(upsampled, ref, multiple)
        if isinstance(ref, (list, tuple)):
            if len(ref) != 1:
                raise InputError(f"flow-based CrossNet takes one reference, got {len(ref)}")
            ref = ref[0]
        upsampled, ref = check_fuse_inputs(upsampled, ref, self)  # metadata only; casts to the weights' dtype
        up_padded, size = pad_to_multiple(upsampled, multiple)
        ref_padded, _ = pad_to_multiple(ref, multiple)
        flow_padded = up_padded
        if flow_input is not None:
            flow_padded = pad_to_multiple(check_fuse_inputs(flow_input, ref, self, name="flow_input")[0], multiple)[0]

        flows, shift = self.align(flow_padded, ref_padded)
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

    def _fuse_aligned(self, upsampled: Tensor, ref: Tensor | Sequence[Tensor], multiple: int) -> dict[str, Any]:
        """:meth:`fuse_intermediates` with a non-flow aligner (attention, deformable, …)."""
        dtype = model_dtype(self)
        upsampled = check_image(upsampled, "upsampled", self.image_channels)
        refs = [check_image(r, "ref", self.image_channels) for r in ([ref] if isinstance(ref, Tensor) else ref)]
        if dtype is not None:
            upsampled, refs = upsampled.to(dtype), [r.to(dtype) for r in refs]
        aligner = self.aligner
        if getattr(aligner, "grid_bound", False) and (len(refs) != 1 or refs[0].shape != upsampled.shape):
            raise InputError(f"{type(aligner).__name__} needs one reference of the upsampled image's shape")
        up_padded, size = pad_to_multiple(upsampled, multiple)
        refs_padded = [pad_to_multiple(r, multiple)[0] for r in refs]
        lr_feats = self.lr_encoder(up_padded)
        ref_feats = [self.encode_ref(r) for r in refs_padded]
        out = aligner(lr_feats, ref_feats, target=up_padded, refs=refs_padded)
        dec = self.decoder(lr_feats, out["aligned"])
        if self.residual:
            dec = dec + up_padded
        sizes = [level_size(*size, k) for k in range(len(out["aligned"]))]
        extra = {k: v for k, v in out.items() if k not in ("aligned", "confidence")}
        return {
            "sr": crop_to(dec, size),
            "upsampled": upsampled,
            "flows": None,
            "warped_ref": [crop_to(f, s) for f, s in zip(out["aligned"], sizes)],
            "confidence": [None if c is None else crop_to(c, s) for c, s in zip(out["confidence"], sizes)],
            "warped_image": None,
            "shift": None,
            **extra,
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


def _is_flow_aligner(spec: dict[str, Any]) -> bool:
    factory = get_component("aligner", spec["components"]["aligner"]["name"]).factory
    return isinstance(factory, type) and issubclass(factory, FlowWarpAligner)


def _check_warp_target(spec: dict[str, Any]) -> tuple[str, str] | None:
    if spec["params"]["warp_target"] == "image" and not _is_flow_aligner(spec):
        return (
            "params.warp_target",
            "warp_target='image' (CrossNet-iw) warps the image by a flow: it needs the flow_warp aligner",
        )
    return None


def build_crossnet(spec: dict[str, Any]) -> CrossNet:
    """Assemble :class:`CrossNet` from a resolved spec.

    The ``prealign``, ``flow`` and ``warper`` slots are built only for a flow-and-warp aligner,
    which receives them; they are built in the order they always were, so a seeded build
    gives the same weights as before alignment was a slot.
    """
    p = spec["params"]
    flow_based = _is_flow_aligner(spec)
    # The order of the paper's builder (encoders, upsampler, flow, warper, decoder, prealign).
    lr_encoder = instantiate(spec, "lr_encoder")
    ref_encoder = None if p["shared_encoder"] else instantiate(spec, "ref_encoder")
    lr_channels = list(_pyramid_channels(lr_encoder, p["scales"], "lr_encoder"))
    ref_channels = (
        lr_channels if ref_encoder is None else list(_pyramid_channels(ref_encoder, p["scales"], "ref_encoder"))
    )
    upsampler = instantiate(spec, "upsampler")
    flow = instantiate(spec, "flow") if flow_based else None
    warper = instantiate(spec, "warper") if flow_based else None
    decoder = instantiate(spec, "decoder", lr_channels=lr_channels, ref_channels=ref_channels)
    prealign = instantiate(spec, "prealign") if flow_based else None
    aligner = instantiate(
        spec, "aligner", flow=flow, warper=warper, prealign=prealign, lr_channels=lr_channels, ref_channels=ref_channels
    )
    return CrossNet(
        upsampler=upsampler,
        flow=flow,
        lr_encoder=lr_encoder,
        ref_encoder=ref_encoder,
        warper=warper,
        decoder=decoder,
        upscale=p["upscale"],
        scales=p["scales"],
        image_channels=p["image_channels"],
        warp_target=p["warp_target"],
        residual=p["residual"],
        prealign=prealign,
        aligner=aligner,
        ref_policy=p["ref_policy"],
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
            "ref_policy": GlobalParam(
                "resize", _one_of(REF_POLICIES), "a reference not s× the LR, for grid-bound aligners"
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
                    "lr_channels": BUILT,
                    "ref_channels": BUILT,
                },
                doc="alignment (flow_warp uses the prealign, flow and warper slots; others ignore them)",
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
register_preset(
    "crossnet_attention",
    {"model": "crossnet", "components": {"aligner": {"name": "attention", "params": {"match_level": 2}}}},
    "CrossNet's encoders and U-Net decoder with TTSR-style attention transfer instead of flow (matched at 1/4)",
)
