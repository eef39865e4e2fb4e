"""Settings documents (YAML or JSON) validated by pydantic, every error a :class:`SpecError`.

The strict value types of every settings section (YAML's ``4`` is an int, ``"4"`` a string,
``true`` a bool), the pydantic settings of a section, and :func:`validate`, which reports
pydantic's first error as one :class:`~refsr_blocks.core.errors.SpecError` naming the key
(``schedule.milestones[1]``), what was wrong and what is accepted. The training configuration
(:mod:`refsr_blocks.train.config`) and the dataset entries (:mod:`refsr_blocks.data.entries`)
are validated with them.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union

from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, is_typeddict

from .errors import SpecError, did_you_mean

__all__ = [
    "SECTION_CONFIG",
    "Beta",
    "Bool",
    "Float",
    "Int",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "Str",
    "join_path",
    "validate",
]

# -- value types: strict scalars (YAML's 4 is an int, "4" a string, true a bool) ------------------
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, Strict()]  # ints are accepted (and become floats), bools and strings not
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
Beta = Annotated[float, Strict(), Field(ge=0, lt=1)]

#: pydantic settings of every section: unknown keys and non-finite numbers (``.nan``) are errors.
SECTION_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


def join_path(base: str, child: str) -> str:
    """``join_path("schedule", "loss.name")`` → ``schedule.loss.name``; ``[i]`` children attach directly."""
    if not base or not child:
        return base or child
    return f"{base}{child}" if child.startswith("[") else f"{base}.{child}"


# -- pydantic's errors as SpecErrors ---------------------------------------------------------------
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "dataclass_type": "a mapping of settings",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_UNKNOWN_KEY = ("unexpected_keyword_argument", "extra_forbidden")
_MISSING_KEY = ("missing", "missing_argument", "missing_keyword_only_argument")


def _document_path(loc: tuple[int | str, ...], data: Any, names_a_key: bool) -> str:
    """The dotted path of a pydantic error location inside ``data``.

    Locations also hold the tags of union members (``'int'``, ``'LossSetting'``); they name
    no place in the document and are dropped: a string step is kept only where ``data`` has
    that key, or, when the error ``names_a_key`` (a missing or unknown one), as the last step.
    """
    path, node = "", data
    for i, step in enumerate(loc):
        if isinstance(step, int) and isinstance(node, (list, tuple)):
            path, node = f"{path}[{step}]", node[step] if step < len(node) else None
        elif (
            isinstance(step, str)
            and isinstance(node, Mapping)
            and (step in node or (names_a_key and i == len(loc) - 1))
        ):
            path, node = join_path(path, step), node.get(step)
    return path


def _unwrap(tp: Any) -> Any:
    """``tp`` without ``Annotated``/``NotRequired``/``Required`` wrappers."""
    while typing.get_origin(tp) in (Annotated, NotRequired, typing.Required, typing.NotRequired):
        tp = typing.get_args(tp)[0]
    return tp


def _keys_at(tp: Any, loc: Sequence[int | str]) -> list[str]:
    """The keys accepted by the dataclass or TypedDict found at ``loc`` inside type ``tp``."""
    i = 0
    while True:
        tp = _unwrap(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (Union, types.UnionType):
            members = [_unwrap(a) for a in args if a is not type(None)]
            tagged = [m for m in members if i < len(loc) and getattr(m, "__name__", None) == loc[i]]
            if tagged:  # pydantic names the union member it tried
                tp, i = tagged[0], i + 1
            elif len(members) == 1:  # X | None: no tag, the step belongs to X
                tp = members[0]
            else:
                return []
            continue
        if i == len(loc):
            break
        step, i = loc[i], i + 1
        if dataclasses.is_dataclass(tp) or is_typeddict(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(str(step))
        elif origin is tuple and isinstance(step, int):
            tp = args[0] if len(args) == 2 and args[1] is Ellipsis else args[min(step, len(args) - 1)]
        elif origin in (list, dict):
            tp = args[-1]
        else:
            return []
    if dataclasses.is_dataclass(tp) or is_typeddict(tp):
        return list(typing.get_type_hints(tp))
    return []


def _message(error: Mapping[str, Any]) -> str:
    """What was wrong, in words, for one pydantic error (without its location)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    got = f"got {type(value).__name__} {value!r}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, {got}"
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        return f"expected a number {_BOUNDS[kind]} {limit:g}, got {value!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(map(repr, choices))}, got {value!r}.{did_you_mean(value, choices)}"
    if kind in _MISSING_KEY:
        return "this setting is required"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} values, got {ctx.get('actual_length')}: {value!r}"
    return str(error.get("msg", kind))


def _config_error(err: ValidationError, data: Any, root: Any, prefix: str) -> SpecError:
    """The first of pydantic's errors as a :class:`SpecError` with its dotted path.

    Args:
        err: pydantic's errors.
        data: the validated document (for the paths).
        root: the validated type (for the accepted keys of an unknown one).
        prefix: where ``data`` sits in the configuration.
    """
    found: list[tuple[int, str, str]] = []  # (rank, path, message); unknown keys first
    for error in err.errors():
        loc = tuple(error["loc"])
        path = _document_path(loc, data, error["type"] in (*_UNKNOWN_KEY, *_MISSING_KEY))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):  # raised by a validator, relative to its value
            found.append((1, join_path(path, cause.path), cause.message))
        elif error["type"] in _UNKNOWN_KEY:
            key = str(loc[-1])
            accepted = [k for k in _keys_at(root, loc[:-1]) if k != key]
            hint = did_you_mean(key, accepted)
            found.append((0, path, f"unknown setting.{hint} Accepted: {', '.join(accepted) or '(none)'}."))
        elif error["type"] == "missing" and loc and isinstance(loc[-1], int):  # a list too short
            values = error["input"]
            message = f"expected at least {loc[-1] + 1} values, got {len(values)}: {values!r}"
            found.append((1, path.rpartition("[")[0] or path, message))
        elif error["type"] == "value_error" and cause is not None:
            found.append((1, path, str(cause)))
        else:
            found.append((1, path, _message(error)))
    # A value that fits one member of a union but not its contents: keep the contents' errors
    # (``{nme: l1}`` for a loss is an unknown key, not "expected a string").
    deeper = {p for _, p, _ in found}
    found = [
        f
        for f in found
        if not (f[2].startswith("expected ") and any(q.startswith((f[1] + ".", f[1] + "[")) for q in deeper if q))
    ]
    found.sort(key=lambda f: f[0])
    rank, path, message = found[0]
    same = [m for r, p, m in found if p == path and r == rank]
    expected = [m.removeprefix("expected ").rsplit(", got ", 1) for m in same if m.startswith("expected ")]
    if len(same) > 1 and len(expected) == len(same):  # a union: "expected an integer or a number, got …"
        message = f"expected {' or '.join(e[0] for e in expected)}, got {expected[0][-1]}"
    return SpecError(join_path(prefix, path), message)


def validate(tp: Any, data: Any, path: str = "") -> Any:
    """``data`` validated as ``tp`` by pydantic; its errors raised as one :class:`SpecError`.

    Args:
        tp: a configuration dataclass or any type pydantic validates.
        data: plain data (from YAML or JSON).
        path: where ``data`` sits in the configuration, prefixed to error paths.
    """
    try:
        return TypeAdapter(tp).validate_python(data)
    except ValidationError as err:
        raise _config_error(err, data, tp, path) from None
