"""DATSR (Cao et al., "Reference-based Image Super-Resolution with Deformable Attention
Transformer", ECCV 2022) as presets of the ``c2_matching`` architecture.

DATSR's pipeline is C2-Matching's with another restoration network: its texture feature
encoder and correspondence are C2-Matching's contrastive extractors and 3×3 patch matching
(the authors' code imports them), its texture features are VGG19's relu1_1 … relu3_1, and its
restoration is the ``datsr_rfa`` U-Net of reference-based deformable attention and residual
Swin groups (:mod:`~refsr_blocks.components.restorations.datsr_rfa`). So the ``datsr`` preset
fills the ``c2_matching`` architecture's restoration slot with it: the same parts, recombined.

Differences from the authors' code (``caojiezhang/DATSR``), none of which changes the output
for their inputs (a reference of the LR image's size, LR sides multiples of the Swin window):

- a reference of another size is matched and sampled where it is, not zero-padded together
  with the LR image to a common size (their test data loader pads both, then crops the output);
- K references are matched jointly (theirs: one);
- LR sizes that are not multiples of the Swin window work (windows are padded);
- the matching holds at most ``chunk_size``² similarities at a time (theirs: blocks of 2^29);
- no compiled extension (their modulated deformable convolution is mmcv's CUDA op).
"""

from __future__ import annotations

from ...core.spec import register_preset
from ..restorations import datsr_rfa  # noqa: F401 - registers the datsr_rfa restoration
from . import c2_matching  # registers the c2_matching architecture

__all__: list[str] = []

register_preset(
    "datsr",
    {"model": "c2_matching", "params": {"channels": 128}, "components": {"restoration": {"name": "datsr_rfa"}}},
    "DATSR as the authors release it (×4): C2-Matching's correspondence, VGG19 textures, deformable attention "
    "and Swin aggregation (128 channels, depths 4/4, 8 groups), their unused content extractor kept",
)
# c2_matching_small's parts with a small datsr_rfa restoration.
_SMALL_RFA = {"depths": [1, 1], "num_heads": [2, 2], "groups": 2, "content_blocks": 0}
register_preset(
    "datsr_small",
    {
        **c2_matching.C2_MATCHING_SMALL,
        "components": {
            **c2_matching.C2_MATCHING_SMALL["components"],
            "restoration": {"name": "datsr_rfa", "params": _SMALL_RFA},
        },
    },
    "A small DATSR for CPU training and tests: 16 channels, one Swin block per group, 8-channel VGG layouts",
)
