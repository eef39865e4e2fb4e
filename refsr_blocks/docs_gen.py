"""Generators for the documentation site: the spec reference, the API pages, the pictures.

The documentation's mkdocs hook (``docs/hooks/refsr_docs.py``) calls these at build time, so
the generated pages cannot drift from the code:

- :func:`spec_reference` renders every preset, every architecture (global parameters and
  slots) and every registered component (its parameters, their defaults and meaning, and
  the contract of its kind) from :data:`~refsr_blocks.registry.REGISTRY` and the presets of
  :mod:`refsr_blocks.spec`;
- :func:`public_modules` walks the package on disk (``pkgutil``, nothing imported) and
  :func:`api_page` emits one mkdocstrings page per public module;
- :func:`write_pictures` draws the pictures: the flow convention (no model involved) and a
  model's intermediates, from a checkpoint when one is given or installed, otherwise from a
  randomly initialised ``crossnet_lite``.

It also runs as a script::

    python -m refsr_blocks.docs_gen spec-reference          # the Markdown, to stdout
    python -m refsr_blocks.docs_gen pictures docs/assets    # the PNGs [--checkpoint CKPT]

Example:
    >>> from refsr_blocks.docs_gen import public_modules, spec_reference
    >>> "refsr_blocks.spec" in public_modules() and "refsr_blocks.data._checks" not in public_modules()
    True
    >>> "#### `flownets_plus` { #flow-flownets_plus }" in spec_reference()
    True
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import pkgutil
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .registry import KINDS, REGISTRY, Component, Registry

__all__ = [
    "Pictures",
    "api_index",
    "api_page",
    "benchmark_table",
    "cli_transcript",
    "config_reference",
    "contracts_table",
    "docstring_args",
    "main",
    "module_summary",
    "public_modules",
    "spec_error_examples",
    "spec_reference",
    "write_pictures",
]

PACKAGE = "refsr_blocks"
PACKAGE_DIR = Path(__file__).resolve().parent


# -- API reference --------------------------------------------------------------------------
def public_modules(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> list[str]:
    """Dotted names of the public modules of ``package``, the package itself first.

    A module is public when no part of its dotted name starts with ``_`` (so ``__main__``
    and ``_checks`` are skipped, and so is everything inside a private subpackage). The
    package is walked on disk with :func:`pkgutil.iter_modules`; nothing is imported.
    """
    found = [package]
    for info in sorted(pkgutil.iter_modules([str(package_dir)]), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        dotted = f"{package}.{info.name}"
        if info.ispkg:
            found += public_modules(package_dir / info.name, dotted)
        else:
            found.append(dotted)
    return found


def _module_file(module: str, package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> Path:
    parts = module.split(".")[1:] if module.startswith(package) else module.split(".")
    path = package_dir.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def module_summary(module: str, package_dir: Path = PACKAGE_DIR) -> str:
    """First line of a module's docstring, read with :mod:`ast` (the module is not imported)."""
    path = _module_file(module, package_dir)
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def api_page(module: str) -> str:
    """The Markdown page documenting ``module`` with mkdocstrings."""
    return f"# `{module}`\n\n::: {module}\n"


def api_index(modules: Sequence[str], page_path: str = "{module}.md") -> str:
    """The API overview page: every module with the first line of its docstring."""
    lines = [
        "# API reference",
        "",
        "One page per public module of `refsr_blocks`, generated from the docstrings when the",
        "site is built (modules whose name starts with `_` are private and not listed).",
        "",
        "| module | summary |",
        "| --- | --- |",
    ]
    for module in modules:
        link = page_path.format(module=module)
        lines.append(f"| [`{module}`]({link}) | {_cell(module_summary(module))} |")
    return "\n".join(lines) + "\n"


# -- spec reference -------------------------------------------------------------------------
_ARG_LINE = re.compile(r"^(\s*)([A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*)\s*(?:\([^)]*\))?:\s*(.*)$")
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")


