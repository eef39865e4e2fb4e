"""Settings documents validated by pydantic: strict value types (YAML's ``4`` is an int, ``"4"`` a
string) and :func:`validate`, which reports pydantic's first error as a :class:`SpecError` at its
location written as a document path (``schedule.milestones[1]``)."""

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

__all__ = ["SECTION_CONFIG", "Beta", "Bool", "Float", "Int", "NonNegativeFloat", "NonNegativeInt"]
__all__ += ["PositiveFloat", "PositiveInt", "Str", "join_path", "validate"]

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

_EXPECTED = {"int": "an integer", "float": "a number", "finite_number": "a finite number", "bool": "true or false"}
_EXPECTED |= {"string": "a string", "dict": "a mapping", "tuple": "a list", "list": "a list"}
_EXPECTED |= {"dataclass": "a mapping of settings"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_KEY_ERRORS = (*_UNKNOWN, "missing", "missing_argument", "missing_keyword_only_argument")


def join_path(base: str, child: str) -> str:
    """``join_path("schedule", "loss.name")`` → ``schedule.loss.name``; ``[i]`` children attach directly."""
    if not base or not child:
        return base or child
    return f"{base}{child}" if child.startswith("[") else f"{base}.{child}"


def _document_path(loc: Sequence[int | str], data: Any, names_a_key: bool) -> str:
    """pydantic's location as a path in ``data``: the tags of union members (``'int'``) are no place
    in the document and are dropped, unless the last step names a missing or unknown key."""
    path, node = "", data
    for i, step in enumerate(loc):
        if isinstance(step, int) and isinstance(node, (list, tuple)):
            path, node = f"{path}[{step}]", node[step] if step < len(node) else None
        elif (
            isinstance(node, Mapping)
            and isinstance(step, str)
            and (step in node or (names_a_key and i == len(loc) - 1))
        ):
            path, node = join_path(path, step), node.get(step)
    return path


def _keys_at(tp: Any, loc: Sequence[int | str]) -> list[str]:
    """The keys of the dataclass or TypedDict found at pydantic's location ``loc`` inside ``tp``."""
    steps = list(loc)
    while True:
        while typing.get_origin(tp) in (Annotated, NotRequired, typing.NotRequired, typing.Required):
            tp = typing.get_args(tp)[0]
        origin, args = typing.get_origin(tp), [a for a in typing.get_args(tp) if a is not type(None)]
        if origin in (Union, types.UnionType):  # pydantic tags the member it tried (X | None: untagged)
            tagged = [a for a in args if steps and getattr(_bare(a), "__name__", None) == steps[0]]
            tp = tagged[0] if tagged else args[0] if len(args) == 1 else None
            steps = steps[1:] if tagged else steps
        elif not steps or tp is None:
            return list(typing.get_type_hints(tp)) if dataclasses.is_dataclass(tp) or is_typeddict(tp) else []
        elif dataclasses.is_dataclass(tp) or is_typeddict(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(str(steps.pop(0)))
        elif origin in (tuple, list, dict):
            step = steps.pop(0)
            fixed = origin is tuple and args[-1] is not Ellipsis
            tp = args[min(int(step), len(args) - 1)] if fixed else args[0] if origin is tuple else args[-1]
        else:
            return []


def _bare(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp


def _has_deeper(path: str, paths: list[str]) -> bool:
    return any(p.startswith((path + ".", path + "[")) for p in paths)


def _message(error: Mapping[str, Any], accepted: list[str]) -> str:
    """What was wrong, in words, for one pydantic error (without its location)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if isinstance(ctx.get("error"), (SpecError, ValueError)):  # raised by a validator
        return ctx["error"].message if isinstance(ctx["error"], SpecError) else str(ctx["error"])
    if kind.removesuffix("_type") in _EXPECTED:
        return f"expected {_EXPECTED[kind.removesuffix('_type')]}, got {type(value).__name__} {value!r}"
    if kind in _BOUNDS:
        return f"expected a number {_BOUNDS[kind]} {next(iter(ctx.values())):g}, got {value!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(map(repr, choices))}, got {value!r}.{did_you_mean(value, choices)}"
    if kind in _UNKNOWN:
        others = [k for k in accepted if k != error["loc"][-1]]
        return f"unknown setting.{did_you_mean(error['loc'][-1], others)} Accepted: {', '.join(others) or '(none)'}."
    if kind == "missing" and isinstance(error["loc"][-1], int):  # a list too short
        return f"expected at least {error['loc'][-1] + 1} values, got {len(value)}: {value!r}"
    if kind.startswith("missing"):
        return "this setting is required"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} values, got {ctx.get('actual_length')}: {value!r}"
    return str(error.get("msg", kind))


def validate(tp: Any, data: Any, path: str = "") -> Any:
    """``data`` (plain data at ``path`` in a document) validated as ``tp`` by pydantic; its first error,
    unknown keys first, raised as a :class:`SpecError`. A value that fits one member of a union but not
    its contents reports the contents; one that fits no member names them all ("an integer or a number").
    """
    try:
        return TypeAdapter(tp).validate_python(data)
    except ValidationError as err:
        found = []  # (not an unknown key, path, message)
        for e in err.errors():
            loc, cause = tuple(e["loc"]), (e.get("ctx") or {}).get("error")
            where = _document_path(loc, data, e["type"] in _KEY_ERRORS)
            if e["type"] == "missing" and loc and isinstance(loc[-1], int):
                where = where.rpartition("[")[0] or where
            where = join_path(where, cause.path) if isinstance(cause, SpecError) else where
            accepted = _keys_at(tp, loc[:-1]) if e["type"] in _UNKNOWN else []
            found.append((e["type"] not in _UNKNOWN, where, _message(e, accepted)))
        paths = [p for _, p, _ in found if p]
        found = [f for f in found if not (f[2].startswith("expected ") and _has_deeper(f[1], paths))]
        rank, where, message = min(found, key=lambda f: f[0])
        same = [m for r, p, m in found if (r, p) == (rank, where)]
        if len(same) > 1 and all(m.startswith("expected ") and ", got " in m for m in same):  # a union
            parts = [m.removeprefix("expected ").rsplit(", got ", 1) for m in same]
            message = f"expected {' or '.join(p[0] for p in parts)}, got {parts[0][1]}"
        raise SpecError(join_path(path, where), message) from None
