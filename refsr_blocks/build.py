"""``build_model``: from a preset name, a spec dict or a spec file to an ``nn.Module``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .errors import SpecError
from .registry import REGISTRY, Registry
from .spec import Architecture, apply_overrides, get_preset, load_spec, resolve_spec

__all__ = ["build_model", "instantiate", "spec_from"]

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def spec_from(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The (partial) spec behind a preset name, a spec file path or a spec dict."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    if isinstance(source, Path) or (isinstance(source, str) and source.lower().endswith(SPEC_SUFFIXES)):
        return load_spec(source)
    if isinstance(source, str):
        return get_preset(source)
    raise SpecError(
        "", f"expected a preset name, a spec dict or a path to a .json/.yaml spec, got {type(source).__name__}"
    )


def instantiate(spec: Mapping[str, Any], slot: str, registry: Registry = REGISTRY, **injected: Any) -> Any:
    """Build the component in ``spec["components"][slot]`` of a *resolved* spec.

    ``injected`` are the constructor arguments the architecture supplies; those the
    component's constructor does not accept are dropped (the spec validation already
    checked the ones it must accept). A constructor that rejects a value is reported as a
    :class:`SpecError` at the component's path.
    """
    entry = spec["components"][slot]
    arch = registry.get("model", spec["model"]).factory
    component = registry.get(arch.slots[slot].kind, entry["name"])
    accepted = {k: v for k, v in injected.items() if k in component.defaults or component.accepts_var_kwargs}
    try:
        return component.factory(**entry["params"], **accepted)
    except (ValueError, TypeError) as err:
        raise SpecError(
            f"components.{slot}", f"{component.kind} {entry['name']!r} rejected its parameters: {err}"
        ) from err


def build_model(source: str | Path | Mapping[str, Any], /, **overrides: Any) -> nn.Module:
    """Build a model from a preset name, a spec dict or a path to a ``.json``/``.yaml`` spec.

    Args:
        source: ``"crossnet"`` (see :func:`~refsr_blocks.list_models`), a spec dict (for
            example ``model.spec``) or a spec file.
        **overrides: global parameters (``upscale=8``, ``scales=5``), component swaps
            (``flow="flownets"``), or component parameters (``flow={"params": {...}}`` or
            ``**{"flow.width": 0.5}``); see :func:`~refsr_blocks.spec.apply_overrides`.

    Returns:
        The assembled module; ``model.spec`` holds the fully resolved spec, so
        ``build_model(model.spec)`` rebuilds the same architecture.

    Raises:
        SpecError: before anything is built, naming the spec path that is wrong.

    Example:
        >>> from refsr_blocks import build_model
        >>> model = build_model("crossnet_lite", upscale=4)
        >>> model.spec["components"]["flow"]["name"]
        'flownets_plus'
    """
    spec = spec_from(source)
    if overrides:
        spec = apply_overrides(spec, overrides)
    resolved = resolve_spec(spec)
    arch = REGISTRY.get("model", resolved["model"]).factory
    assert isinstance(arch, Architecture)
    model = arch(copy.deepcopy(resolved))
    model.spec = resolved
    return model
