"""Encoders: ``encoder(image)`` returns ``scales`` feature maps, finest first.

Level ``k`` is B×out_channels[k]×ceil(H/2^k)×ceil(W/2^k); ``encoder.out_channels`` lists the
channels per level.
"""

from .crossnet import CrossNetEncoder
from .texture import TextureExtractor
from .timm import TimmEncoder

__all__ = ["CrossNetEncoder", "TextureExtractor", "TimmEncoder"]
