"""Declarative model specs: plain data that validates, resolves and round-trips (see docs/specs.md).

:func:`resolve_spec` checks a spec before anything is built and fills in every default; a
:class:`SpecError` names the path of the mistake (``components.flow.params.widht``). The arguments a
slot injects (``Slot.inject``) are not settable per component, so a spec cannot disagree with itself.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import RefSROwnerWarning, RegistryError, SpecError, UnknownComponentError, did_you_mean
from .registry import REGISTRY, Component, Registry

__all__ = ["BUILT", "SPEC_VERSION", "Architecture", "GlobalParam", "ModelEntry", "Slot", "apply_overrides"]
__all__ += ["check_params", "get_preset", "list_models", "load_spec", "model_entries", "plain", "register_preset"]
__all__ += ["resolve_spec"]

SPEC_VERSION = 2
#: ``Slot.inject`` source of an argument the builder computes from parts already built (not a global).
BUILT = "<built>"
SPEC_KEYS = ("model", "params", "components", "version", "owner")


@dataclass(frozen=True)
class GlobalParam:
    """An architecture's global parameter: ``default``, a ``check`` (error message or ``None``), ``doc``."""

    default: Any
    check: Callable[[Any], str | None] = lambda value: None
    doc: str = ""


@dataclass(frozen=True)
class Slot:
    """A place for one component of ``kind``: its ``default`` (or ``same_as``, an earlier slot whose entry
    it copies), the arguments the architecture supplies (``inject``: argument → global parameter or
    :data:`BUILT`), those a component must accept (``required``), and a line of ``doc``."""

    kind: str
    default: str | None
    inject: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    doc: str = ""
    same_as: str | None = None


@dataclass(frozen=True)
class Architecture:
    """A ``model`` component: global parameters, slots, and ``build(resolved_spec) -> nn.Module``.

    The slots are checked here, so a bad declaration fails at import, not at the first build."""

    name: str
    params: Mapping[str, GlobalParam]
    slots: Mapping[str, Slot]
    build: Callable[[dict[str, Any]], Any]
    doc: str = ""
    checks: tuple[Callable[[dict[str, Any]], tuple[str, str] | None], ...] = field(default=())

    def __post_init__(self) -> None:
        for slot_name, slot in self.slots.items():
            for arg, source in slot.inject.items():
                if source != BUILT and source not in self.params:
                    raise RegistryError(
                        f"architecture {self.name!r}, slot {slot_name!r}: argument {arg!r} is injected from "
                        f"{source!r}, which is not a global parameter ({', '.join(self.params)}) nor BUILT"
                    )
            if not set(slot.required) <= set(slot.inject):
                raise RegistryError(f"architecture {self.name!r}, slot {slot_name!r}: required ⊄ inject")
            if (slot.default is None) == (slot.same_as is None):
                raise RegistryError(f"architecture {self.name!r}, slot {slot_name!r}: give a default or same_as")
            if slot.same_as is not None and list(self.slots).index(slot.same_as) > list(self.slots).index(slot_name):
                raise RegistryError(f"architecture {self.name!r}: slot {slot_name!r} must come after {slot.same_as!r}")

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
    """The (partial) spec of a preset, or ``{"model": name}`` for an architecture."""
    REGISTRY.list("model")  # make sure plugins (which may add presets) are loaded
    if name in _PRESETS:
        return copy.deepcopy(_PRESETS[name][0])
    if ("model", name) in REGISTRY:
        return {"model": name}
    names = list_models()
    raise UnknownComponentError(
        f"unknown model {name!r}.{did_you_mean(name, names)} Architectures and presets: {', '.join(names)}. "
        "A path to a .json/.yaml spec or a spec dict is accepted too."
    )


def preset_doc(name: str) -> str:
    return _PRESETS[name][1]


@dataclass(frozen=True)
class ModelEntry:
    """A name ``build_model`` accepts: its ``type`` (``"architecture"`` or ``"preset"``), what it builds, a doc line."""

    name: str
    type: str
    architecture: str
    doc: str


