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

:func:`resolve_spec` validates everything before any module is built and fills in every
default; errors are :class:`~refsr_blocks.core.errors.SpecError` naming the path inside the
spec (``components.flow.params.widht``), what was wrong and what is accepted. Each slot of an
architecture declares once which constructor arguments it supplies itself (``Slot.inject``:
the flow's ``scales`` from the global ``scales``, the decoder's ``lr_channels`` from the built
encoder); those are not settable per component, so a spec cannot disagree with itself.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import RegistryError, SpecError, UnknownComponentError, did_you_mean
from .registry import REGISTRY, Component, Registry

__all__ = ["BUILT", "SPEC_VERSION", "Architecture", "GlobalParam", "ModelEntry", "Slot", "apply_overrides"]
__all__ += ["check_params", "get_preset", "list_models", "load_spec", "model_entries", "plain", "register_preset"]
__all__ += ["resolve_spec"]

#: Version of the spec format, stored in every resolved spec.
SPEC_VERSION = 2

#: ``Slot.inject`` source for a constructor argument the builder computes from parts it has
#: already built (the decoder's ``lr_channels`` from the encoder), rather than a global parameter.
BUILT = "<built>"
SPEC_KEYS = ("model", "params", "components", "version", "owner")


@dataclass(frozen=True)
class GlobalParam:
    """A global parameter of an architecture: its ``default``, a ``check`` returning an error
    message for a bad value (or ``None``), and one line of ``doc`` for the spec reference."""

    default: Any
    check: Callable[[Any], str | None] = lambda value: None
    doc: str = ""


@dataclass(frozen=True)
class Slot:
    """A place in an architecture for one component of ``kind``.

    Attributes:
        default: the component used when the spec names none (``None`` with ``same_as``).
        inject: the constructor arguments the architecture supplies, each mapped to its source:
            a global parameter's name, or :data:`BUILT` for a value the builder passes to
            :func:`~refsr_blocks.core.build.instantiate`.
        required: the part of ``inject`` a component must accept to honour the contract.
        doc: one line for the spec reference.
        same_as: the slot whose resolved entry this one copies when the spec leaves it out.
    """

    kind: str
    default: str | None
    inject: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    doc: str = ""
    same_as: str | None = None


@dataclass(frozen=True)
class Architecture:
    """A model template: global parameters, component slots and a builder.

    Registered as a component of kind ``"model"``; calling it with a resolved spec builds
    the ``nn.Module``. Slot declarations are checked when the architecture is created, so a
    slot injecting an unknown global parameter fails at import, not at the first build.
    """

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
    """The (partial) spec a model name stands for: a preset's, or ``{"model": name}`` for an
    architecture that has no preset of that name; unknown names list both."""
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
    """The one-line description of a preset."""
    return _PRESETS[name][1]


@dataclass(frozen=True)
class ModelEntry:
    """One name :func:`~refsr_blocks.build_model` accepts: an ``"architecture"`` (a registered
    builder, with its defaults) or a ``"preset"`` (a named spec), the architecture it builds and
    one line of doc."""

    name: str
    type: str
    architecture: str
    doc: str


def model_entries(pattern: str = "*") -> list[ModelEntry]:
    """Every architecture and preset matching a wildcard pattern, sorted by name (the one listing;
    an architecture with a preset of its own name is listed once, as the architecture).

    Example:
        >>> [(e.name, e.type) for e in model_entries("crossnet_i*")]
        [('crossnet_iw', 'preset')]
    """
    models = [c for c in REGISTRY if c.kind == "model"]
    entries = {
        c.name: ModelEntry(c.name, "architecture", c.name, getattr(c.factory, "doc", "") or c.doc) for c in models
    }
    for name, (spec, doc) in _PRESETS.items():
        entries.setdefault(name, ModelEntry(name, "preset", str(spec.get("model")), doc))
    return [entries[n] for n in sorted(entries) if fnmatch.fnmatchcase(n, pattern)]


