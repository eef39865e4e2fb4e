"""Model architectures (components of kind ``"model"``) and their presets."""

from .crossnet import CrossNet

__all__ = ["CrossNet"]
