"""refsr-blocks: reference-based super-resolution building blocks for PyTorch.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite")
    >>> model(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

# Importing the components registers their kinds and them (then the datasets, kind "dataset").
from . import components, data  # noqa: F401
from .core import __version__
from .core.build import build_model, create_component
from .core.checkpoint import load_model, save_model
from .core.errors import (
    CheckpointError,
    InputError,
    PluginError,
    RefSRError,
    RegistryError,
    SpecError,
    UnknownComponentError,
)
from .core.hookspecs import hookimpl
from .core.registry import REGISTRY, get_component, list_components, list_kinds, register_component, register_kind
from .core.spec import list_models, register_preset, resolve_spec
from .ops.inputs import set_debug_checks


def _load_plugins() -> None:
    from .core.plugins import load_plugins

    load_plugins()


# Plugins load once, lazily, on the first registry lookup (all built-ins are registered by now).
REGISTRY.before_lookup = _load_plugins

_LAZY_PLUGIN_API = ("list_plugins", "register_plugin", "RefSRPluginWarning")
_LAZY_INFERENCE_API = ("Predictor", "super_resolve_images")


def __getattr__(name: str) -> object:
    # PEP 562: the plugin API is imported on first use, so importing refsr_blocks stays light
    # and ``python -m refsr_blocks.core.plugins`` does not import its own module twice.
    if name in _LAZY_PLUGIN_API:
        from .core import plugins

        return getattr(plugins, name)
    if name in _LAZY_INFERENCE_API:  # the one-call API, imported on first use like the plugin API
        from .inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'refsr_blocks' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "InputError",
    "PluginError",
    "Predictor",
    "RefSRError",
    "RegistryError",
    "SpecError",
    "UnknownComponentError",
    "__version__",
    "build_model",
    "create_component",
    "get_component",
    "hookimpl",
    "list_components",
    "list_kinds",
    "list_models",
    "list_plugins",
    "load_model",
    "register_component",
    "register_kind",
    "register_plugin",
    "register_preset",
    "resolve_spec",
    "save_model",
    "set_debug_checks",
    "super_resolve_images",
]
