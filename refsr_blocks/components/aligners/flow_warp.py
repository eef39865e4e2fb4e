"""CrossNet's alignment as an aligner: (pre-alignment shift +) flow estimation + backward warp."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds
from ..prealigns import NoPrealign, shift_image
from .base import Aligner, AlignerInputs

__all__ = ["FlowWarpAligner", "estimate_flows"]


def _part(kind: str, value: Any, params: dict[str, Any]) -> nn.Module:
    """``value`` if it is a built module, else the registered ``kind`` component it names."""
    if isinstance(value, nn.Module):
        return value
    from ...core.build import create_component
    from ...core.registry import get_component

    component = get_component(kind, value)
    accepted = {k: v for k, v in params.items() if k in component.defaults or component.accepts_var_kwargs}
    return create_component(kind, value, **accepted)


def estimate_flows(
    prealign: nn.Module, flow: nn.Module, target: Tensor, ref: Tensor, shift: Tensor | None = None
) -> tuple[list[Tensor], Tensor]:
    """CrossNet's flow estimation: the pre-alignment shift, the residual flows, the shift added back.

    Args:
        prealign: a pre-aligner (``(target, ref) -> B×2`` whole pixels).
        flow: a flow estimator (``(target, ref) -> flows per level``).
        target, ref: B×C×H×W.
        shift: B×2, a shift found beforehand (on the whole image, when tiling) to use instead
            of asking ``prealign``.

    Returns:
        (flows per level, finest first, B×2×H_k×W_k, each applying to the unshifted
        reference; the shift, B×2).
    """
    if shift is None:
        shift = prealign(target, ref)
    if isinstance(prealign, NoPrealign):  # the paper's path: no gather, no device sync
        return flow(target, ref), shift
    flows = flow(target, shift_image(ref, shift))
    s = shift.to(flows[0].dtype)[:, :, None, None]
    return [f + s / 2**k for k, f in enumerate(flows)], shift


@register_component("aligner", "flow_warp")
class FlowWarpAligner(Aligner):
    """Flow from the upsampled LR image to the reference, then a backward warp per level.

    The pre-aligner (``"none"`` by default) finds a global whole-pixel shift of the reference;
    the flow estimator resolves the rest, one flow per level, finest first, and the shift is
    added back; the warper samples each reference level at ``p + flow_k(p)``. This is exactly
    CrossNet's path (the architecture hands in the parts built from its ``flow``, ``warper``
    and ``prealign`` slots, which this aligner then owns; standalone, the names build
    registered components).

    A global pre-aligner's shift depends on the whole image: :meth:`global_prior` computes it
    once, and ``forward(..., prior=)`` uses it instead of a shift of its own (tiled inference
    hands every window the whole image's shift).

    Args:
        flow, warper, prealign: built modules or registered names.
        scales: pyramid levels (flows to estimate).
        in_channels: image channels (for the flow estimator).
        flow_params: constructor parameters of the flow estimator when it is named here (an
            error with a built one: CrossNet's comes from its ``flow`` slot).

    Shapes: ``target`` and the one reference B×C×H×W, H and W multiples of 2^(scales-1);
    ``aligned[k]`` like ``ref_feats[0][k]``; extra outputs ``flows`` (per level, B×2×H_k×W_k)
    and ``shift`` (B×2).
    """

    SUPPORT = replace(CONV_SUPPORT, notes="fp16: CUDA only; its flow, warper and prealign declare their own")

    # As the flow estimators' (flow_params are checked by the named flow's own bounds).
    PARAM_BOUNDS = usual_bounds("scales in_channels")

    grid_bound = True
    needs_images = True

    def __init__(
        self,
        flow: Any = "flownets_plus",
        warper: Any = "bilinear",
        prealign: Any = "none",
        scales: int = 4,
        in_channels: int = 3,
        flow_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if flow_params and isinstance(flow, nn.Module):
            raise ValueError(
                "flow_params configure a flow estimator named here; this one was built by the architecture "
                "(in CrossNet, set the flow slot's parameters instead)"
            )
        self.flow = _part("flow", flow, {"scales": scales, "in_channels": in_channels, **(flow_params or {})})
        self.warper = _part("warper", warper, {})
        self.prealign = _part("prealign", prealign, {}) if prealign is not None else NoPrealign()

    def global_prior(self, target: Tensor, ref: Tensor) -> dict[str, Tensor] | None:
        """``{"shift": B×2}``, the pre-alignment of the whole pair, or ``None`` without a pre-aligner."""
        if isinstance(self.prealign, NoPrealign):
            return None
        return {"shift": self.prealign(target, ref)}

    def estimate(
        self, target: Tensor, ref: Tensor, prior: dict[str, Tensor] | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """Flows from ``target`` to ``ref`` (per level, finest first, shift included) and the shift.

        ``prior``: a :meth:`global_prior` whose shift replaces the pre-aligner's.
        """
        return estimate_flows(self.prealign, self.flow, target, ref, None if prior is None else prior["shift"])

    def align(self, x: AlignerInputs, prior: dict[str, Tensor] | None = None) -> dict[str, Any]:
        """``prior``: a :meth:`global_prior` of the whole pair (tiled inference), else ``None``."""
        target, refs = x.images()
        flows, shift = self.estimate(target, refs[0], prior)
        pending = list(x.ref_feats[0])
        # Warp level by level, dropping each unwarped map as soon as it is used.
        aligned = [self.warper(pending.pop(0), flow) for flow in flows[: len(x.target_feats)]]
        return {"aligned": aligned, "confidence": [None] * len(aligned), "flows": flows, "shift": shift}
