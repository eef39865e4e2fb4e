"""Model architectures (components of kind ``"model"``) and their presets."""

from . import (
    crossnet_authors,  # noqa: F401 - registers the crossnet_authors preset
    datsr,  # noqa: F401 - registers the datsr presets (of the c2_matching architecture)
    masa_sr,  # noqa: F401 - registers the masa_sr architecture and presets
)
from .c2_matching import C2Matching
from .crossnet import CrossNet
from .ttsr import TTSR

__all__ = ["TTSR", "C2Matching", "CrossNet"]
