"""The generated pages of the documentation: the spec reference, the API pages, the pictures.

Documentation tooling, not part of the package. The mkdocs hook ``refsr_docs.py`` beside it
calls these at every build, so the pages cannot drift from the code: the spec reference from
the registry's architectures, kinds and components and from the presets (parameter meanings
parsed from the docstrings by griffe), one mkdocstrings page per public module (found by
griffe), and the pictures, drawn by :mod:`refsr_blocks.tools.viz`. Also a script::

    python docs/hooks/refsr_docgen.py spec-reference | api-modules | pictures OUT_DIR [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import griffe
import yaml
from griffe_sections import readable  # the sibling module: this folder is on sys.path

from refsr_blocks import build_model
from refsr_blocks.core import spec
from refsr_blocks.core.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]

PACKAGE = "refsr_blocks"


# -- Markdown and docstrings ------------------------------------------------------------------
def blocks(*parts: str | None) -> str:
    """Markdown blocks separated by blank lines, empty ones left out."""
    return "\n\n".join(p.strip("\n") for p in parts if p) + "\n"


def cell(text: Any) -> str:
    """``text`` on one line, safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; a header starting with a space right-aligns its column."""
    rule = ["---:" if h.startswith(" ") else "---" for h in header]
    return "\n".join(f"| {' | '.join(row)} |" for row in ([h.strip() for h in header], rule, *rows))


def value(default: Any) -> str:
    """A default value as inline code, ``*required*`` when there is none."""
    if default is inspect.Parameter.empty or default is dataclasses.MISSING:
        return "*required*"
    return f"`{default!r}`" if "`" not in repr(default) else repr(default)


def summary(doc: str | None) -> str:
    """The first paragraph of a docstring, Sphinx roles made inline code."""
    return readable(inspect.cleandoc(doc or "")).split("\n\n")[0].strip()


def documented(obj: Any, section: str = "parameters") -> dict[str, str]:
    """Name → description in the ``Args:`` (or another ``section``) of ``obj``'s docstring, parsed by griffe.

    An entry ``a, b: text`` documents both names.
    """
    parsed = griffe.Docstring(readable(inspect.getdoc(obj) or "")).parse("google", warnings=False)
    items = (item for part in parsed if part.kind.value == section for item in part.value)
    return {name.strip(): " ".join(item.description.split()) for item in items for name in item.name.split(",")}


# -- API reference ----------------------------------------------------------------------------
def public_modules(package: str = PACKAGE) -> dict[str, str]:
    """Each public module (no part of its name starts with ``_``) → its summary, read from source by griffe."""
    found: dict[str, str] = {}

    def visit(module: griffe.Module) -> None:
        found[module.path] = summary(module.docstring.value if module.docstring else "")
        subs = [m for m in module.members.values() if not m.is_alias and m.is_module and not m.name.startswith("_")]
        for sub in sorted(subs, key=lambda m: m.name):
            visit(sub)

    visit(griffe.load(package, search_paths=[str(ROOT)], docstring_parser=None))
    return found


def api_page(module: str) -> str:
    """The mkdocstrings page of one module."""
    return f"# `{module}`\n\n::: {module}\n"


def api_index(modules: Mapping[str, str]) -> str:
    """The API overview page: each module (name → summary) linked to its page."""
    rows = [(f"[`{name}`]({name}.md)", cell(text)) for name, text in modules.items()]
    intro = "One page per public module of `refsr_blocks`, generated from its docstrings when the site is built."
    return blocks("# API reference", intro, table(["module", "summary"], rows))


# -- spec reference ---------------------------------------------------------------------------
def kinds(include_plugins: bool = False) -> list[str]:
    """The component kinds in assembly order: the library's own, plus the plugins' with ``include_plugins``."""
    return [k for k in REGISTRY.kinds if include_plugins or getattr(REGISTRY.get_kind(k), "owner", PACKAGE) == PACKAGE]


def components(kind: str, include_plugins: bool = False) -> list[Any]:
    """The components of ``kind``: the library's own, plus the plugins' with ``include_plugins``."""
    return [c for c in REGISTRY if c.kind == kind and (include_plugins or c.owner == PACKAGE)]


def slot_injects(slot: Any) -> list[str]:
    """The constructor arguments an architecture sets in ``slot`` (``inject``, formerly ``injected``)."""
    return list(getattr(slot, "inject", None) or getattr(slot, "injected", ()))


def injected_by(kind: str, include_plugins: bool = False) -> dict[str, list[str]]:
    """Constructor argument → the architectures that set it in components of ``kind``."""
    archs = [c.factory for c in components("model", include_plugins)]
    pairs = [(arg, a.name) for a in archs for s in a.slots.values() if s.kind == kind for arg in slot_injects(s)]
    return {arg: list(dict.fromkeys(name for a, name in pairs if a == arg)) for arg, _ in pairs}


def preset_section(name: str) -> str:
    """One preset: its description, the partial spec and, folded, the resolved spec."""
    partial = spec.get_preset(name)
    resolved = textwrap.indent(f"```yaml\n{yaml.safe_dump(spec.resolve_spec(partial), sort_keys=False)}```", "    ")
    return blocks(
        f"### `{name}` {{ #preset-{name} }}",
        spec.preset_doc(name) or "(no description)",
        f'```python\nbuild_model("{name}")\n```',
        "The preset itself (what differs from the architecture's defaults):",
        f"```yaml\n{yaml.safe_dump(partial, sort_keys=False)}```",
        f'??? example "Resolved spec of `{name}`"\n\n{resolved}',
    )


def slot_row(name: str, slot: Any) -> tuple[str, ...]:
    """A slot's row in its architecture's table (a ``same_as`` slot defaults to another slot's choice)."""
    default = f"[`{slot.default}`](#{slot.kind}-{slot.default})" if slot.default else f"same as `{slot.same_as}`"
    injects = ", ".join(f"`{arg}`" for arg in slot_injects(slot)) or "-"
    return (f"`{name}`", f"[{slot.kind}](#kind-{slot.kind})", default, injects, cell(slot.doc))


def architecture_section(arch: Any) -> str:
    """One architecture: its global parameters and its slots."""
    params = [(f"`{name}`", value(p.default), cell(p.doc)) for name, p in arch.params.items()]
    slots = [slot_row(name, slot) for name, slot in arch.slots.items()]
    return blocks(
        f"### `{arch.name}` {{ #architecture-{arch.name} }}",
        arch.doc,
        "Global parameters (`params:` in a spec, or `build_model(..., name=value)`):",
        table(["parameter", "default", "description"], params),
        "Slots (`components:` in a spec, or `build_model(..., slot=name)`):",
        table(["slot", "kind", "default", "arguments the model sets", "description"], slots),
    )


def component_section(component: Any, injected: Mapping[str, list[str]]) -> str:
    """One component: its summary, where it is defined, its parameters with defaults and meaning."""
    factory, described, rows = component.factory, documented(component.factory), []
    for param, default in component.defaults.items():
        note = f"*set by the model ({', '.join(injected[param])}); not settable in a spec*" if param in injected else ""
        rows.append((f"`{param}`", value(default), cell(f"{described.get(param, '')} {note}")))
    where = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"
    kwargs = "Accepts further keyword arguments (`**kwargs`): unknown names are not rejected up front."
    return blocks(
        f"#### `{component.name}` {{ #{component.kind}-{component.name} }}",
        summary(inspect.getdoc(factory)),
        f"Defined by `{where}` (registered by `{component.owner}`).",
        table(["parameter", "default", "description"], rows) if rows else "No parameters.",
        kwargs if component.accepts_var_kwargs else None,
    )


def kind_section(kind: str, include_plugins: bool = False) -> str:
    """One kind: its contract, then each of its components."""
    contract, injected = REGISTRY.get_kind(kind).contract_class(), injected_by(kind, include_plugins)
    return blocks(
        f"### Kind `{kind}` {{ #kind-{kind} }}",
        f"Contract: {summary(contract.__doc__).splitlines()[0]}" if contract and contract.__doc__ else None,
        *(component_section(c, injected) for c in components(kind, include_plugins)),
    )


def spec_reference(*, include_plugins: bool = False) -> str:
    """The spec reference page: presets, architectures and components, as Markdown.

    Args:
        include_plugins: list what installed plugins registered too (by default only the
            library's own, so the page does not depend on the build machine).
    """
    models = spec.list_models()
    presets = [(f"[`{n}`](#preset-{n})", f"`{spec.get_preset(n)['model']}`", cell(spec.preset_doc(n))) for n in models]
    return blocks(
        "# Spec reference",
        '!!! info "Generated from the code"\n    This page is generated from the component registry and the presets '
        "each time the documentation is built, so it always matches the code. For your own installation, plugins "
        "included, run `refsr-blocks list` and `refsr-blocks spec MODEL`.",
        "See [Specs](../specs.md) for how a spec is written and validated.",
        "## Presets",
        "A preset is a named partial spec; `build_model(name, **overrides)` resolves it. Each resolved spec below "
        "is what `model.spec` holds for a model built from the preset.",
        table(["preset", "architecture", "description"], presets),
        *map(preset_section, models),
        "## Architectures",
        *(architecture_section(c.factory) for c in components("model", include_plugins)),
        "## Components",
        "Parameters marked *set by the model* are filled in by the architecture from its global parameters; "
        "every other parameter goes under `components.<slot>.params` in a spec.",
        *(kind_section(k, include_plugins) for k in kinds(include_plugins) if k != "model"),
    )


# -- pictures ---------------------------------------------------------------------------------
def picture_checkpoint(checkpoint: str | Path | None = None) -> Path | None:
    """The weights for the model pictures: ``checkpoint``, else the shipped weights when installed."""
    from refsr_blocks.assets import pretrained_path

    return Path(checkpoint) if checkpoint else (pretrained_path() if pretrained_path().is_file() else None)


def picture_model(checkpoint: Path | None, seed: int = 0) -> tuple[Any, str]:
    """The model to draw (from ``checkpoint``, else a seeded random ``crossnet_lite``) and its weights in words."""
    import torch

    from refsr_blocks.core.checkpoint import load_model

    if checkpoint is not None:
        return load_model(checkpoint), f"the weights in `{checkpoint.name}`"
    torch.manual_seed(seed)
    random = "a `crossnet_lite` with **random weights**, because no trained weights were installed"
    return build_model("crossnet_lite"), f"{random}: the pictures show the layout, not a result"


def write_pictures(
    out_dir: str | Path, checkpoint: str | Path | None = None, *, size: tuple[int, int] = (96, 128), seed: int = 0
) -> tuple[dict[str, Path], str]:
    """Draw the documentation's pictures into ``out_dir``; return name → PNG file, and the weights in words.

    ``flow-convention`` shows the flow convention on a synthetic pair (no model); ``model-*``
    are :func:`refsr_blocks.tools.viz.render_intermediates` of :func:`picture_model` on a synthetic
    pair of HR size ``size`` (multiples of the scale).
    """
    from refsr_blocks.tools.viz import flow_convention_panel, render_intermediates, save_png, synthetic_pair

    pair = synthetic_pair(4, size, seed)
    paths = {"flow-convention": Path(out_dir) / "flow-convention.png"}
    save_png(flow_convention_panel(pair["hr"], pair["ref"], pair["flow"]), paths["flow-convention"])
    model, weights = picture_model(picture_checkpoint(checkpoint), seed)
    scale = int(model.spec["params"]["upscale"])
    pair = pair if scale == 4 else synthetic_pair(scale, size, seed)
    drawn = render_intermediates(model, pair["lr"], pair["ref"], out_dir, hr=pair["hr"], prefix="model-")
    return {**paths, **{f"model-{name}": path for name, path in drawn.items()}}, weights


# -- command line -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python docs/hooks/refsr_docgen.py {spec-reference,api-modules,pictures}``."""
    parser = argparse.ArgumentParser(prog="python docs/hooks/refsr_docgen.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    spec_cmd = sub.add_parser("spec-reference", help="print the spec reference (Markdown)")
    spec_cmd.add_argument("--include-plugins", action="store_true", help="list plugin components too")
    sub.add_parser("api-modules", help="print the public modules, one per line")
    pictures = sub.add_parser("pictures", help="write the documentation pictures (PNG)")
    pictures.add_argument("out_dir", type=Path)
    pictures.add_argument("--checkpoint", type=Path, default=None, help="weights for the model pictures")
    args = parser.parse_args(argv)
    if args.command == "spec-reference":
        print(spec_reference(include_plugins=args.include_plugins), end="")
    elif args.command == "api-modules":
        print("\n".join(public_modules()))
    else:
        paths, weights = write_pictures(args.out_dir, args.checkpoint)
        print(json.dumps({name: str(path) for name, path in paths.items()}, indent=2))
        print(f"model pictures drawn with {weights}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
