"""Parameter counts per component: ``python -m refsr_blocks.tools.summary crossnet``.

Example:
    >>> from refsr_blocks import build_model
    >>> rows = summarize(build_model("crossnet_lite"))
    >>> rows[-1][0], rows[-1][2] == sum(r[2] for r in rows[:-1])
    ('total', True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from torch import nn

# The one override syntax (YAML values); re-exported because the CLI imported it from here.
from ..core.overrides import parse_overrides

__all__ = ["format_summary", "main", "summarize"]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in module.parameters())


def summarize(model: nn.Module) -> list[tuple[str, str, int]]:
    """Rows ``(slot, component name, parameters)`` for each direct child, plus a total row."""
    spec = getattr(model, "spec", {}) or {}
    names = {slot: entry["name"] for slot, entry in spec.get("components", {}).items()}
    rows = []
    for child_name, child in model.named_children():
        rows.append((child_name, names.get(child_name, type(child).__name__), count_parameters(child)))
    rows.append(("total", spec.get("model", type(model).__name__), count_parameters(model)))
    return rows


def format_summary(rows: Sequence[tuple[str, str, int]]) -> str:
    """A Markdown table of :func:`summarize` rows."""
    lines = ["| part | component | parameters |", "| --- | --- | ---: |"]
    lines += [f"| {part} | {name} | {count:,} |" for part, name, count in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from ..core.build import build_model
    from ..core.errors import RefSRError

    parser = argparse.ArgumentParser(prog="python -m refsr_blocks.tools.summary", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a preset name or a path to a .json/.yaml spec")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. upscale=8 flow=flownets")
    args = parser.parse_args(argv)
    try:
        model = build_model(args.model, **parse_overrides(args.overrides))
    except (RefSRError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summarize(model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
