"""The methods an evaluation compares: bicubic, a model's SISR upsampler alone, the RefSR model
and its reference controls (the same model fed references built from the item).

A :class:`Method` is a name and a callable ``(lr, ref) -> sr`` with the RefSR contract
(lr B×3×h×w, ref B×3×H×W, sr B×3×H×W), so the harness runs all of them the same way,
including sliding-window inference. A control also carries the :class:`~.references.Reference`
the harness builds from each item and feeds as ``ref`` instead of the item's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from ..components.upsamplers.bicubic import BicubicUpsampler
from ..core.checkpoint import load_model, read_metadata
from .references import CONTROLS, REFERENCES, BatchedItem, Reference, prepare_reference, reference_mode_of

__all__ = [
    "Method",
    "bicubic",
    "control_name",
    "methods_from_checkpoint",
    "reference_controls",
    "refsr_model",
    "sisr_upsampler",
]


@dataclass(frozen=True)
class Method:
    """One thing to evaluate.

    Attributes:
        name: its label in the tables.
        run: ``(lr B×3×h×w, ref B×3×H×W) -> B×3×H×W``.
        description: one line for the report.
        reference: what ``run`` is fed as ``ref``: None for the item's own reference, else a
            :class:`~.references.Reference` built from the item (a control).
        control_of: for a control, the name of the method (the same model with the real
            reference) it is a control for; the reference gain compares the two.
    """

    name: str
    run: Callable[[Tensor, Tensor], Tensor]
    description: str = ""
    reference: Reference | None = None
    control_of: str | None = None

    def __call__(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.run(lr, ref)

    def reference_for(self, item: BatchedItem) -> Tensor | None:
        """The B×3×H×W reference to feed for a batched item, or None if the item lacks what it needs."""
        if self.reference is None:
            return item["ref"]
        if any(key not in item for key in self.reference.needs):
            return None
        return self.reference.build(item)


def bicubic(scale: int) -> Method:
    """Bicubic upsampling of the LR image (the reference is ignored)."""
    up = BicubicUpsampler(scale=scale)
    return Method("bicubic", lambda lr, ref: up(lr), f"bicubic interpolation ×{scale} of the LR (no reference)")


def sisr_upsampler(model: nn.Module, name: str) -> Method:
    """The model's single-image upsampler (``model.upsampler``) alone, clamped to [0, 1].

    CrossNet computes ``fuse(model.upsampler(lr), ref)``, so this is the image the model starts from.
    """
    upsampler = getattr(model, "upsampler", None)
    if upsampler is None:
        raise ValueError(f"model {name!r} ({type(model).__name__}) has no .upsampler to evaluate alone")
    return Method(
        f"{name}:upsampler",
        lambda lr, ref: upsampler(lr).clamp(0.0, 1.0),
        f"the SISR upsampler of {name} alone ({type(upsampler).__name__}), no reference",
    )


def refsr_model(model: nn.Module, name: str, reference: str = "real") -> Method:
    """The RefSR model; ``reference="blank"`` feeds it a grey reference (as it was trained)."""
    what = (
        "with a blank reference (flat grey, as it was trained: no reference controls)"
        if reference == "blank"
        else "with the item's real reference"
    )
    return Method(name, lambda lr, ref: model(lr, prepare_reference(ref, reference)), f"{name} {what}")


def control_name(name: str, kind: str) -> str:
    """The row name of model ``name`` fed the ``kind`` reference: ``"<name> (ref=<kind>)"``."""
    return f"{name} (ref={kind})"


def reference_controls(model: nn.Module, name: str, kinds: Sequence[str] = CONTROLS) -> list[Method]:
    """The model fed each reference control of ``kinds`` (keys of :data:`~.references.REFERENCES`).

    Args:
        model: a RefSR model ``(lr B×3×h×w, ref B×3×H×W) -> B×3×H×W``.
        name: the name of its real-reference method (see :func:`refsr_model`).
        kinds: ``"grey"``, ``"bicubic-lr"``, ``"oracle"``, in the order wanted.

    Returns:
        One :class:`Method` per kind, named ``"<name> (ref=<kind>)"``, ``control_of=name``.
    """
    unknown = [k for k in kinds if k not in REFERENCES]
    if unknown:
        raise ValueError(f"unknown reference control(s) {unknown}; accepted: {', '.join(REFERENCES)}")
    return [
        Method(
            control_name(name, kind),
            lambda lr, ref: model(lr, ref),
            f"{name} fed {REFERENCES[kind].description}",
            reference=REFERENCES[kind],
            control_of=name,
        )
        for kind in kinds
    ]


def methods_from_checkpoint(
    path: str | Path,
    name: str | None = None,
    *,
    upsampler: bool = False,
    controls: Sequence[str] = (),
    device: str = "cpu",
) -> tuple[nn.Module, list[Method]]:
    """Load a ``model.safetensors`` and return ``(model, methods)``.

    The methods, from least to most information: the SISR upsampler alone (``upsampler``),
    the no-information ``controls`` (``grey``, ``bicubic-lr``), the model with the real
    reference, the ``oracle`` control. The reference mode the model was trained with
    (metadata written by the trainer) is honoured: a model trained with a blank reference never
    sees one, so it gets no controls. ``name`` defaults to the checkpoint's folder name.
    """
    path = Path(path)
    name = name or (path.parent.name if path.name == "model.safetensors" else path.stem)
    model = load_model(path, map_location=device).eval()
    mode = reference_mode_of(read_metadata(path))
    found = reference_controls(model, name, controls) if mode == "real" else []
    methods = [sisr_upsampler(model, name)] if upsampler else []
    methods += [m for m in found if m.reference is not None and not m.reference.informative]
    methods.append(refsr_model(model, name, mode))
    methods += [m for m in found if m.reference is not None and m.reference.informative]
    return model, methods