def model_entries(pattern: str = "*") -> list[ModelEntry]:
    """Every architecture and preset matching a wildcard pattern, sorted (a name is listed once).

    Example:
        >>> [(e.name, e.type) for e in model_entries("crossnet_i*")]
        [('crossnet_iw', 'preset')]
    """
    archs = [c for c in REGISTRY if c.kind == "model"]
    entries = {
        c.name: ModelEntry(c.name, "architecture", c.name, getattr(c.factory, "doc", "") or c.doc) for c in archs
    }
    for name, (spec, doc) in _PRESETS.items():
        entries.setdefault(name, ModelEntry(name, "preset", str(spec.get("model")), doc))
    return [entries[n] for n in sorted(entries) if fnmatch.fnmatchcase(n, pattern)]


def list_models(pattern: str = "*") -> list[str]:
    """The names of :func:`model_entries`.

    Example:
        >>> from refsr_blocks import list_models
        >>> names = list_models("crossnet*")
        >>> names[0], "crossnet_flownets" in names, all(n.startswith("crossnet") for n in names)
        ('crossnet', True, True)
    """
    return [e.name for e in model_entries(pattern)]


# -- loading ------------------------------------------------------------------------------
#: What a spec or configuration file may hold; real documents are far smaller.
MAX_DOCUMENT_BYTES = 1 << 20  # 1 MiB of text
MAX_DEPTH = 32  # nesting of lists and mappings
MAX_LIST_LENGTH = 1024  # entries in one list


class _LimitedSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing aliases (so a document holds no more values than its text: a 300-byte
    "alias bomb" expands to billions), duplicate keys and keys that are not strings (``4:``, ``yes:``)."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported; write the value out", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        self.flatten_mapping(node)  # merge keys ("<<: {...}") first, as SafeLoader does
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                problem = f"keys must be strings, got {type(key).__name__} {key!r} (quote it: '{key_node.value}':)"
            elif key in seen:
                problem = f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1}); keep one"
            else:
                seen[key] = key_node
                continue
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def safe_load_yaml(text: str, loader: type[_LimitedSafeLoader] = _LimitedSafeLoader) -> Any:
    """YAML text read by ``loader`` (no tags, no aliases); raises ``yaml.YAMLError`` or, for thousands of
    nesting levels, ``RecursionError``."""
    return yaml.load(text, Loader=loader)  # a SafeLoader subclass: safe


def yaml_problem(err: yaml.YAMLError) -> str:
    """A PyYAML error in one line: where and what (PyYAML's own text quotes the line below)."""
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return " ".join(str(err).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"  # type: ignore[attr-defined]


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}; keep one")
        out[key] = value
    return out


