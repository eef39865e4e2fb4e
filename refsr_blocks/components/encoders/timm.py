"""Any timm backbone as a pyramid encoder (``features_only``), adapted to the contract.

timm feature maps start at stride 2, so level 0 (full resolution) comes from a small
stride-1 stem of our own; level k ≥ 1 is the timm feature whose reduction is 2^k. Weights
are randomly initialised (``pretrained=False``): this library never downloads at run time;
load pretrained weights yourself with ``timm.create_model(..., pretrained_cfg_overlay=...)``
or ``load_state_dict`` if you have them locally.
"""

from __future__ import annotations

from dataclasses import replace

import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...ops.flow import level_size
from ..conventions import CONV_SUPPORT, usual_bounds

__all__ = ["TimmEncoder"]


@register_component("encoder", "timm")
class TimmEncoder(nn.Module):
    """A timm backbone adapted to the encoder contract.

    Args:
        model_name: any timm model that supports ``features_only`` (see
            ``timm.list_models()``); the default is timm's tiny test ResNet.
        scales: pyramid levels; the backbone must have features at reductions 2..2^(scales-1).
        in_channels: image channels.
        channels: channels of the full-resolution stem (level 0).
        pretrained: ask timm for pretrained weights (needs them in the local cache).

    Shapes: B×in_channels×H×W → list of ``scales`` maps, level k of size
    ceil(H/2^k)×ceil(W/2^k) (a backbone map of another size, from odd input sizes, is
    resized bilinearly to the contract size).
    """

    SUPPORT = replace(CONV_SUPPORT, notes="fp16: CUDA only; checked with the default test_resnet backbone")

    PARAM_BOUNDS = usual_bounds("scales in_channels channels")

    def __init__(
        self,
        model_name: str = "test_resnet",
        scales: int = 4,
        in_channels: int = 3,
        channels: int = 64,
        pretrained: bool = False,
    ) -> None:
        import timm  # imported on first build: it costs seconds, and most models do not need it

        super().__init__()
        if model_name not in timm.list_models() and model_name.split(".")[0] not in timm.list_models():
            raise ValueError(f"unknown timm model {model_name!r}; choose one of timm.list_models(), e.g. 'resnet18'")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, 1, 1), nn.ReLU(inplace=True))
        self.out_channels = [channels]
        self.backbone = None
        self.feature_indices: list[int] = []
        if scales > 1:
            probe = timm.create_model(model_name, features_only=True, pretrained=False)
            reductions = probe.feature_info.reduction()
            wanted = [2**k for k in range(1, scales)]
            missing = [r for r in wanted if r not in reductions]
            if missing:
                raise ValueError(
                    f"timm model {model_name!r} has features at reductions {reductions}, "
                    f"but scales={scales} needs {wanted} (missing {missing}); lower scales"
                )
            self.feature_indices = [reductions.index(r) for r in wanted]
            self.backbone = timm.create_model(
                model_name,
                features_only=True,
                pretrained=pretrained,
                in_chans=in_channels,
                out_indices=self.feature_indices,
            )
            self.out_channels += list(self.backbone.feature_info.channels())
        self.scales = scales

    def forward(self, image: Tensor) -> list[Tensor]:
        feats = [self.stem(image)]
        if self.backbone is not None:
            h, w = image.shape[-2:]
            for k, f in enumerate(self.backbone(image), start=1):
                size = level_size(h, w, k)
                if f.shape[-2:] != size:
                    f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                feats.append(f)
        return feats
