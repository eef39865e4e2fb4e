"""MASA-SR's feature encoder: a conv and residual blocks per level, stride-2 convs between levels."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ...core.registry import register_component
from ...core.support import Support
from ...layers.blocks import ResBlock, conv
from ..conventions import usual_bounds

__all__ = ["MasaEncoder"]


@register_component("encoder", "masa_encoder")
class MasaEncoder(nn.Module):
    """Level 0 at the input's resolution, each next level halved by a stride-2 conv.

    Each level: conv → ReLU → residual blocks (conv, ReLU, conv, plus the input). MASA-SR
    encodes the LR image, the references and the reduced references with one such encoder.

    Args:
        scales: number of levels.
        in_channels: channels of the image.
        channels: feature channels at every level.
        blocks: residual blocks per level (one number for all, or one per level).

    Shapes: B×in_channels×H×W → ``scales`` maps, level k B×channels×⌈H/2^k⌉×⌈W/2^k⌉.
    """

    # Measured on the CPU (3 levels, 8 channels, 1×3×32×48): bf16 autocast within 5e-3 of fp32,
    # ONNX opset 17 through onnxruntime within 3e-7, torch.export equal. fp16: not measured.
    SUPPORT = Support(dtypes=("fp32", "bf16"), onnx=True, torch_export=True, notes="fp16 not measured")

    PARAM_BOUNDS = usual_bounds("scales in_channels channels blocks")

    def __init__(
        self, scales: int = 3, in_channels: int = 3, channels: int = 64, blocks: int | Sequence[int] = 4
    ) -> None:
        super().__init__()
        counts = [int(blocks)] * scales if isinstance(blocks, int) else [int(b) for b in blocks]
        if len(counts) != scales:
            raise ValueError(f"masa_encoder: blocks needs one count per level ({scales}), got {list(counts)}")
        self.out_channels = [channels] * scales
        self.convs = nn.ModuleList(
            [conv(in_channels, channels, 3)] + [conv(channels, channels, 3, stride=2) for _ in range(scales - 1)]
        )
        self.blocks = nn.ModuleList(nn.Sequential(*(ResBlock(channels) for _ in range(n))) for n in counts)
        self.act = nn.ReLU(inplace=True)

    def forward(self, image: Tensor) -> list[Tensor]:
        """The feature maps, finest first."""
        levels, x = [], image
        for head, body in zip(self.convs, self.blocks, strict=True):
            x = body(self.act(head(x)))
            levels.append(x)
        return levels