def read_mapping_file(path: str | Path, what: str = "spec file") -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml`` or ``.yml`` file, within the limits above (not validated);
    ``what`` names the file in the messages of its :class:`SpecError`."""
    path = Path(path)
    name = f"{what} {str(path)!r}"
    if not path.is_file():
        raise SpecError("", f"{name} does not exist")
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise SpecError("", f"{name} must end in .json, .yaml or .yml")
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise SpecError("", f"{name} is {path.stat().st_size} bytes; specs and configs are under {MAX_DOCUMENT_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8")
        json_file = path.suffix.lower() == ".json"
        data = json.loads(text, object_pairs_hook=_json_pairs) if json_file else safe_load_yaml(text)
    except UnicodeDecodeError as err:
        raise SpecError("", f"{name} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise SpecError("", f"cannot read {name}: {err.strerror or err}") from None
    except RecursionError:
        raise SpecError("", f"cannot parse {name}: nested too deeply (limit {MAX_DEPTH})") from None
    except yaml.YAMLError as err:
        raise SpecError("", f"cannot parse {name}: {yaml_problem(err)}") from None
    except Exception as err:  # JSON errors carry line numbers; keep them
        raise SpecError("", f"cannot parse {name}: {err}") from None
    if not isinstance(data, dict):
        raise SpecError("", f"{name} must hold a mapping, got {type(data).__name__}")
    try:
        return plain(data)
    except SpecError as err:
        raise SpecError(err.path, f"{err.message} (in {name})") from None


def load_spec(path: str | Path) -> dict[str, Any]:
    return read_mapping_file(path, "spec file")


# -- validation helpers -------------------------------------------------------------------
def plain(value: Any, path: str = "", depth: int = 0) -> Any:
    """A copy of ``value`` as JSON-compatible plain data (tuples become lists) within the limits above:
    finite floats, string keys; anything else is a :class:`SpecError` at ``path``."""
    if depth > MAX_DEPTH:
        raise SpecError(path, f"nested deeper than {MAX_DEPTH} levels; a spec is a small, flat document")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(path, f"{value!r} is not a finite number")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST_LENGTH:
            raise SpecError(path, f"a list of {len(value)} entries; at most {MAX_LIST_LENGTH} are accepted")
        return [plain(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise SpecError(path, f"keys must be strings, got {type(bad[0]).__name__} {bad[0]!r} (quote it in YAML)")
        return {k: plain(v, f"{path}.{k}" if path else k, depth + 1) for k, v in value.items()}
    raise SpecError(
        path,
        f"{type(value).__name__} is not plain data; specs hold only numbers, strings, booleans, "
        "None, lists and dicts (so they survive JSON and YAML)",
    )


_KINDS_OF = ((bool, (bool,)), (int, (int,)), (float, (int, float)), (str, (str,)), ((list, tuple), (list, tuple)))


def _type_error(value: Any, default: Any) -> str | None:
    """A message if ``value``'s type cannot stand where ``default`` stands (``None`` only where the
    default is no number, string, boolean or list)."""
    accepted = next((ok for kind, ok in _KINDS_OF if isinstance(default, kind)), None)
    if accepted is None:
        return None
    if value is None:
        return f"expected a value like the default {default!r}, got null (leave the key out for the default)"
    if isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool)):
        return None
    expected = "a list" if isinstance(default, (list, tuple)) else type(default).__name__
    return f"expected {expected} (default {default!r}), got {type(value).__name__} {value!r}"


def param_bounds(factory: Any) -> dict[str, tuple[float, float]]:
    """A factory's ``PARAM_BOUNDS`` (``{"channels": (1, 1024)}``, see docs/specs.md), ``{}`` if none."""
    bounds = getattr(factory, "PARAM_BOUNDS", None) or {}
    return dict(bounds) if isinstance(bounds, Mapping) else {}


def bounds_error(value: Any, bounds: tuple[float, float]) -> str | None:
    """A message if ``value`` (a number, or a list of numbers) lies outside ``bounds``, ``(low, high)``
    inclusive; two ints ask for integers."""
    low, high = bounds
    integral = isinstance(low, int) and isinstance(high, int)
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if item is None:
            continue
        kind = "an integer" if integral else "a number"
        if isinstance(item, bool) or not isinstance(item, (int, float)) or (integral and not isinstance(item, int)):
            return f"expected {kind} in [{low}, {high}], got {type(item).__name__} {item!r}"
        if not low <= item <= high:
            return f"{item!r} is out of range: expected {kind} in [{low}, {high}]"
    return None


def in_range(low: float, high: float) -> Callable[[Any], str | None]:
    """A :class:`GlobalParam` check accepting numbers in ``[low, high]`` (integers if both are ints)."""
    return lambda value: bounds_error(value, (low, high))


def one_of(options: Sequence[Any]) -> Callable[[Any], str | None]:
    """A :class:`GlobalParam` check accepting only the values in ``options``."""
    return lambda value: None if value in options else f"must be one of {list(options)}, got {value!r}"


def _only(keys: Any, accepted: Any, path: str, what: str) -> None:
    """Raise for the first of ``keys`` that is not ``accepted``, naming the closest accepted ones."""
    for key in keys:
        if key not in accepted:
            accepted = list(accepted)
            raise SpecError(
                f"{path}.{key}" if path else key,
                f"unknown {what}.{did_you_mean(key, accepted)} Accepted: {', '.join(accepted) or '(none)'}.",
            )


