"""CrossNet's U-Net fusion decoder (Sec. 3.2, equations 6 and 7).

Coarse to fine: at the coarsest level the LR feature and the warped reference feature are
concatenated and brought one level up by a 4×4 stride-2 transposed conv (64 filters, ReLU);
at every finer level k ≥ 1 the LR feature, the warped reference feature and the decoder
feature from below are concatenated and brought up the same way. At level 0 the three are
concatenated (``F_D^(0)`` of equation 7) and three 5×5 convs with 64, 64 and 3 channels give
the image. Every layer's output is used (the authors' released code computes one post-fusion
conv it never uses).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["UNetFusionDecoder", "UNetUpPath"]

ACTIVATIONS = ("relu", "none", "sigmoid")


class UNetUpPath(nn.Module):
    """The coarse-to-fine half shared by the U-Net fusion decoders (subclass it).

    :meth:`_build_up_path` makes ``self.up`` (``up[k-1]`` brings the fused level k to level
    k-1: a 4×4 stride-2 transposed conv and an activation); :meth:`_fuse_levels` runs it and
    returns the fused level-0 map. ``DECODED_FIRST`` sets the concatenation order (the
    authors' code puts the decoder feature first; the weights depend on the order).
    """

    DECODED_FIRST = False

    def _build_up_path(
        self, lr_channels: Sequence[int], ref_channels: Sequence[int], channels: int, activation: type[nn.Module]
    ) -> int:
        """Create ``self.up`` and return the channels of the fused level-0 map."""
        if len(lr_channels) != len(ref_channels) or not lr_channels:
            raise ValueError(
                f"lr_channels {list(lr_channels)} and ref_channels {list(ref_channels)} must be "
                "non-empty lists of the same length (one entry per pyramid level)"
            )
        levels = len(lr_channels)
        self.levels = levels
        self.up = nn.ModuleList()
        for k in range(levels - 1):
            fused = lr_channels[k + 1] + ref_channels[k + 1] + (channels if k + 1 < levels - 1 else 0)
            self.up.append(nn.Sequential(nn.ConvTranspose2d(fused, channels, 4, 2, 1), activation(inplace=True)))
        return lr_channels[0] + ref_channels[0] + (channels if levels > 1 else 0)

    def _fuse_levels(self, lr_feats: Sequence[Tensor], warped_ref_feats: Sequence[Tensor]) -> Tensor:
        """Level lists (finest first) → the fused level-0 map, B×fused0×H×W."""
        if len(lr_feats) != self.levels or len(warped_ref_feats) != self.levels:
            raise ValueError(
                f"decoder built for {self.levels} levels got {len(lr_feats)} LR and "
                f"{len(warped_ref_feats)} reference feature maps"
            )
        decoded: Tensor | None = None
        for k in range(self.levels - 1, -1, -1):
            below = [decoded] if decoded is not None else []
            pair = [lr_feats[k], warped_ref_feats[k]]
            fused = torch.cat(below + pair if self.DECODED_FIRST else pair + below, dim=1)
            decoded = self.up[k - 1](fused) if k > 0 else fused
        assert decoded is not None
        return decoded


@register_component("decoder", "unet_fusion")
class UNetFusionDecoder(UNetUpPath):
    """U-Net fusion of LR features and warped reference features into an image.

    Args:
        lr_channels: channels of the LR feature per level, finest first.
        ref_channels: channels of the warped reference feature per level.
        out_channels: image channels.
        channels: filters of the transposed convs and of the first two post-fusion convs.
        kernel_size: size of the post-fusion convs (5 in the paper).
        output_activation: activation of the last conv: ``"relu"`` (equation 7's σ),
            ``"none"`` (use it when the model adds the decoder output to the upsampled LR)
            or ``"sigmoid"``.

    Shapes: lists of B×lr_channels[k]×H_k×W_k and B×ref_channels[k]×H_k×W_k with
    H_k = H / 2^k exactly (the model pads to a multiple of 2^(levels-1)) → B×out_channels×H×W.
    """

    SUPPORT = CONV_SUPPORT

    PARAM_BOUNDS = usual_bounds("out_channels channels kernel_size")

    def __init__(
        self,
        lr_channels: Sequence[int] = (64, 64, 64, 64),
        ref_channels: Sequence[int] = (64, 64, 64, 64),
        out_channels: int = 3,
        channels: int = 64,
        kernel_size: int = 5,
        output_activation: str = "relu",
    ) -> None:
        super().__init__()
        if output_activation not in ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {ACTIVATIONS}, got {output_activation!r}")
        fused0 = self._build_up_path(lr_channels, ref_channels, channels, nn.ReLU)
        pad = kernel_size // 2
        last_act: list[nn.Module] = {
            "relu": [nn.ReLU()],
            "sigmoid": [nn.Sigmoid()],
            "none": [],
        }[output_activation]
        self.post_fusion = nn.Sequential(
            nn.Conv2d(fused0, channels, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            # 3 output channels: the inference path makes it a FewOutputConv2d (refsr_blocks.layers.swap).
            nn.Conv2d(channels, out_channels, kernel_size, padding=pad),
            *last_act,
        )

    def forward(self, lr_feats: Sequence[Tensor], warped_ref_feats: Sequence[Tensor]) -> Tensor:
        return self.post_fusion(self._fuse_levels(lr_feats, warped_ref_feats))
