"""The ``aligner`` contract, shared by every aligner.

An aligner brings reference features onto the LR grid, level by level::

    out = aligner(target_feats, ref_feats, target=up, refs=[ref, ...], key_feats=None)

- ``target_feats``: the LR side's feature pyramid (list over levels, finest first, level k
  B×C_k×H_k×W_k; the query side of attention);
- ``ref_feats``: one pyramid per reference (``ref_feats[r][k]`` B×C'_k×H_{r,k}×W_{r,k}; the
  values to transfer);
- ``target``: the upsampled LR image B×C×H×W; ``refs``: the K reference images;
- ``key_feats``: optional reference pyramids to *match* with when they differ from the
  values (TTSR matches on the degraded reference ``Ref↓↑`` and transfers from ``Ref``).

An aligner whose alignment depends on the whole image (flow_warp's global pre-alignment
shift) offers ``global_prior(target, ref) -> dict | None`` and takes the result back as
``forward(..., prior=...)``: tiled inference computes it once on the whole pair and hands it
to every window. ``prior`` is passed only to aligners that define ``global_prior``.

It returns a dict with ``aligned`` (list over levels: B×C'_k×H_k×W_k, the reference
features on the target grid of that level) and ``confidence`` (list over levels of
B×1×H_k×W_k, or ``None`` per level when the aligner has no such measure), plus what the
aligner wants to show (``flows``, ``shift``, ``index``, ``offsets``).

Aligners with ``grid_bound = True`` (flow and deformable) need exactly one reference already
on the target grid; models bring the reference there with their reference policy
(:mod:`refsr_blocks.ops.references`). Attention aligners take K references of
any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from ...core.errors import InputError

__all__ = ["Aligner", "AlignerInputs", "check_aligner_inputs"]


@dataclass(frozen=True)
class AlignerInputs:
    """An aligner's inputs, already checked against its contract (shapes: the module docstring)."""

    target_feats: Sequence[Tensor]
    ref_feats: Sequence[Sequence[Tensor]]
    target: Tensor | None
    refs: Sequence[Tensor] | None
    key_feats: Sequence[Sequence[Tensor]] | None

    def images(self) -> tuple[Tensor, Sequence[Tensor]]:
        """``(target, refs)``, present whenever the aligner declares ``needs_images``."""
        assert self.target is not None and self.refs is not None
        return self.target, self.refs


class Aligner(nn.Module):
    """Base class of aligners (see the module docstring for the call contract).

    ``forward`` checks the inputs once for every aligner (:func:`check_aligner_inputs`) and
    hands them to :meth:`align`, which subclasses implement; keyword options beyond the
    contract's (``prior=`` of aligners with ``global_prior``) go to :meth:`align` unchanged,
    so an aligner that takes none still refuses them.

    Attributes:
        grid_bound: needs one reference on the target grid (flow, deformable).
        needs_images: reads ``target`` and ``refs`` (the flow aligner).
    """

    grid_bound: ClassVar[bool] = False
    needs_images: ClassVar[bool] = False

    def forward(
        self,
        target_feats: Sequence[Tensor],
        ref_feats: Sequence[Sequence[Tensor]],
        *,
        target: Tensor | None = None,
        refs: Sequence[Tensor] | None = None,
        key_feats: Sequence[Sequence[Tensor]] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        check_aligner_inputs(self, target_feats, ref_feats, target, refs)
        return self.align(AlignerInputs(target_feats, ref_feats, target, refs, key_feats), **options)

    def align(self, x: AlignerInputs) -> dict[str, Any]:
        """The output dict of the contract for checked inputs ``x``."""
        raise NotImplementedError


def check_aligner_inputs(
    aligner: Aligner,
    target_feats: Sequence[Tensor],
    ref_feats: Sequence[Sequence[Tensor]],
    target: Tensor | None,
    refs: Sequence[Tensor] | None,
) -> None:
    """Raise :class:`InputError` when the inputs do not fit ``aligner``'s contract."""
    name = type(aligner).__name__
    if not ref_feats:
        raise InputError(f"{name}: give at least one reference pyramid")
    levels = len(target_feats)
    for r, pyramid in enumerate(ref_feats):
        if len(pyramid) != levels:
            raise InputError(f"{name}: reference {r} has {len(pyramid)} levels, the target {levels}")
    if aligner.needs_images and (target is None or not refs):
        raise InputError(f"{name} needs the images: pass target= and refs=")
    if aligner.grid_bound:
        if len(ref_feats) != 1:
            raise InputError(
                f"{name} aligns one reference on the target grid, got {len(ref_feats)}; "
                "an attention aligner matches several references jointly"
            )
        for k, (t, r) in enumerate(zip(target_feats, ref_feats[0])):
            if t.shape[-2:] != r.shape[-2:]:
                raise InputError(
                    f"{name}: level {k} of the reference is {tuple(r.shape[-2:])}, the target's "
                    f"{tuple(t.shape[-2:])}; bring the reference onto the target grid first (reference policy)"
                )