def check_params(
    component: Component, params: Mapping[str, Any], path: str, *, supplied: tuple[str, ...] = (), supplier: str = ""
) -> dict[str, Any]:
    """Every settable parameter of ``component``, ``params`` checked against its signature and
    ``PARAM_BOUNDS`` and the defaults filled in; ``supplied`` names are set by ``supplier``, not here.
    A :class:`SpecError` names the parameter's path (``path``: ``components.flow.params``)."""
    what = f"{component.kind} {component.name!r}"
    if not isinstance(params, Mapping):
        raise SpecError(
            path, f"expected a mapping of parameter names to values, got {type(params).__name__} {params!r}"
        )
    bounds = param_bounds(component.factory)
    settable = {k: v for k, v in component.defaults.items() if k not in supplied}
    resolved: dict[str, Any] = {}
    for key, value in params.items():
        ppath = f"{path}.{key}" if path else key
        if key in supplied:
            raise SpecError(ppath, f"{key!r} is set by {supplier or 'someone else'}, not here")
        if not component.accepts_var_kwargs:
            _only([key], settable, path, f"parameter of {what}")
        value = plain(value, ppath)
        problem = _type_error(value, settable.get(key))
        if problem is None and key in bounds:
            problem = bounds_error(value, bounds[key])
        if problem:
            raise SpecError(ppath, problem)
        resolved[key] = value
    for key, default in settable.items():
        if key in resolved:
            continue
        if default is inspect.Parameter.empty:
            raise SpecError(f"{path}.{key}" if path else key, f"{what} requires this parameter")
        resolved[key] = plain(default, f"{path}.{key}")
    return resolved


#: Keys of a component entry; ``owner`` is written only for components that are not the library's.
ENTRY_KEYS = ("name", "params", "owner")
LIBRARY_OWNER = "refsr_blocks"


