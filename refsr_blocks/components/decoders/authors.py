"""The fusion decoder of the CrossNet authors' released code (htzheng/ECCV2018_CrossNet_RefSR).

The same U-Net as :class:`~refsr_blocks.components.decoders.unet_fusion.UNetFusionDecoder`
(coarse to fine: concatenate the LR feature, the warped reference feature and the decoder
feature from below, bring them one level up with a 4×4 stride-2 transposed conv), with the
authors' choices: SELU after every layer but the last, a linear output conv, and only *one*
post-fusion conv before it.

Their code also builds a second post-fusion conv (64→64, 5×5: 102,464 parameters) whose output
it never uses: the output conv reads the first one. ``unused_conv=True`` holds that conv as a
parameter so that the parameter count and the state dict match theirs one to one (the
``crossnet_authors`` preset sets it); it is skipped in ``forward`` either way (which is what
reproduces their outputs). The default, ``False``, leaves it out: a parameter that never gets a
gradient breaks DistributedDataParallel and the components' gradient contract.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ...core.registry import register_component
from ..conventions import CONV_SUPPORT, usual_bounds
from .unet_fusion import UNetUpPath

__all__ = ["AuthorsFusionDecoder"]


@register_component("decoder", "authors_fusion")
class AuthorsFusionDecoder(UNetUpPath):
    """The authors' U-Net fusion decoder: SELU, one post-fusion conv, linear output.

    Args:
        lr_channels: channels of the LR feature per level, finest first.
        ref_channels: channels of the warped reference feature per level.
        out_channels: image channels.
        channels: filters of the transposed convs and of the post-fusion conv (64).
        kernel_size: size of the post-fusion and output convs (5).
        unused_conv: hold the authors' second post-fusion conv (never used in ``forward``) so the
            parameters match their checkpoint; ``False`` leaves it out (102,464 fewer parameters
            at 64 channels, and no parameter without a gradient, which DDP would reject).

    Shapes: lists of B×lr_channels[k]×H_k×W_k and B×ref_channels[k]×H_k×W_k with
    H_k = H / 2^k exactly (the model pads to a multiple of 2^(levels-1)) → B×out_channels×H×W.

    Example:
        >>> import torch
        >>> dec = AuthorsFusionDecoder([4, 4], [4, 4], channels=8)
        >>> dec([torch.rand(1, 4, 8, 8), torch.rand(1, 4, 4, 4)], [torch.rand(1, 4, 8, 8), torch.rand(1, 4, 4, 4)]).shape
        torch.Size([1, 3, 8, 8])
    """

    SUPPORT = CONV_SUPPORT

    DECODED_FIRST = True  # their concatenation order: decoder feature, LR feature, reference feature

    # lr_channels/ref_channels (per level) come from an encoder: up to the 4096 of the architectures' channels.
    PARAM_BOUNDS = usual_bounds("lr_channels ref_channels out_channels channels kernel_size")

    def __init__(
        self,
        lr_channels: Sequence[int] = (64, 64, 64, 64),
        ref_channels: Sequence[int] = (64, 64, 64, 64),
        out_channels: int = 3,
        channels: int = 64,
        kernel_size: int = 5,
        unused_conv: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        fused0 = self._build_up_path(lr_channels, ref_channels, channels, nn.SELU)
        pad = kernel_size // 2
        self.post_fusion = nn.Sequential(nn.Conv2d(fused0, channels, kernel_size, padding=pad), nn.SELU(inplace=True))
        self.unused = (
            nn.Sequential(nn.Conv2d(channels, channels, kernel_size, padding=pad), nn.SELU(inplace=True))
            if unused_conv
            else None
        )
        self.output = nn.Conv2d(channels, out_channels, kernel_size, padding=pad)

    def forward(self, lr_feats: Sequence[Tensor], warped_ref_feats: Sequence[Tensor]) -> Tensor:
        decoded = self._fuse_levels(lr_feats, warped_ref_feats)
        # self.unused is skipped, as in the authors' code (their output conv reads post_fusion1).
        return self.output(self.post_fusion(decoded))
