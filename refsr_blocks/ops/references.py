"""References of any size and number: checks and the reference policy of grid-bound models.

Attention aligners take K ≥ 1 references of any size and aspect ratio. Flow and deformable
alignment need one reference on the output grid; a model's ``ref_policy`` brings it there:

- ``"resize"``: bicubic resize to the output size (antialiased when shrinking); the aspect
  ratio changes if it differs;
- ``"crop_pad"``: keep the top-left ``H×W`` of the reference, replicating its bottom/right
  border where it is smaller (pixels keep their scale);
- ``"strict"``: raise unless the reference already has the output size (CrossNet's old
  behaviour).

A reference that already has the output size is returned as is, whatever the policy (so the
policy never changes a model's output on the paper's inputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..core.errors import InputError
from .inputs import _cast, check_finite, check_model_input, debug_checks, model_dtype

__all__ = ["REF_POLICIES", "as_references", "check_references", "fit_reference", "model_inputs"]

REF_POLICIES = ("resize", "crop_pad", "strict")


def as_references(ref: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """``[ref]`` for one tensor, the list for several (each B×C×H_r×W_r)."""
    if isinstance(ref, Tensor):
        return [ref]
    if isinstance(ref, (list, tuple)) and ref:
        return list(ref)
    raise InputError(f"ref must be a B×C×H×W tensor or a non-empty list of them, got {type(ref).__name__}")


def check_references(lr: Tensor, ref: Tensor | Sequence[Tensor], channels: int = 3) -> list[Tensor]:
    """Check ``lr`` (B×C×h×w) and the references (each B×C×H_r×W_r, any H_r, W_r ≥ 1).

    Returns:
        The references as a list.

    Raises:
        InputError: a wrong type, rank, channel count, dtype or batch size (finiteness too
            when debug checks are on).
    """
    check_model_input(lr, "lr", channels)
    refs = as_references(ref)
    for r, image in enumerate(refs):
        name = "ref" if len(refs) == 1 else f"ref[{r}]"
        check_model_input(image, name, channels)
        if image.shape[0] != lr.shape[0]:
            raise InputError(f"{name} has batch size {image.shape[0]}, lr {lr.shape[0]}")
        if debug_checks():
            check_finite(image, name)
    if debug_checks():
        check_finite(lr, "lr")
    return refs


def model_inputs(model: nn.Module, lr: Tensor, ref: Tensor | Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """``lr`` and the references checked (:func:`check_references`, with ``model.image_channels``)
    and in the dtype of ``model``'s weights: float16, bfloat16 and float64 inputs follow the weights.

    Returns:
        ``(lr, refs)``: B×C×h×w and a list of B×C×H_r×W_r.
    """
    refs = check_references(lr, ref, int(getattr(model, "image_channels", 3)))
    dtype = model_dtype(model)  # metadata only: no read of the values
    return _cast(lr, dtype), [_cast(r, dtype) for r in refs]


def fit_reference(ref: Tensor, size: tuple[int, int], policy: str) -> Tensor:
    """``ref`` (B×C×H_r×W_r) brought to ``size`` (H, W) by ``policy`` (see the module docstring)."""
    if policy not in REF_POLICIES:
        raise InputError(f"ref_policy must be one of {list(REF_POLICIES)}, got {policy!r}")
    h, w = size
    if tuple(ref.shape[-2:]) == (h, w):
        return ref
    if policy == "strict":
        raise InputError(
            f"the reference must be {h}×{w} (the output size) with ref_policy='strict', got "
            f"{tuple(ref.shape[-2:])}; use ref_policy 'resize' or 'crop_pad', or an attention aligner"
        )
    if policy == "resize":
        shrink = ref.shape[-2] > h or ref.shape[-1] > w
        return F.interpolate(ref, size=(h, w), mode="bicubic", align_corners=False, antialias=shrink)
    ref = ref[..., :h, :w]
    pad_h, pad_w = h - ref.shape[-2], w - ref.shape[-1]
    if pad_h or pad_w:
        ref = F.pad(ref, (0, pad_w, 0, pad_h), mode="replicate")
    return ref
