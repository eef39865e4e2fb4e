"""Fusion decoders: ``decoder(lr_feats, warped_ref_feats)`` returns a B×C×H×W image."""

from .unet_fusion import UNetFusionDecoder

__all__ = ["UNetFusionDecoder"]
