"""refsr-blocks: reference-based super-resolution building blocks for PyTorch.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite")
    >>> model(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("refsr-blocks")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

# Importing the component modules registers them.
from . import decoders, encoders, flows, losses, models, upsamplers, warpers  # noqa: F401
from .build import build_model
from .checkpoint import load_model, save_model
from .errors import (
    CheckpointError,
    PluginError,
    RefSRError,
    RegistryError,
    SpecError,
    UnknownComponentError,
)
from .registry import KINDS, get_component, list_components, register_component
from .spec import list_models, register_preset, resolve_spec

__all__ = [
    "KINDS",
    "CheckpointError",
    "PluginError",
    "RefSRError",
    "RegistryError",
    "SpecError",
    "UnknownComponentError",
    "__version__",
    "build_model",
    "get_component",
    "list_components",
    "list_models",
    "load_model",
    "register_component",
    "register_preset",
    "resolve_spec",
    "save_model",
]