def docstring_args(obj: Any, sections: tuple[str, ...] = ("Args", "Arguments", "Parameters")) -> dict[str, str]:
    """Descriptions from the ``Args:`` section (or another of ``sections``) of a Google-style docstring.

    ``a, b: text`` documents both; continuation lines are joined.

    Example:
        >>> def f(x, y, z):
        ...     '''Do it.
        ...
        ...     Args:
        ...         x: the first
        ...             one.
        ...         y, z: the others.
        ...     '''
        >>> docstring_args(f)
        {'x': 'the first one.', 'y': 'the others.', 'z': 'the others.'}
    """
    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    in_args = False
    names: list[str] = []
    base_indent = None
    for line in doc.splitlines():
        header = line.strip()
        if header.endswith(":") and header[:-1] in sections:
            in_args, names, base_indent = True, [], None
            continue
        if not in_args:
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0 and _SECTION.match(line):
            in_args = False
            continue
        if indent == 0:  # the section ended without a blank-line-separated header
            in_args = False
            continue
        match = _ARG_LINE.match(line)
        if match and (base_indent is None or len(match.group(1)) == base_indent):
            base_indent = len(match.group(1))
            names = [n.strip() for n in match.group(2).split(",")]
            for name in names:
                out[name] = match.group(3).strip()
        elif names:
            for name in names:
                out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _value(value: Any) -> str:
    """A default value as inline code (``required`` when there is none)."""
    if value is inspect.Parameter.empty:
        return "*required*"
    text = repr(value)
    return f"`{text}`" if "`" not in text else text


def _first_paragraph(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].strip()


def _architectures(registry: Registry) -> list[Any]:
    from .spec import Architecture

    return [c.factory for c in registry if c.kind == "model" and isinstance(c.factory, Architecture)]


def _injected_by(registry: Registry, kind: str) -> dict[str, list[str]]:
    """Constructor argument → architectures that inject it into components of ``kind``."""
    out: dict[str, list[str]] = {}
    for arch in _architectures(registry):
        for slot in arch.slots.values():
            if slot.kind == kind:
                for arg in slot.injected:
                    out.setdefault(arg, [])
                    if arch.name not in out[arg]:
                        out[arg].append(arch.name)
    return out


def _component_section(component: Component, injected: dict[str, list[str]]) -> list[str]:
    factory = component.factory
    where = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"
    lines = [f"### `{component.name}`", ""]
    summary = _first_paragraph(factory)
    if summary:
        lines += [summary, ""]
    lines += [f"Defined by `{where}` (registered by `{component.owner}`).", ""]
    args = docstring_args(factory)
    params = dict(component.defaults)
    if not params:
        lines += ["No parameters.", ""]
    else:
        lines += ["| parameter | default | description |", "| --- | --- | --- |"]
        for name, default in params.items():
            description = args.get(name, "")
            if name in injected:
                note = f"set by the model ({', '.join(injected[name])}); not settable in a spec"
                description = f"{description} *({note})*" if description else f"*{note}*"
            lines.append(f"| `{name}` | {_value(default)} | {_cell(description)} |")
        lines.append("")
    if component.accepts_var_kwargs:
        lines += ["Accepts further keyword arguments (`**kwargs`): unknown names are not rejected up front.", ""]
    return lines


def _preset_sections() -> list[str]:
    import yaml

    from .spec import get_preset, list_models, preset_doc, resolve_spec

    lines = [
        "## Presets",
        "",
        "A preset is a named partial spec; `build_model(name, **overrides)` resolves it. Each",
        "resolved spec below is what `model.spec` holds for a model built from the preset.",
        "",
        "| preset | architecture | description |",
        "| --- | --- | --- |",
    ]
    names = list_models()
    for name in names:
        lines.append(f"| [`{name}`](#preset-{name}) | `{get_preset(name).get('model')}` | {_cell(preset_doc(name))} |")
    lines.append("")
    for name in names:
        partial = get_preset(name)
        resolved = resolve_spec(partial)
        lines += [
            f"### `{name}` {{ #preset-{name} }}",
            "",
            preset_doc(name) or "(no description)",
            "",
            "```python",
            f'build_model("{name}")',
            "```",
            "",
            "The preset itself (what differs from the architecture's defaults):",
            "",
            "```yaml",
            yaml.safe_dump(partial, sort_keys=False).rstrip(),
            "```",
            "",
            f'??? example "Resolved spec of `{name}`"',
            "",
            "    ```yaml",
            *[f"    {line}" for line in yaml.safe_dump(resolved, sort_keys=False).rstrip().splitlines()],
            "    ```",
            "",
        ]
    return lines


