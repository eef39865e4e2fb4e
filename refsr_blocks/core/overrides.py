"""``KEY=VALUE`` overrides from the command line (``spec MODEL flow.width=0.5``, ``train --set``).

Values are read by the library's YAML loader, as JSON would read them (``1e-4`` is a number, ``yes``
and dates are strings). Nothing here imports torch.

Example:
    >>> parse_overrides(["upscale=8", "flow.width=0.5", "flow=flownets", "scales=[1, 2]"])
    {'upscale': 8, 'flow.width': 0.5, 'flow': 'flownets', 'scales': [1, 2]}
    >>> parse_value("1e-4"), parse_value("no"), parse_value("{a: 1}")
    (0.0001, 'no', {'a': 1})
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

from .errors import SpecError
from .spec import _LimitedSafeLoader, safe_load_yaml, yaml_problem

__all__ = ["parse_override", "parse_overrides", "parse_value"]

_BOOL, _FLOAT, _TIMESTAMP = (f"tag:yaml.org,2002:{t}" for t in ("bool", "float", "timestamp"))


class _ValueLoader(_LimitedSafeLoader):
    """The library's YAML loader with JSON-like booleans and numbers."""


_ValueLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ValueLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_ValueLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> object:
    """The value of one override (see the module docstring); invalid YAML is a :class:`SpecError`."""
    if not text.strip():
        return None
    try:
        return safe_load_yaml(text, _ValueLoader)
    except yaml.YAMLError as err:
        raise SpecError("", f"cannot read the value {text!r} as YAML: {yaml_problem(err)}") from None
    except RecursionError:
        raise SpecError("", f"the value ({len(text)} characters) is nested too deeply") from None


def parse_override(item: str) -> tuple[str, object]:
    """``"flow.width=0.5"`` → ``("flow.width", 0.5)``; a malformed item is a :class:`SpecError`."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(
            "", f"override {item!r} must look like KEY=VALUE or KEY.PATH=VALUE (e.g. upscale=8 or flow.width=0.5)"
        )
    try:
        return key, parse_value(text)
    except SpecError as err:
        raise SpecError(key, err.message) from None


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """``["upscale=8", "flow.width=0.5"]`` → ``{"upscale": 8, "flow.width": 0.5}`` (later items win)."""
    return dict(parse_override(item) for item in items)
