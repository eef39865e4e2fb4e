"""Declarative model specs: plain data that validates, resolves and round-trips.

A spec is a dict that survives JSON and YAML::

    {
      "model": "crossnet",                    # architecture, a registered "model" component
      "params": {"upscale": 4, "scales": 4},  # the architecture's global parameters
      "components": {                         # one entry per slot of the architecture
        "flow": {"name": "flownets_plus", "params": {"width": 1.0}},
        "warper": "bilinear",                 # shorthand for {"name": "bilinear"}
      },
    }

Missing entries take the architecture's defaults. :func:`resolve_spec` validates
everything *before* any module is built and returns the fully resolved spec, in which
every default is filled in. Errors are :class:`~refsr_blocks.errors.SpecError` naming the
path inside the spec (``components.flow.params.widht``), what was wrong and what is accepted.

Global parameters reach components by *injection*: an architecture declares which
constructor arguments of each slot it supplies itself (the flow estimator's ``scales``, the
upsampler's ``scale``); those are not settable per component, so the spec cannot disagree
with itself.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError, UnknownComponentError
from .registry import REGISTRY, Registry, closest

__all__ = [
    "SPEC_VERSION",
    "Architecture",
    "GlobalParam",
    "Slot",
    "apply_overrides",
    "get_preset",
    "list_models",
    "load_spec",
    "register_preset",
    "resolve_spec",
]

#: Version of the spec format, stored in every resolved spec.
SPEC_VERSION = 1
SPEC_KEYS = ("model", "params", "components", "version")


@dataclass(frozen=True)
class GlobalParam:
    """A global parameter of an architecture.

    Attributes:
        default: the value when the spec does not set it.
        check: returns an error message for a bad value, or ``None``.
        doc: one line for the spec reference.
    """

    default: Any
    check: Callable[[Any], str | None] = lambda value: None
    doc: str = ""


@dataclass(frozen=True)
class Slot:
    """A place in an architecture for one component.

    Attributes:
        kind: the component kind it takes.
        default: the component name used when the spec does not name one.
        injected: constructor arguments the architecture supplies itself.
        required: the subset of ``injected`` a component must accept to honour the contract.
        doc: one line for the spec reference.
    """

    kind: str
    default: str
    injected: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Architecture:
    """A model template: global parameters, component slots and a builder.

    Registered as a component of kind ``"model"``; calling it with a resolved spec builds
    the ``nn.Module``.
    """

    name: str
    params: Mapping[str, GlobalParam]
    slots: Mapping[str, Slot]
    build: Callable[[dict[str, Any]], Any]
    doc: str = ""
    checks: tuple[Callable[[dict[str, Any]], tuple[str, str] | None], ...] = field(default=())

    def __call__(self, spec: dict[str, Any]) -> Any:
        return self.build(spec)


# -- presets ------------------------------------------------------------------------------
_PRESETS: dict[str, tuple[dict[str, Any], str]] = {}


def register_preset(name: str, spec: Mapping[str, Any], doc: str = "", *, override: bool = False) -> None:
    """Register a named (partial) spec that :func:`build_model` accepts by name."""
    if name in _PRESETS and not override:
        raise SpecError("", f"preset {name!r} is already registered; pass override=True to replace it")
    _PRESETS[name] = (copy.deepcopy(dict(spec)), doc)


def get_preset(name: str) -> dict[str, Any]:
    """A copy of the preset spec ``name``; unknown names list the presets."""
    REGISTRY.list("model")  # make sure plugins (which may add presets) are loaded
    if name not in _PRESETS:
        hint = closest(name, sorted(_PRESETS))
        did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
        raise UnknownComponentError(
            f"unknown model preset {name!r}.{did_you_mean} Presets: {', '.join(sorted(_PRESETS))}. "
            "A path to a .json/.yaml spec or a spec dict is accepted too."
        )
    return copy.deepcopy(_PRESETS[name][0])


def preset_doc(name: str) -> str:
    """The one-line description of a preset."""
    return _PRESETS[name][1]


def list_models(pattern: str = "*") -> list[str]:
    """Names of the model presets matching a wildcard pattern.

    Example:
        >>> from refsr_blocks import list_models
        >>> list_models("crossnet*")[:2]
        ['crossnet', 'crossnet_flownets']
    """
    import fnmatch

    REGISTRY.list("model")
    return sorted(n for n in _PRESETS if fnmatch.fnmatchcase(n, pattern))


# -- loading ------------------------------------------------------------------------------
def read_mapping_file(
    path: str | Path, what: str = "spec file", error: Callable[[str, str], Exception] = SpecError
) -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml`` or ``.yml`` file (not validated).

    Args:
        path: the file.
        what: how error messages name the file ("spec file", "config file").
        error: the exception class, called as ``error(path_in_document, message)``.
    """
    path = Path(path)
    if not path.is_file():
        raise error("", f"{what} {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise error("", f"{what} {str(path)!r} must end in .json, .yaml or .yml")
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # parser errors carry line numbers; keep them
        raise error("", f"cannot parse {what} {str(path)!r}: {err}") from None
    if not isinstance(data, dict):
        raise error("", f"{what} {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a spec from a ``.json``, ``.yaml`` or ``.yml`` file."""
    return read_mapping_file(path, "spec file", SpecError)


# -- validation helpers -------------------------------------------------------------------
def _plain(value: Any, path: str) -> Any:
    """``value`` as JSON-compatible plain data (tuples become lists); raise otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(path, f"keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{path}.{k}")
        return out
    raise SpecError(
        path,
        f"{type(value).__name__} is not plain data; specs hold only numbers, strings, booleans, "
        "None, lists and dicts (so they survive JSON and YAML)",
    )


def _type_error(value: Any, default: Any) -> str | None:
    """A message if ``value`` cannot stand where ``default`` stands, judged by its type."""
    if default is None or default is inspect.Parameter.empty or value is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        return None
    if ok:
        return None
    expected = "a list" if isinstance(default, (list, tuple)) else type(default).__name__
    return f"expected {expected} (default {default!r}), got {type(value).__name__} {value!r}"


def _unknown_key(path: str, key: str, accepted: list[str], what: str) -> SpecError:
    hint = closest(key, accepted)
    did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
    return SpecError(
        f"{path}.{key}" if path else key,
        f"unknown {what}.{did_you_mean} Accepted: {', '.join(accepted) or '(none)'}.",
    )


def _normalise_entry(entry: Any, path: str) -> dict[str, Any]:
    """``"name"`` or ``{"name": ..., "params": {...}}`` → the dict form."""
    if isinstance(entry, str):
        return {"name": entry, "params": {}}
    if not isinstance(entry, Mapping):
        raise SpecError(path, f"expected a component name or {{'name': ..., 'params': {{...}}}}, got {entry!r}")
    for key in entry:
        if key not in ("name", "params"):
            raise _unknown_key(path, key, ["name", "params"], "component entry key")
    params = entry.get("params", {}) or {}
    if not isinstance(params, Mapping):
        raise SpecError(f"{path}.params", f"expected a mapping of parameter names to values, got {params!r}")
    return {"name": entry.get("name"), "params": dict(params)}


def resolve_spec(spec: Mapping[str, Any], registry: Registry = REGISTRY) -> dict[str, Any]:
    """Validate ``spec`` and fill in every default; builds nothing.

    Returns:
        The fully resolved spec: ``{"version", "model", "params", "components"}`` with every
        global parameter and every component parameter present.

    Raises:
        SpecError: naming the path of the first mistake, what was wrong and what is accepted.
    """
    if not isinstance(spec, Mapping):
        raise SpecError("", f"a spec must be a mapping, got {type(spec).__name__}")
    for key in spec:
        if key not in SPEC_KEYS:
            raise _unknown_key("", key, list(SPEC_KEYS), "top-level spec key")
    version = spec.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise SpecError("version", f"this refsr-blocks reads spec version {SPEC_VERSION}, got {version!r}")
    model_name = spec.get("model")
    if not isinstance(model_name, str):
        raise SpecError("model", f"name the architecture, one of {registry.list('model')}; got {model_name!r}")
    try:
        arch = registry.get("model", model_name).factory
    except UnknownComponentError as err:
        raise SpecError("model", str(err)) from None
    if not isinstance(arch, Architecture):
        raise SpecError("model", f"model component {model_name!r} is not an Architecture")

    # Global parameters.
    given = spec.get("params", {}) or {}
    if not isinstance(given, Mapping):
        raise SpecError("params", f"expected a mapping of global parameters, got {given!r}")
    params: dict[str, Any] = {}
    for key in given:
        if key not in arch.params:
            raise _unknown_key("params", key, list(arch.params), f"global parameter of {arch.name!r}")
    for key, gp in arch.params.items():
        value = _plain(given.get(key, gp.default), f"params.{key}")
        problem = _type_error(value, gp.default) or gp.check(value)
        if problem:
            raise SpecError(f"params.{key}", problem)
        params[key] = value

    # Components.
    entries = spec.get("components", {}) or {}
    if not isinstance(entries, Mapping):
        raise SpecError("components", f"expected a mapping of slot names to components, got {entries!r}")
    for slot_name in entries:
        if slot_name not in arch.slots:
            raise _unknown_key("components", slot_name, list(arch.slots), f"component slot of {arch.name!r}")
    components: dict[str, Any] = {}
    for slot_name, slot in arch.slots.items():
        path = f"components.{slot_name}"
        entry = _normalise_entry(entries.get(slot_name, slot.default), path)
        name = entry["name"] if entry["name"] is not None else slot.default
        if not isinstance(name, str):
            raise SpecError(f"{path}.name", f"expected a registered {slot.kind} name, got {name!r}")
        try:
            component = registry.get(slot.kind, name)
        except UnknownComponentError as err:
            raise SpecError(f"{path}.name", str(err)) from None
        missing = [p for p in slot.required if p not in component.defaults and not component.accepts_var_kwargs]
        if missing:
            raise SpecError(
                path,
                f"{slot.kind} {name!r} ({component.definition}) must accept the constructor "
                f"argument(s) {missing} to fill this slot",
            )
        settable = {k: v for k, v in component.defaults.items() if k not in slot.injected}
        resolved: dict[str, Any] = {}
        for key, value in entry["params"].items():
            ppath = f"{path}.params.{key}"
            if key in slot.injected:
                raise SpecError(
                    ppath,
                    f"{key!r} is set by the {arch.name!r} architecture from its global parameters; "
                    f"set it under 'params' instead (global parameters: {', '.join(arch.params)})",
                )
            if key not in settable and not component.accepts_var_kwargs:
                raise _unknown_key(f"{path}.params", key, list(settable), f"parameter of {slot.kind} {name!r}")
            value = _plain(value, ppath)
            problem = _type_error(value, settable.get(key))
            if problem:
                raise SpecError(ppath, problem)
            resolved[key] = value
        for key, default in settable.items():
            if key in resolved:
                continue
            if default is inspect.Parameter.empty:
                raise SpecError(f"{path}.params.{key}", f"{slot.kind} {name!r} requires this parameter")
            resolved[key] = _plain(default, f"{path}.params.{key}")
        components[slot_name] = {"name": name, "params": resolved}

    resolved_spec = {"version": SPEC_VERSION, "model": arch.name, "params": params, "components": components}
    for check in arch.checks:
        problem = check(resolved_spec)
        if problem:
            raise SpecError(*problem)
    return resolved_spec


# -- overrides ----------------------------------------------------------------------------
def apply_overrides(
    spec: Mapping[str, Any], overrides: Mapping[str, Any], registry: Registry = REGISTRY
) -> dict[str, Any]:
    """Apply ``build_model`` keyword overrides to a (partial) spec.

    Accepted keys:

    - a global parameter: ``upscale=8``, ``scales=5``;
    - a slot, to swap the component: ``flow="flownets"`` (its parameters reset to the new
      component's defaults), or ``flow={"name": ..., "params": {...}}``, or
      ``flow={"params": {...}}`` to change parameters only;
    - a dotted key ``"<slot>.<param>"`` for one component parameter:
      ``**{"flow.width": 0.5}``.
    """
    out = copy.deepcopy(dict(spec))
    model_name = out.get("model")
    try:
        arch = registry.get("model", model_name).factory if isinstance(model_name, str) else None
    except UnknownComponentError as err:
        raise SpecError("model", str(err)) from None
    if not isinstance(arch, Architecture):
        raise SpecError("model", f"cannot apply overrides: {model_name!r} is not a registered architecture")
    params = dict(out.get("params") or {})
    components = dict(out.get("components") or {})
    accepted = [*arch.params, *arch.slots, *(f"{s}.<param>" for s in arch.slots)]
    for key, value in overrides.items():
        if key in arch.params:
            params[key] = value
        elif key in arch.slots:
            current = _normalise_entry(components.get(key, arch.slots[key].default), f"components.{key}")
            if isinstance(value, str):
                keep = value == current["name"]
                components[key] = {"name": value, "params": current["params"] if keep else {}}
            else:
                new = _normalise_entry(value, key)
                if new["name"] is None or new["name"] == current["name"]:
                    merged = {**current["params"], **new["params"]}
                    components[key] = {"name": current["name"], "params": merged}
                else:
                    components[key] = new
        elif "." in key and key.split(".", 1)[0] in arch.slots:
            slot, param = key.split(".", 1)
            current = _normalise_entry(components.get(slot, arch.slots[slot].default), f"components.{slot}")
            current["params"][param] = value
            components[slot] = current
        else:
            hint = closest(key, accepted)
            did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise SpecError(key, f"unknown override for {arch.name!r}.{did_you_mean} Accepted: {', '.join(accepted)}.")
    out["params"], out["components"] = params, components
    return out