def _architecture_sections(registry: Registry) -> list[str]:
    lines = ["## Architectures", ""]
    for arch in _architectures(registry):
        lines += [f"### `{arch.name}` {{ #architecture-{arch.name} }}", ""]
        if arch.doc:
            lines += [arch.doc, ""]
        lines += [
            "Global parameters (`params:` in a spec, or `build_model(..., name=value)`):",
            "",
            "| parameter | default | description |",
            "| --- | --- | --- |",
        ]
        for name, param in arch.params.items():
            lines.append(f"| `{name}` | {_value(param.default)} | {_cell(param.doc)} |")
        lines += [
            "",
            "Slots (`components:` in a spec, or `build_model(..., slot=name)`):",
            "",
            "| slot | kind | default | arguments the model sets | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, slot in arch.slots.items():
            injected = ", ".join(f"`{a}`" for a in slot.injected) or "-"
            default = f"[`{slot.default}`](#{slot.kind}-{slot.default})"
            lines.append(
                f"| `{name}` | [{slot.kind}](#kind-{slot.kind}) | {default} | {injected} | {_cell(slot.doc)} |"
            )
        lines.append("")
    return lines


def spec_reference(registry: Registry = REGISTRY, *, include_plugins: bool = False) -> str:
    """The spec reference page: presets, architectures and components, as Markdown.

    Args:
        registry: where the components come from.
        include_plugins: list components registered by installed plugins too (by default
            only the library's own, so the page does not depend on the build machine).
    """
    from .testing.contracts import CONTRACTS

    lines = [
        "# Spec reference",
        "",
        '!!! info "Generated from the code"',
        "    This page is generated from the component registry and the presets each time the",
        "    documentation is built (`refsr_blocks.docs_gen.spec_reference`), so it always matches",
        "    the code. For your own installation, plugins included, run `refsr-blocks list` and",
        "    `refsr-blocks spec MODEL`.",
        "",
        "See [Specs](../specs.md) for how a spec is written and validated.",
        "",
        *_preset_sections(),
        *_architecture_sections(registry),
        "## Components",
        "",
        "Parameters marked *set by the model* are filled in by the architecture from its global",
        "parameters; every other parameter goes under `components.<slot>.params` in a spec.",
        "",
    ]
    for kind in KINDS:
        if kind == "model":
            continue
        components = [c for c in registry if c.kind == kind and (include_plugins or c.owner == PACKAGE)]
        contract = CONTRACTS.get(kind)
        lines += [f"### Kind `{kind}` {{ #kind-{kind} }}", ""]
        if contract is not None and contract.__doc__:
            lines += [f"Contract: {contract.__doc__.strip().splitlines()[0]}", ""]
        injected = _injected_by(registry, kind)
        for component in components:
            section = _component_section(component, injected)
            section[0] = f"#### `{component.name}` {{ #{kind}-{component.name} }}"
            lines += section
    return "\n".join(lines).rstrip() + "\n"


def contracts_table(registry: Registry = REGISTRY, spec_page: str = "reference/spec.md") -> str:
    """The kinds, their call contracts (from :mod:`refsr_blocks.testing`) and their components.

    Args:
        registry: where the components come from (only the library's own are listed).
        spec_page: link to the spec reference, relative to the page the table goes in.
    """
    from .testing.contracts import CONTRACTS

    lines = [
        "| kind | contract | conformance class | registered (built in) |",
        "| --- | --- | --- | --- |",
    ]
    for kind in KINDS:
        contract = CONTRACTS.get(kind)
        call = _first_line(contract.__doc__ or "") if contract is not None else ""
        names = [c.name for c in registry if c.kind == kind and c.owner == PACKAGE]
        anchor = "architecture" if kind == "model" else kind
        listed = ", ".join(f"[`{n}`]({spec_page}#{anchor}-{n})" for n in names)
        cls = f"`{contract.__name__}`" if contract is not None else "-"
        lines.append(f"| `{kind}` | {_cell(call)} | {cls} | {listed} |")
    return "\n".join(lines) + "\n"


def benchmark_table(path: str | Path) -> str:
    """The Markdown table of a ``benchmarks/run.py`` results file (a note when it is absent)."""
    path = Path(path)
    if not path.is_file():
        return (
            '!!! note "No results recorded yet"\n'
            f"    `{path.name}` is not in this checkout. Run `python benchmarks/run.py` (it writes\n"
            "    `benchmarks/results.json`); the next documentation build shows its table here.\n"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    results = data.get("results", [])
    floors = data.get("floors_gflops", {})
    lines = [
        f"Figures from `{path.parent.name}/{path.name}`, written by `python benchmarks/run.py`"
        + (f" ({data['threads']} threads)" if "threads" in data else "")
        + ".",
        "",
    ]
    if floors:
        floor_text = ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in floors.items())
        lines += [f"Convolution floor at the start of the run (best 3×3 convolution, see below): {floor_text}.", ""]
    lines += [
        "| case | latency (ms) | best (ms) | GFLOP | GFLOP/s | floor GFLOP/s | × floor | × floor (best) "
        "| upsampler (ms) | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def number(value: Any, fmt: str, scale: float = 1.0) -> str:
        return format(value * scale, fmt) if isinstance(value, (int, float)) else "-"

    for r in results:
        lines.append(
            f"| {_cell(str(r.get('label', '?')))} | {number(r.get('latency_s'), '.0f', 1000)} | "
            f"{number(r.get('min_s'), '.0f', 1000)} | {number(r.get('gflop'), '.0f')} | "
            f"{number(r.get('achieved_gflops'), '.0f')} | {number(r.get('floor_gflops'), '.0f')} | "
            f"{number(r.get('x_floor'), '.2f')} | "
            f"{number(r.get('x_floor_best'), '.2f')} | {number(r.get('upsampler_ms'), '.0f')} | "
            f"{number(r.get('peak_mb'), '.0f')} |"
        )
    if not results:
        lines.append("| (no cases in the file) | | | | | | | | | |")
    return "\n".join(lines) + "\n"


#: Spec mistakes shown on the Specs page, each with the error it really raises.
SPEC_MISTAKES: tuple[str, ...] = (
    'build_model("crosnet")',
    'build_model("crossnet", flow="flownet")',
    'build_model("crossnet", **{"flow.widht": 0.5})',
    'build_model("crossnet", upscale=5)',
    'build_model("crossnet", chanels=32)',
    'build_model({"model": "crossnet", "components": {"flow": {"name": "flownets", "params": {"scales": 3}}}})',
    'build_model({"model": "crossnet", "components": {"decoder": {"params": {"kernel_size": "5"}}}})',
    'build_model("crossnet", residual=True)',
)


def spec_error_examples(mistakes: Sequence[str] = SPEC_MISTAKES) -> str:
    """Each spec mistake in ``mistakes`` (Python source), run, with the message it raises.

    Raises:
        AssertionError: a mistake did not raise a :class:`~refsr_blocks.errors.RefSRError`
            (the documentation would otherwise show a claim the code does not make).
    """
    from .build import build_model
    from .errors import RefSRError

    blocks = []
    for source in mistakes:
        try:
            eval(source, {"build_model": build_model})  # source is one of the literals above
        except RefSRError as err:
            message = f"{type(err).__name__}: {err}"
        else:
            raise AssertionError(f"{source} did not raise a RefSRError")
        wrapped = "\n".join(_wrap(message, 100))
        blocks.append(f"```pycon\n>>> {source}\n{wrapped}\n```\n")
    return "\n".join(blocks)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent="    ", break_on_hyphens=False) or [""]


def cli_transcript(args: Sequence[str]) -> str:
    """``refsr-blocks ARGS`` run in-process, as a console block with its output.

    Example:
        >>> print(cli_transcript(["list", "loss", "--pattern", "l1"]))
        ```console
        $ refsr-blocks list loss --pattern l1
        l1  Mean absolute error.
        ```
        <BLANKLINE>
    """
    import contextlib
    import io
    import os
    import shlex

    from .cli import main

    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width: fix it
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(list(args))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    text = out.getvalue().rstrip("\n")
    status_line = f"\n(exit status {status})" if status else ""
    return f"```console\n$ refsr-blocks {shlex.join(args)}\n{text}{status_line}\n```\n"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def config_reference() -> str:
    """Tables of every training-configuration section: key, default and meaning.

    Generated from the dataclasses of :mod:`refsr_blocks.train.config` (their fields and the
    ``Attributes:`` sections of their docstrings).
    """
    import dataclasses

    from .train import config as cfg

    top = cfg.TrainConfig
    lines = []
    sections = [
        ("top level", top, ("seed", "reference", "model")),
        ("data", cfg.DataConfig, None),
        ("schedule", cfg.ScheduleConfig, None),
        ("runtime", cfg.RuntimeConfig, None),
    ]
    for title, cls, only in sections:
        docs = docstring_args(cls, ("Attributes",))
        lines += [f"**`{title}`**" if title != "top level" else "**Top level**", ""]
        lines += ["| key | default | meaning |", "| --- | --- | --- |"]
        for f in dataclasses.fields(cls):
            if only is not None and f.name not in only:
                continue
            if f.default is not dataclasses.MISSING:
                default = _value(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = _value(f.default_factory())
            else:
                default = "*required*"
            meaning = docs.get(f.name, "")
            if cls is top and f.name == "model":  # the file holds the unresolved forms
                meaning = (
                    "a preset name, `{preset: NAME, overrides: {...}}`, `{spec: SPEC_OR_FILE, overrides: {...}}` "
                    "or a spec dict; resolved and validated like `build_model`'s argument"
                )
            lines.append(f"| `{f.name}` | {default} | {_cell(meaning)} |")
        lines.append("")
    return "\n".join(lines)


# -- pictures -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pictures:
    """What :func:`write_pictures` wrote.

    Attributes:
        paths: picture name → PNG file.
        weights: which weights drew the model pictures, in words.
    """

    paths: dict[str, Path]
    weights: str


def write_pictures(
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    *,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> Pictures:
    """Draw the documentation's pictures into ``out_dir``.

    - ``flow-convention.png``: a target, a synthetic reference view of it, the flow relating
      them and the reference warped back onto the target (no model involved);
    - ``model-flows.png``, ``model-warp.png``, ``model-comparison.png``,
      ``model-errors.png``: :func:`~refsr_blocks.viz.render_intermediates` of a model on a
      synthetic ×4 pair of HR size ``size``.

    Args:
        out_dir: destination folder (created).
        checkpoint: weights for the model pictures; by default the shipped weights when
            installed, else a ``crossnet_lite`` with random weights (seeded).
        size: HR size (H, W) of the synthetic pair; multiples of 4.
        seed: seed of the images and of the random weights.
    """
    from .checkpoint import load_model
    from .cli import shipped_weights
    from .viz import flow_convention_panel, render_intermediates, save_png, synthetic_pair

    out_dir = Path(out_dir)
    pair = synthetic_pair(4, size, seed)
    paths = {
        "flow-convention": save_png(
            flow_convention_panel(pair["hr"], pair["ref"], pair["flow"]), out_dir / "flow-convention.png"
        )
    }
    shipped = shipped_weights()
    if checkpoint is None and shipped.is_file():
        checkpoint = shipped
    if checkpoint is not None:
        model = load_model(checkpoint)
        weights = f"the weights in `{Path(checkpoint).name}`"
    else:
        from .build import build_model

        torch.manual_seed(seed)
        model = build_model("crossnet_lite")
        weights = (
            "a `crossnet_lite` with **random weights**, because no trained weights were installed: "
            "the pictures show the layout, not a result"
        )
    scale = int(model.spec["params"]["upscale"]) if getattr(model, "spec", None) else 4
    if scale != 4:
        pair = synthetic_pair(scale, size, seed)
    drawn = render_intermediates(model, pair["lr"], pair["ref"], out_dir, hr=pair["hr"], prefix="model-")
    paths.update({f"model-{name}": path for name, path in drawn.items()})
    return Pictures(paths, weights)


# -- command line ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m refsr_blocks.docs_gen {spec-reference,api-modules,pictures}``."""
    parser = argparse.ArgumentParser(prog="python -m refsr_blocks.docs_gen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("spec-reference", help="print the spec reference (Markdown)")
    ref.add_argument("--include-plugins", action="store_true", help="list plugin components too")
    sub.add_parser("api-modules", help="print the public modules, one per line")
    pics = sub.add_parser("pictures", help="write the documentation pictures (PNG)")
    pics.add_argument("out_dir", type=Path)
    pics.add_argument("--checkpoint", type=Path, default=None, help="weights for the model pictures")
    args = parser.parse_args(argv)
    if args.command == "spec-reference":
        print(spec_reference(include_plugins=args.include_plugins), end="")
    elif args.command == "api-modules":
        print("\n".join(public_modules()))
    else:
        pictures = write_pictures(args.out_dir, args.checkpoint)
        print(json.dumps({k: str(v) for k, v in pictures.paths.items()}, indent=2))
        print(f"model pictures drawn with {pictures.weights}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
