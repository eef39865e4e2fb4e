"""The methods an evaluation compares: bicubic, a model's SISR upsampler alone, the RefSR model.

A :class:`Method` is a name and a callable ``(lr, ref) -> sr`` with the RefSR contract
(lr B×3×h×w, ref B×3×H×W, sr B×3×H×W), so the harness runs all of them the same way,
including sliding-window inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from ..checkpoint import load_model, read_metadata
from ..train.reference import prepare_reference, reference_mode_of
from ..upsamplers.bicubic import BicubicUpsampler

__all__ = ["Method", "bicubic", "methods_from_checkpoint", "refsr_model", "sisr_upsampler"]


@dataclass(frozen=True)
class Method:
    """One thing to evaluate.

    Attributes:
        name: its label in the tables.
        run: ``(lr B×3×h×w, ref B×3×H×W) -> B×3×H×W``.
        description: one line for the report.
    """

    name: str
    run: Callable[[Tensor, Tensor], Tensor]
    description: str = ""

    def __call__(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.run(lr, ref)


def bicubic(scale: int) -> Method:
    """Bicubic upsampling of the LR image (the reference is ignored)."""
    up = BicubicUpsampler(scale=scale)
    return Method("bicubic", lambda lr, ref: up(lr), f"bicubic interpolation ×{scale}")


def sisr_upsampler(model: nn.Module, name: str) -> Method:
    """The model's single-image upsampler (``model.upsampler``) alone, clamped to [0, 1]."""
    upsampler = getattr(model, "upsampler", None)
    if upsampler is None:
        raise ValueError(f"model {name!r} ({type(model).__name__}) has no .upsampler to evaluate alone")
    return Method(
        f"{name}:upsampler",
        lambda lr, ref: upsampler(lr).clamp(0.0, 1.0),
        f"the SISR upsampler of {name} alone ({type(upsampler).__name__})",
    )


def refsr_model(model: nn.Module, name: str, reference: str = "real") -> Method:
    """The RefSR model; ``reference="blank"`` feeds it a grey reference (as it was trained)."""
    what = "with a blank reference" if reference == "blank" else "with the reference"
    return Method(name, lambda lr, ref: model(lr, prepare_reference(ref, reference)), f"{name} {what}")


def methods_from_checkpoint(
    path: str | Path, name: str | None = None, *, upsampler: bool = False, device: str = "cpu"
) -> tuple[nn.Module, list[Method]]:
    """Load a ``model.safetensors`` and return ``(model, [model method, upsampler method?])``.

    The reference mode the model was trained with (metadata written by the trainer) is
    honoured. ``name`` defaults to the checkpoint's folder name.
    """
    path = Path(path)
    name = name or (path.parent.name if path.name == "model.safetensors" else path.stem)
    model = load_model(path, map_location=device).eval()
    mode = reference_mode_of(read_metadata(path))
    methods = [refsr_model(model, name, mode)]
    if upsampler:
        methods.append(sisr_upsampler(model, name))
    return model, methods
