"""The Markdown that replaces the ``<!-- refsr:NAME ARGS -->`` markers in hand-written pages.

The mkdocs hook ``refsr_docs.py`` replaces each marker by ``MARKERS[NAME](ARGS)``: a command
transcript, a spec mistake with its real error, the table of kinds and contracts, the
training-configuration reference or the benchmark table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shlex
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from refsr_docgen import ROOT, blocks, cell, components, documented, kinds, summary, table, value

from refsr_blocks import build_model
from refsr_blocks.core.errors import RefSRError
from refsr_blocks.core.registry import REGISTRY

BENCHMARK_COLUMNS = (  # header, key in benchmarks/results.json, format, scale
    ("latency (ms)", "latency_s", ".0f", 1000),
    ("best (ms)", "min_s", ".0f", 1000),
    ("GFLOP", "gflop", ".0f", 1),
    ("GFLOP/s", "achieved_gflops", ".0f", 1),
    ("floor GFLOP/s", "floor_gflops", ".0f", 1),
    ("× floor", "x_floor", ".2f", 1),
    ("× floor (best)", "x_floor_best", ".2f", 1),
    ("upsampler (ms)", "upsampler_ms", ".0f", 1),
    ("peak MB", "peak_mb", ".0f", 1),
)


def contracts_table(spec_page: str = "reference/spec.md") -> str:
    """Each kind with its call contract, its conformance class and its built-in components."""
    rows = []
    for kind in kinds():
        contract, anchor = REGISTRY.get_kind(kind).contract_class(), "architecture" if kind == "model" else kind
        call = summary(contract.__doc__).splitlines()[0] if contract and contract.__doc__ else ""
        listed = ", ".join(f"[`{c.name}`]({spec_page}#{anchor}-{c.name})" for c in components(kind))
        rows.append((f"`{kind}`", cell(call), f"`{contract.__name__}`" if contract else "-", listed))
    return table(["kind", "contract", "conformance class", "registered (built in)"], rows) + "\n"


def benchmark_figure(result: Mapping[str, Any], column: tuple[str, str, str, float]) -> str:
    """One figure of a benchmark result, scaled and formatted as ``column`` says (``-`` if missing)."""
    _, key, fmt, scale = column
    number = result.get(key)
    return format(number * scale, fmt) if isinstance(number, (int, float)) else "-"


def benchmark_table(path: str | Path = ROOT / "benchmarks" / "results.json") -> str:
    """The table of a ``benchmarks/run.py`` results file, or a note when there is none."""
    path = Path(path)
    if not path.is_file():
        return (
            f'!!! note "No results recorded yet"\n    `{path.name}` is not in this checkout. Run '
            "`python benchmarks/run.py`; the next documentation build shows its table here.\n"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    threads = f" ({data['threads']} threads)" if "threads" in data else ""
    floors = ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in data.get("floors_gflops", {}).items())
    rows = [
        (cell(r.get("label", "?")), *(benchmark_figure(r, c) for c in BENCHMARK_COLUMNS))
        for r in data.get("results", [])
    ]
    return blocks(
        f"Figures from `{path.parent.name}/{path.name}`, written by `python benchmarks/run.py`{threads}.",
        f"Convolution floor at the start of the run (best 3×3 convolution, see below): {floors}." if floors else None,
        table(["case", *(f" {h}" for h, *_ in BENCHMARK_COLUMNS)], rows or [("(no cases in the file)",)]),
    )


def spec_error(source: str) -> str:
    """``source`` (a call of ``build_model`` with a mistake) run, shown with the error it raises.

    Raises:
        AssertionError: it raised no ``RefSRError``, so the page would make a false claim.
    """
    try:
        eval(source, {"build_model": build_model})  # source is written in the documentation's pages
    except RefSRError as err:
        message = textwrap.wrap(f"{type(err).__name__}: {err}", 100, subsequent_indent="    ", break_on_hyphens=False)
        return "```pycon\n>>> {}\n{}\n```\n".format(source, "\n".join(message))
    raise AssertionError(f"{source} did not raise a RefSRError")


def cli_transcript(args: Sequence[str], cwd: str | Path = ROOT) -> str:
    """``refsr-blocks ARGS`` run in-process from ``cwd``, as a console block with its output."""
    from refsr_blocks.tools.cli import main

    out, previous = io.StringIO(), os.getcwd()
    try:  # COLUMNS: argparse wraps its help to the terminal width
        os.chdir(cwd)
        with (
            mock.patch.dict(os.environ, COLUMNS="100"),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            status = main(list(args))
    finally:
        os.chdir(previous)
    exit_line = f"\n(exit status {status})" if status else ""
    return f"```console\n$ refsr-blocks {shlex.join(args)}\n{out.getvalue().rstrip()}{exit_line}\n```\n"


def config_table(cls: type, only: Sequence[str] | None = None, meaning: Mapping[str, str] | None = None) -> str:
    """The fields of a configuration dataclass: key, default and meaning (from its ``Attributes:``)."""
    meaning = {**documented(cls, "attributes"), **(meaning or {})}
    fields = [f for f in dataclasses.fields(cls) if only is None or f.name in only]
    defaults = [f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default for f in fields]
    return table(
        ["key", "default", "meaning"],
        [(f"`{f.name}`", value(d), cell(meaning.get(f.name, ""))) for f, d in zip(fields, defaults)],
    )


def config_reference() -> str:
    """One table per section of the training configuration (:mod:`refsr_blocks.train.config`)."""
    from refsr_blocks.train import config as cfg

    model = "a preset name, `{preset: NAME, overrides: {...}}`, `{spec: SPEC_OR_FILE, overrides: {...}}` or a spec "
    model += "dict; resolved and validated like `build_model`'s argument"  # the file holds the unresolved forms
    sections = {"data": cfg.DataConfig, "schedule": cfg.ScheduleConfig, "runtime": cfg.RuntimeConfig}
    return blocks(
        "**Top level**",
        config_table(cfg.TrainConfig, ("seed", "reference", "model"), {"model": model}),
        *(f"**`{name}`**\n\n{config_table(cls)}" for name, cls in sections.items()),
    )


def support_table() -> str:
    """Each registered model part with what it declares it supports (``SUPPORT``, refsr_blocks.core.support)."""
    from refsr_blocks.core.support import support_table as rows_of

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    rows = []
    for row in rows_of():
        support = row["support"]
        if support is None:
            rows.append((f"`{row['kind']}`", f"`{row['name']}`", "-", "-", "-", "-", "not declared"))
            continue
        rows.append(
            (
                f"`{row['kind']}`",
                f"`{row['name']}`",
                ", ".join(support.dtypes),
                yes(support.onnx),
                yes(support.torch_export),
                str(support.size_multiple),
                cell(support.notes),
            )
        )
    header = ["kind", "name", "dtypes", "ONNX (opset 17)", "torch.export", "size multiple", "notes"]
    return table(header, rows) + "\n"


#: Marker name → its Markdown, given the text after the name (``<!-- refsr:cli list -->``).
MARKERS: dict[str, Callable[[str], str]] = {
    "cli": lambda args: cli_transcript(shlex.split(args)),
    "spec-error": spec_error,
    "contracts-table": lambda _: contracts_table(),
    "config-reference": lambda _: config_reference(),
    "benchmark-table": lambda _: benchmark_table(),
    "support-table": lambda _: support_table(),
}
