"""What the network sees as its reference: the real one, or a blank (grey) image.

Training with ``reference: blank`` gives the ablation "same network, no reference": every
reference is replaced by a constant grey image, so whatever the network gains over that run
comes from the reference. The mode is stored in the checkpoint metadata under
:data:`REFERENCE_METADATA_KEY` so evaluation feeds the model what it was trained with.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["BLANK_VALUE", "REFERENCE_METADATA_KEY", "prepare_reference", "reference_mode_of"]

#: Metadata key of ``model.safetensors`` files written by the trainer.
REFERENCE_METADATA_KEY = "refsr_blocks.train.reference"
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
