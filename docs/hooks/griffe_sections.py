"""Griffe extension: render the library's Napoleon-flavoured docstrings well in Markdown.

The docstrings follow Google style as Sphinx's Napoleon reads it, which pytest's doctest
runner and IDEs are happy with, but griffe and Markdown read two things differently:

- an ``Example:`` header (singular) is an admonition to griffe, so its ``>>>`` lines would be
  rendered as prose; it is renamed ``Examples:``, which griffe turns into code blocks;
- Sphinx roles (``:func:`~refsr_blocks.ops.flow_to_color```) would show their markup; they
  become inline code (``flow_to_color``; the ``~`` keeps the last name, as in Sphinx).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE_HEADER = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|ref|term):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`")


def _role_to_code(match: re.Match[str]) -> str:
    target = match.group(2).strip()
    if match.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def readable(text: str) -> str:
    """``text`` with ``Example:`` renamed and Sphinx roles turned into inline code."""
    text = _EXAMPLE_HEADER.sub(r"\1Examples:", text)
    return _ROLE.sub(_role_to_code, text)


class ReadableDocstrings(Extension):
    """Apply :func:`readable` to every docstring before it is parsed."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None:
            docstring.value = readable(docstring.value)
