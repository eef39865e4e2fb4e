"""The references a RefSR model is fed in place of the item's own: the controls of a RefSR claim.

A model trained with ``reference: blank`` saw a grey image in place of every reference (the
ablation "same network, no reference": whatever a real-reference run gains over it comes from
the reference); :func:`prepare_reference` feeds either mode, and the trainer records the mode
in the model file under :data:`REFERENCE_METADATA_KEY` so evaluation feeds what it was trained with.

A RefSR gain is only evidence if the same network fed a reference *without information*
about the HR image does worse. The controls, each a :class:`Reference`:

- ``grey``: a flat grey image (:data:`BLANK_VALUE` everywhere, the
  training mode ``reference: blank``); it takes only the shape of the real reference;
- ``bicubic-lr``: the bicubic upsample of the item's own LR image (no information beyond the LR);
- ``oracle``: the real reference backward-warped with the item's ground-truth flow
  (``hr[p] ≈ ref[p + flow[p]]``, items of the synthetic-parallax dataset), so it is aligned
  with the HR image wherever the flow is valid (elsewhere the warp reads the border): an upper
  bound on what better alignment could give. Items without ``"flow"`` get no oracle row.

A builder reads a *batched* item: ``{"lr": B×3×h×w, "ref": B×3×H×W, "hr": B×3×H×W,
"flow"?: B×2×H×W, "valid"?: B×1×H×W}`` and returns a B×3×H×W reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..components.upsamplers.bicubic import BicubicUpsampler
from ..ops.warp import backward_warp, pixel_grid, sample

__all__ = [
    "BLANK_VALUE",
    "CONTROLS",
    "REFERENCES",
    "REFERENCE_METADATA_KEY",
    "BatchedItem",
    "Reference",
    "bicubic_lr_reference",
    "grey_reference",
    "oracle_reference",
    "prepare_reference",
    "reference_mode_of",
]

#: Metadata key of ``model.safetensors`` files written by the trainer.
REFERENCE_METADATA_KEY = "refsr_blocks.train.reference"  # the file format's key, not a module path
#: The grey level of a blank reference (mid-range, so a residual network starts unbiased).
BLANK_VALUE = 0.5


def prepare_reference(ref: Tensor, mode: str) -> Tensor:
    """``ref`` itself for ``mode="real"``, a same-shaped grey image for ``mode="blank"``.

    Args:
        ref: B×C×H×W reference.
        mode: ``"real"`` or ``"blank"``.
    """
    if mode == "real":
        return ref
    if mode == "blank":
        return torch.full_like(ref, BLANK_VALUE)
    raise ValueError(f"reference mode must be 'real' or 'blank', got {mode!r}")


def reference_mode_of(metadata: Mapping[str, str]) -> str:
    """The reference mode recorded in checkpoint metadata (``"real"`` when absent)."""
    return metadata.get(REFERENCE_METADATA_KEY, "real")


#: A dataset item with a batch dimension on every tensor (see the module docstring).
BatchedItem = Mapping[str, Tensor]


@dataclass(frozen=True)
class Reference:
    """A reference built from the item, fed to a model instead of the item's own reference.

    Attributes:
        kind: its label, as in the row name ``"<model> (ref=<kind>)"``.
        build: ``batched item -> B×3×H×W`` reference.
        informative: whether it carries information about the HR image beyond the LR image
            (``oracle``: yes; ``grey`` and ``bicubic-lr``, the no-information controls: no).
        needs: item keys ``build`` reads besides ``lr`` and ``ref``; items lacking one get no row.
        description: one line for the report.
    """

    kind: str
    build: Callable[[BatchedItem], Tensor]
    informative: bool
    needs: tuple[str, ...] = ()
    description: str = ""


def grey_reference(item: BatchedItem) -> Tensor:
    """A flat grey B×3×H×W image (0.5): only the *shape* of ``item["ref"]`` is used."""
    return prepare_reference(item["ref"], "blank")


def bicubic_lr_reference(item: BatchedItem) -> Tensor:
    """The bicubic upsample of ``item["lr"]`` (B×3×h×w) to the HR size (the reference's when there is no
    ``hr``), clamped to [0, 1]."""
    lr = item["lr"]
    target = item["hr"] if "hr" in item else item["ref"]  # references of other sizes: the HR grid
    scale = target.shape[-1] // lr.shape[-1]
    if (lr.shape[-2] * scale, lr.shape[-1] * scale) != tuple(target.shape[-2:]):
        raise ValueError(f"{tuple(target.shape)} is not an integer multiple of lr {tuple(lr.shape)}")
    return BicubicUpsampler(scale=scale)(lr)


def oracle_reference(item: BatchedItem) -> Tensor:
    """``item["ref"]`` (B×3×Hr×Wr) backward-warped by the true ``item["flow"]`` (B×2×H×W).

    ``out[p] = ref[p + flow[p]] ≈ hr[p]`` where ``item["valid"]`` is 1; elsewhere the warp's
    border-replicated read is kept as it is. A reference of another size than the flow
    (viewpoint pairs with ``ref_size="free"``) is read at those positions of its own grid.
    """
    ref, flow = item["ref"], item["flow"]
    if ref.shape[-2:] == flow.shape[-2:]:
        return backward_warp(ref, flow.to(ref.dtype))
    b, _, h, w = flow.shape
    points = (pixel_grid(h, w, flow.device) + flow.float()).flatten(2)
    return sample(ref, points.to(ref.dtype)).view(b, ref.shape[1], h, w)


#: The controls, by kind, in report order (least to most information).
REFERENCES: dict[str, Reference] = {
    r.kind: r
    for r in (
        Reference("grey", grey_reference, False, (), "a flat grey reference (0.5 everywhere: no information)"),
        Reference(
            "bicubic-lr",
            bicubic_lr_reference,
            False,
            (),
            "the bicubic upsample of its own LR image as the reference (no information beyond the LR)",
        ),
        Reference(
            "oracle",
            oracle_reference,
            True,
            ("flow",),
            "the reference backward-warped by the ground-truth flow (aligned with the HR; an upper bound)",
        ),
    )
}

#: The default controls of ``refsr-blocks eval``.
CONTROLS: tuple[str, ...] = tuple(REFERENCES)