def _mapping_or_none(value: Any, path: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected a mapping of {what}, got {type(value).__name__} {value!r}")
    return dict(value)


def _normalise_entry(entry: Any, path: str) -> dict[str, Any]:
    if isinstance(entry, str):
        return {"name": entry, "params": {}}
    if not isinstance(entry, Mapping):
        raise SpecError(path, f"expected a component name or {{'name': ..., 'params': {{...}}}}, got {entry!r}")
    _only(entry, ENTRY_KEYS, path, "component entry key")
    params = _mapping_or_none(entry.get("params"), f"{path}.params", "parameter names to values")
    return {"name": entry.get("name"), "params": params} | ({"owner": entry["owner"]} if "owner" in entry else {})


def _owner_note(component: Component, given: Any, path: str) -> dict[str, str]:
    """The ``owner`` entry to record for ``component``; a warning if the spec's (``given``) differs, since
    its weights were made with the other owner's class (no ``owner``: whoever registered the name)."""
    if given is not None and not isinstance(given, str):
        raise SpecError(f"{path}.owner", f"expected the name of a distribution, got {given!r}")
    if given is not None and given != component.owner:
        warnings.warn(
            f"{path}: the spec was written with {component.kind} {component.name!r} registered by "
            f"{given!r}, but here it is registered by {component.owner!r} ({component.definition}); "
            "the model may not be the one the spec describes",
            RefSROwnerWarning,
            stacklevel=4,
        )
    return {} if component.owner == LIBRARY_OWNER else {"owner": component.owner}


def resolve_spec(spec: Mapping[str, Any], registry: Registry = REGISTRY) -> dict[str, Any]:
    """``spec`` checked, with every default filled in (``version``, ``model``, ``params``, ``components``);
    a :class:`SpecError` names the path of the first mistake, what was wrong and what is accepted."""
    if not isinstance(spec, Mapping):
        raise SpecError("", f"a spec must be a mapping, got {type(spec).__name__}")
    spec = plain(spec)
    _only(spec, SPEC_KEYS, "", "top-level spec key")
    version = spec.get("version", SPEC_VERSION)
    if isinstance(version, bool) or version != SPEC_VERSION:
        raise SpecError("version", f"this refsr-blocks reads spec versions [{SPEC_VERSION}], got {version!r}")
    model = _architecture(spec.get("model"), registry)
    arch: Architecture = model.factory  # type: ignore[assignment]
    given = _mapping_or_none(spec.get("params"), "params", "global parameters")
    params: dict[str, Any] = {}
    _only(given, arch.params, "params", f"global parameter of {arch.name!r}")
    for key, gp in arch.params.items():
        value = plain(given.get(key, gp.default), f"params.{key}")
        problem = _type_error(value, gp.default) or gp.check(value)
        if problem:
            raise SpecError(f"params.{key}", problem)
        params[key] = value

    entries = _mapping_or_none(spec.get("components"), "components", "slot names to components")
    _only(entries, arch.slots, "components", f"component slot of {arch.name!r}")
    components: dict[str, Any] = {}
    supplier = (
        f"the {arch.name!r} architecture from its global parameters; set it under 'params' instead "
        f"(global parameters: {', '.join(arch.params)})"
    )
    for slot_name, slot in arch.slots.items():
        path = f"components.{slot_name}"
        if slot.same_as is not None and slot_name not in entries:
            components[slot_name] = copy.deepcopy(components[slot.same_as])
            continue
        default_name = slot.default if slot.same_as is None else components[slot.same_as]["name"]
        entry = _normalise_entry(entries.get(slot_name, default_name), path)
        name = entry["name"] if entry["name"] is not None else default_name
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
        checked = check_params(
            component, entry["params"], f"{path}.params", supplied=tuple(slot.inject), supplier=supplier
        )
        components[slot_name] = {"name": name, "params": checked, **_owner_note(component, entry.get("owner"), path)}

    resolved_spec = {"version": SPEC_VERSION, "model": arch.name, "params": params, "components": components}
    resolved_spec.update(_owner_note(model, spec.get("owner"), "model"))
    for check in arch.checks:
        problem = check(resolved_spec)
        if problem:
            raise SpecError(*problem)
    return resolved_spec


def _architecture(name: Any, registry: Registry) -> Component:
    """The registered ``model`` component ``name``, whose factory is an :class:`Architecture`."""
    if not isinstance(name, str):
        raise SpecError("model", f"name the architecture, one of {registry.list('model')}; got {name!r}")
    try:
        component = registry.get("model", name)
    except UnknownComponentError as err:
        raise SpecError("model", str(err)) from None
    if not isinstance(component.factory, Architecture):
        raise SpecError("model", f"model component {name!r} is not an Architecture")
    return component


def apply_overrides(
    spec: Mapping[str, Any], overrides: Mapping[str, Any], registry: Registry = REGISTRY
) -> dict[str, Any]:
    """A (partial) spec with ``build_model``'s keyword overrides applied: a global parameter
    (``upscale=8``); a slot (``flow="flownets"`` swaps the component, its parameters reset;
    ``flow={"params": {...}}`` changes parameters only); or one parameter (``**{"flow.width": 0.5}``).
    """
    out, overrides = plain(spec), plain(overrides)
    arch: Architecture = _architecture(out.get("model"), registry).factory  # type: ignore[assignment]
    params, components = dict(out.get("params") or {}), dict(out.get("components") or {})
    accepted = [*arch.params, *arch.slots, *(f"{s}.<param>" for s in arch.slots)]

    def current_entry(slot: str) -> dict[str, Any]:  # a same_as slot follows its source
        source = arch.slots[slot]
        fallback = source.default if source.same_as is None else current_entry(source.same_as)
        return copy.deepcopy(_normalise_entry(components.get(slot, fallback), f"components.{slot}"))

    for key, value in overrides.items():
        if key in arch.params:
            params[key] = value
        elif key in arch.slots:
            current, new = current_entry(key), _normalise_entry(value, key)
            if new["name"] in (None, current["name"]):  # same component: merge the parameters
                new = {"name": current["name"], "params": {**current["params"], **new["params"]}}
            components[key] = new
        elif "." in key and key.split(".", 1)[0] in arch.slots:
            slot, param = key.split(".", 1)
            current = current_entry(slot)
            current["params"][param] = value
            components[slot] = current
        else:
            raise SpecError(
                key,
                f"unknown override for {arch.name!r}.{did_you_mean(key, accepted)} Accepted: {', '.join(accepted)}.",
            )
    out["params"], out["components"] = params, components
    return out
