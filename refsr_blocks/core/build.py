"""From names and specs to modules: ``build_model``, ``create_component`` and ``instantiate``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .errors import RegistryError, SpecError
from .registry import REGISTRY, Registry
from .spec import (
    BUILT,
    Architecture,
    apply_overrides,
    check_params,
    get_preset,
    load_spec,
    plain,
    resolve_spec,
)

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
    """The resolved spec of a model name, spec dict or spec file, with ``overrides`` applied.

    Raises:
        SpecError: naming the path in the spec, and the file when the spec came from one.
    """
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
    """Build the registered component ``name`` of ``kind``, validating ``params`` (constructor
    arguments, those an architecture would inject included) as a spec would.

    Raises:
        UnknownComponentError: no such component (with the closest names).
        SpecError: an unknown parameter, a value of the wrong type or a missing required one.

    Example:
        >>> import torch
        >>> from refsr_blocks import create_component
        >>> warp = create_component("warper", "bilinear")
        >>> warp(torch.ones(1, 1, 4, 4), torch.zeros(1, 2, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """
    component = REGISTRY.get(kind, name)
    checked = check_params(component, params, f"{kind}.{name}")
    try:
        return component.factory(**checked)
    except (ValueError, TypeError) as err:
        raise SpecError(f"{kind}.{name}", f"{kind} {name!r} rejected its parameters: {err}") from err


def instantiate(spec: Mapping[str, Any], slot: str, registry: Registry = REGISTRY, **built: Any) -> Any:
    """Build the component in ``spec["components"][slot]`` of a *resolved* spec.

    The slot's ``inject`` declaration names the arguments the architecture supplies: global
    parameters from ``spec["params"]``, :data:`~refsr_blocks.core.spec.BUILT` ones from the
    builder as ``built`` keywords (only those); arguments the constructor does not take are dropped.

    Raises:
        RegistryError: the builder passed other ``built`` arguments than the slot declares.
        SpecError: the component's constructor rejected a value (at the component's path).
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
    try:
        return component.factory(**entry["params"], **accepted)
    except (ValueError, TypeError) as err:
        raise SpecError(
            f"components.{slot}", f"{component.kind} {entry['name']!r} rejected its parameters: {err}"
        ) from err


def build_model(source: str | Path | Mapping[str, Any], /, **overrides: Any) -> nn.Module:
    """Build a model from a preset name, a spec dict or a path to a ``.json``/``.yaml`` spec.

    ``overrides`` are global parameters (``upscale=8``), component swaps (``flow="flownets"``) or
    component parameters (``**{"flow.width": 0.5}``), see :func:`~refsr_blocks.core.spec.apply_overrides`.
    The module's ``model.spec`` holds the resolved spec: ``build_model(model.spec)`` rebuilds it.

    Raises:
        SpecError: before anything is built, naming the spec path that is wrong.

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