def list_models(pattern: str = "*") -> list[str]:
    """Names :func:`~refsr_blocks.build_model` accepts (architectures and presets), by wildcard.

    Example:
        >>> from refsr_blocks import list_models
        >>> names = list_models("crossnet*")
        >>> names[0], "crossnet_flownets" in names, all(n.startswith("crossnet") for n in names)
        ('crossnet', True, True)
    """
    return [e.name for e in model_entries(pattern)]


# -- loading ------------------------------------------------------------------------------
#: Limits on what a spec or configuration file may hold; real documents are far smaller.
MAX_DOCUMENT_BYTES = 1 << 20  # 1 MiB of text
MAX_DEPTH = 32  # nesting of lists and mappings
MAX_LIST_LENGTH = 1024  # entries in one list


class _LimitedSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses what a spec never needs and an attacker would use.

    Refused, with :class:`yaml.YAMLError` (which :func:`read_mapping_file` turns into the
    caller's error): aliases (``*name``, merge keys included), so a document holds no more
    values than its text (an "alias bomb" of 300 bytes would expand to billions), duplicate
    keys, and keys that are not strings (``4:``, ``yes:``, ``null:``; quote them).
    """

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
            mark = key_node.start_mark
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"keys must be strings, got {type(key).__name__} {key!r} (quote it: '{key_node.value}':)",
                    mark,
                )
            if key in seen:
                first = seen[key].start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first.line + 1}); keep one", mark
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_LimitedSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LimitedSafeLoader.construct_mapping)


def safe_load_yaml(text: str, loader: type[_LimitedSafeLoader] = _LimitedSafeLoader) -> Any:
    """Parse YAML text with the limits of :class:`_LimitedSafeLoader` (no tags, no aliases).

    ``loader``: a subclass that changes only how plain scalars resolve (command-line values).

    Raises:
        yaml.YAMLError: a syntax error or a refused construct, with its line.
        RecursionError: nesting of thousands of levels (PyYAML composes recursively).
    """
    return yaml.load(text, Loader=loader)  # a SafeLoader subclass: safe


def yaml_problem(err: yaml.YAMLError) -> str:
    """A PyYAML error in one line: where and what (PyYAML's own text quotes the line below)."""
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return " ".join(str(err).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"  # type: ignore[attr-defined]


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` object hook refusing duplicate keys."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}; keep one")
        out[key] = value
    return out


def read_mapping_file(
    path: str | Path, what: str = "spec file", error: Callable[[str, str], Exception] = SpecError
) -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml`` or ``.yml`` file (checked for size, not validated).

    YAML is read with :func:`safe_load_yaml` (no tags, no aliases, unique string keys),
    JSON refuses duplicate keys; both refuse files over :data:`MAX_DOCUMENT_BYTES` and
    documents nested deeper than :data:`MAX_DEPTH`.

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
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise error("", f"{what} {str(path)!r} is {size} bytes; specs and configs are under {MAX_DOCUMENT_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error("", f"{what} {str(path)!r} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise error("", f"cannot read {what} {str(path)!r}: {err.strerror or err}") from None
    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_pairs)
        else:
            data = safe_load_yaml(text)
    except RecursionError:
        raise error("", f"cannot parse {what} {str(path)!r}: nested too deeply (limit {MAX_DEPTH})") from None
    except yaml.YAMLError as err:
        raise error("", f"cannot parse {what} {str(path)!r}: {yaml_problem(err)}") from None
    except Exception as err:  # JSON errors carry line numbers; keep them
        raise error("", f"cannot parse {what} {str(path)!r}: {err}") from None
    if not isinstance(data, dict):
        raise error("", f"{what} {str(path)!r} must hold a mapping, got {type(data).__name__}")
    try:
        return plain(data)
    except SpecError as err:
        raise error(err.path, f"{err.message} (in {what} {str(path)!r})") from None


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a spec from a ``.json``, ``.yaml`` or ``.yml`` file."""
    return read_mapping_file(path, "spec file", SpecError)


# -- validation helpers -------------------------------------------------------------------
def plain(value: Any, path: str = "", depth: int = 0) -> Any:
    """A copy of ``value`` as JSON-compatible plain data (tuples become lists), or a :class:`SpecError`.

    Floats must be finite, keys strings, lists at most :data:`MAX_LIST_LENGTH` long and nesting
    at most :data:`MAX_DEPTH` deep: a spec is a small document.
    """
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
    """A message if ``value`` cannot stand where ``default`` stands, judged by its type.

    ``None`` cannot stand where the default is a number, string, boolean or list (it can where
    the default is ``None``, missing, or another object, such as a mapping of settings).
    """
    accepted = next((ok for kind, ok in _KINDS_OF if isinstance(default, kind)), None)
    if accepted is None:
        return None
    if value is None:
        return f"expected a value like the default {default!r}, got null (leave the key out for the default)"
    if isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool)):
        return None
    expected = "a list" if isinstance(default, (list, tuple)) else type(default).__name__
    return f"expected {expected} (default {default!r}), got {type(value).__name__} {value!r}"


#: ``(low, high)`` limits of a numeric parameter, inclusive; two ints ask for integers.
Bounds = tuple[float, float]


def param_bounds(factory: Any) -> dict[str, Bounds]:
    """The ``PARAM_BOUNDS`` a component factory declares (``{}`` if none).

    A component bounds its size parameters with one class (or function) attribute::

        PARAM_BOUNDS = {"num_blocks": (1, 256), "channels": (1, 1024), "extra_scales": (2, 8)}

    :func:`check_params` then refuses values outside ``[low, high]`` (for a list, each
    entry), and non-integers where both limits are ints, before anything is built.
    """
    bounds = getattr(factory, "PARAM_BOUNDS", None) or {}
    return dict(bounds) if isinstance(bounds, Mapping) else {}


def bounds_error(value: Any, bounds: Bounds) -> str | None:
    """A message if ``value`` (a number, or a list of numbers) lies outside ``bounds``."""
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


def _unknown_key(path: str, key: str, accepted: list[str], what: str) -> SpecError:
    return SpecError(
        f"{path}.{key}" if path else key,
        f"unknown {what}.{did_you_mean(key, accepted)} Accepted: {', '.join(accepted) or '(none)'}.",
    )


def check_params(
    component: Component, params: Mapping[str, Any], path: str, *, supplied: tuple[str, ...] = (), supplier: str = ""
) -> dict[str, Any]:
    """Validate keyword arguments for a component's factory against its signature.

    Args:
        component: the registered component.
        params: the user's keyword arguments.
        path: where they sit in the document, for messages (``components.flow.params``).
        supplied: arguments someone else sets (an architecture's injected ones): not settable.
        supplier: who sets them, for the message.

    Returns:
        Every settable parameter, as plain data, with defaults filled in.

    Raises:
        SpecError: an unknown or supplied name, a value of the wrong type or outside the
            component's ``PARAM_BOUNDS`` (see :func:`param_bounds`), or a missing required
            parameter, naming its path.
    """
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
        if key not in settable and not component.accepts_var_kwargs:
            raise _unknown_key(path, key, list(settable), f"parameter of {what}")
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


#: Keys of a component entry; ``owner`` (who registered the component, see :func:`_owner_note`)
#: is written only for components that are not refsr_blocks' own.
ENTRY_KEYS = ("name", "params", "owner")
LIBRARY_OWNER = "refsr_blocks"


def _mapping_or_none(value: Any, path: str, what: str) -> dict[str, Any]:
    """``value`` as a dict: a mapping, or ``None``/absent for an empty one; anything else raises."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected a mapping of {what}, got {type(value).__name__} {value!r}")
    return dict(value)


def _normalise_entry(entry: Any, path: str) -> dict[str, Any]:
    """``"name"`` or ``{"name": ..., "params": {...}}`` → the dict form (``owner`` kept if given)."""
    if isinstance(entry, str):
        return {"name": entry, "params": {}}
    if not isinstance(entry, Mapping):
        raise SpecError(path, f"expected a component name or {{'name': ..., 'params': {{...}}}}, got {entry!r}")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise _unknown_key(path, key, list(ENTRY_KEYS), "component entry key")
    params = _mapping_or_none(entry.get("params"), f"{path}.params", "parameter names to values")
    out = {"name": entry.get("name"), "params": params}
    if "owner" in entry:
        out["owner"] = entry["owner"]
    return out


def _owner_note(component: Component, given: Any, path: str) -> dict[str, str]:
    """The ``owner`` entry to record for ``component`` and a warning if ``given`` disagrees.

    A spec written while a plugin's component filled a slot names that plugin; rebuilding it
    where another owner registers the name (the plugin is gone, or another one overrides the
    built-in) warns, since the weights were trained on the other class. A spec without
    ``owner`` (written by hand, or before owners were recorded) accepts whoever registered the
    name; replacing a built-in warns at registration instead.
    """
    if given is not None and not isinstance(given, str):
        raise SpecError(f"{path}.owner", f"expected the name of a distribution, got {given!r}")
    if given is not None and given != component.owner:
        import warnings

        from .errors import RefSROwnerWarning

        warnings.warn(
            f"{path}: the spec was written with {component.kind} {component.name!r} registered by "
            f"{given!r}, but here it is registered by {component.owner!r} ({component.definition}); "
            "the model may not be the one the spec describes",
            RefSROwnerWarning,
            stacklevel=4,
        )
    return {} if component.owner == LIBRARY_OWNER else {"owner": component.owner}


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
    spec = plain(spec)
    for key in spec:
        if key not in SPEC_KEYS:
            raise _unknown_key("", key, list(SPEC_KEYS), "top-level spec key")
    version = spec.get("version", SPEC_VERSION)
    if isinstance(version, bool) or version != SPEC_VERSION:
        raise SpecError("version", f"this refsr-blocks reads spec versions [{SPEC_VERSION}], got {version!r}")
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
    given = _mapping_or_none(spec.get("params"), "params", "global parameters")
    params: dict[str, Any] = {}
    for key in given:
        if key not in arch.params:
            raise _unknown_key("params", key, list(arch.params), f"global parameter of {arch.name!r}")
    for key, gp in arch.params.items():
        value = plain(given.get(key, gp.default), f"params.{key}")
        problem = _type_error(value, gp.default) or gp.check(value)
        if problem:
            raise SpecError(f"params.{key}", problem)
        params[key] = value

    # Components.
    entries = _mapping_or_none(spec.get("components"), "components", "slot names to components")
    for slot_name in entries:
        if slot_name not in arch.slots:
            raise _unknown_key("components", slot_name, list(arch.slots), f"component slot of {arch.name!r}")
    components: dict[str, Any] = {}
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
        supplier = (
            f"the {arch.name!r} architecture from its global parameters; set it under 'params' instead "
            f"(global parameters: {', '.join(arch.params)})"
        )
        checked = check_params(
            component, entry["params"], f"{path}.params", supplied=tuple(slot.inject), supplier=supplier
        )
        components[slot_name] = {"name": name, "params": checked, **_owner_note(component, entry.get("owner"), path)}

    resolved_spec = {"version": SPEC_VERSION, "model": arch.name, "params": params, "components": components}
    resolved_spec.update(_owner_note(registry.get("model", model_name), spec.get("owner"), "model"))
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
    out, overrides = plain(spec), plain(overrides)
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

    def current_entry(slot: str) -> dict[str, Any]:
        """The slot's entry as the spec stands (a ``same_as`` slot follows its source)."""
        source = arch.slots[slot]
        fallback = source.default if source.same_as is None else current_entry(source.same_as)
        return copy.deepcopy(_normalise_entry(components.get(slot, fallback), f"components.{slot}"))

    for key, value in overrides.items():
        if key in arch.params:
            params[key] = value
        elif key in arch.slots:
            current = current_entry(key)
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
