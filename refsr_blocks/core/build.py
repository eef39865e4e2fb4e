"""From names and specs to modules: ``build_model``, ``create_component`` and ``instantiate``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .errors import RegistryError, SpecError
from .registry import REGISTRY, Component, Registry
from .spec import BUILT, Architecture, apply_overrides, check_params, get_preset, load_spec, plain, resolve_spec

__all__ = ["build_model", "create_component", "instantiate", "resolve_source", "spec_from"]

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def spec_from(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The (partial) spec behind a model name (architecture or preset), a spec file path or a spec dict."""
    if isinstance(source, Mapping):
        return plain(source)
    if _is_file(source):
        return load_spec(source)
    if isinstance(source, str):
        return get_preset(source)
    raise SpecError(
        "", f"expected a preset name, a spec dict or a path to a .json/.yaml spec, got {type(source).__name__}"
    )


def _is_file(source: object) -> bool:
    return isinstance(source, Path) or (isinstance(source, str) and source.lower().endswith(SPEC_SUFFIXES))


def resolve_source(
    source: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved spec of a model name, spec dict or spec file, with ``overrides`` applied; a
    :class:`SpecError` names the path in the spec, and the file when the spec came from one."""
    spec = spec_from(source)
    try:
        if overrides:
            spec = apply_overrides(spec, overrides)
        return resolve_spec(spec)
    except SpecError as err:
        if _is_file(source):
            raise SpecError(err.path, f"{err.message} (in spec file {str(source)!r})") from None
        raise


def create_component(kind: str, name: str, /, **params: Any) -> Any:
    """Build the registered component ``name`` of ``kind``, its ``params`` (those an architecture would
    inject included) checked as in a spec (:class:`SpecError`).

    Example:
        >>> import torch
        >>> from refsr_blocks import create_component
        >>> warp = create_component("warper", "bilinear")
        >>> warp(torch.ones(1, 1, 4, 4), torch.zeros(1, 2, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """
    component = REGISTRY.get(kind, name)
    return _construct(component, f"{kind}.{name}", check_params(component, params, f"{kind}.{name}"), {})


def _construct(component: Component, path: str, params: Mapping[str, Any], extra: Mapping[str, Any]) -> Any:
    """The component built with ``params`` and ``extra``; what its constructor rejects is a SpecError at ``path``."""
    try:
        return component.factory(**params, **extra)
    except (ValueError, TypeError) as err:
        raise SpecError(path, f"{component.kind} {component.name!r} rejected its parameters: {err}") from err


def instantiate(spec: Mapping[str, Any], slot: str, registry: Registry = REGISTRY, **built: Any) -> Any:
    """Build the component in ``spec["components"][slot]`` of a *resolved* spec, with the arguments the
    slot injects: global parameters, and the :data:`~refsr_blocks.core.spec.BUILT` ones as ``built``
    keywords (exactly those, or a :class:`RegistryError`); those the constructor does not take are dropped.
    """
    entry = spec["components"][slot]
    arch = registry.get("model", spec["model"]).factory
    declared = arch.slots[slot]
    expected = {arg for arg, source in declared.inject.items() if source == BUILT}
    if set(built) != expected:
        raise RegistryError(
            f"architecture {arch.name!r} builds slot {slot!r} with {sorted(built)}, but the slot declares "
            f"{sorted(expected)} as BUILT: make the builder and Slot.inject agree"
        )
    injected = {arg: spec["params"][source] for arg, source in declared.inject.items() if source != BUILT}
    component = registry.get(declared.kind, entry["name"])
    accepted = {
        k: v for k, v in {**injected, **built}.items() if k in component.defaults or component.accepts_var_kwargs
    }
    return _construct(component, f"components.{slot}", entry["params"], accepted)


def build_model(source: str | Path | Mapping[str, Any], /, **overrides: Any) -> nn.Module:
    """Build a model from a name, a spec dict or a ``.json``/``.yaml`` spec file, with ``overrides``
    (:func:`~refsr_blocks.core.spec.apply_overrides`); a :class:`SpecError` comes before anything is
    built. ``model.spec`` holds the resolved spec: ``build_model(model.spec)`` rebuilds it.

    Example:
        >>> from refsr_blocks import build_model
        >>> model = build_model("crossnet_lite", upscale=4)
        >>> model.spec["components"]["flow"]["name"]
        'flownets_plus'
    """
    resolved = resolve_source(source, overrides)
    arch = REGISTRY.get("model", resolved["model"]).factory
    assert isinstance(arch, Architecture)
    model = arch(copy.deepcopy(resolved))
    model.spec = resolved
    return model
