"""Model architectures (components of kind ``"model"``) and their presets."""

from .crossnet import CrossNet, CrossNetOutput

__all__ = ["CrossNet", "CrossNetOutput"]
