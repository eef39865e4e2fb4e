"""The documentation: its generators (``docs/hooks/``, always) and a strict mkdocs build (when mkdocs is installed)."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refsr_blocks.core.registry import REGISTRY
from refsr_blocks.core.spec import list_models

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "docs" / "hooks"
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
MARKER = re.compile(r"<!-- refsr:([\w-]+)")


def page_text(path: Path) -> str:
    """The text of an HTML page, tags removed (code is split into highlighting spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def missing_docs_tools() -> list[str]:
    return [name for name in DOCS_TOOLS if importlib.util.find_spec(name.split(".")[0]) is None]


@pytest.fixture(scope="module")
def docgen():
    """``docs/hooks/refsr_docgen.py``: the spec reference, the API pages and the pictures."""
    pytest.importorskip("griffe", reason="the docs tooling needs griffe: pip install -e '.[docs]'")
    if str(HOOKS) not in sys.path:
        sys.path.insert(0, str(HOOKS))  # where mkdocs finds it when it loads the hook
    import refsr_docgen

    return refsr_docgen


@pytest.fixture(scope="module")
def markers(docgen):
    """``docs/hooks/refsr_markers.py``: what replaces the markers in hand-written pages."""
    import refsr_markers

    return refsr_markers


# -- generators -----------------------------------------------------------------------------------
def test_docs_tooling_is_not_in_the_package():
    assert not (ROOT / "refsr_blocks" / "docs_gen.py").exists()
    for path in (ROOT / "refsr_blocks").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "docs_gen" not in text and "refsr_docgen" not in text, f"{path} refers to the docs tooling"


def test_public_modules_walks_the_package(docgen):
    modules = docgen.public_modules()
    assert next(iter(modules)) == "refsr_blocks"
    for name in ("refsr_blocks.core.spec", "refsr_blocks.tools.cli", "refsr_blocks.tools.viz", "refsr_blocks.ops.flow"):
        assert name in modules
    assert modules["refsr_blocks.tools.viz"].startswith("Pictures of what a RefSR model does")
    assert not [m for m in modules if any(part.startswith("_") for part in m.split("."))]
    on_disk = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "refsr_blocks").rglob("*.py")
        if not any(part.startswith("_") for part in p.relative_to(ROOT).parts)
    }
    assert on_disk <= set(modules), f"public modules missing from the API reference: {on_disk - set(modules)}"


def test_api_pages(docgen):
    assert docgen.api_page("refsr_blocks.tools.viz") == "# `refsr_blocks.tools.viz`\n\n::: refsr_blocks.tools.viz\n"
    index = docgen.api_index({"refsr_blocks": "The package.", "refsr_blocks.tools.viz": "Pictures | maps."})
    assert "| [`refsr_blocks.tools.viz`](refsr_blocks.tools.viz.md) | Pictures \\| maps. |" in index


def test_spec_reference_lists_every_preset_and_component(docgen):
    from griffe_sections import readable

    page = docgen.spec_reference()
    for name in list_models():
        assert f"### `{name}` {{ #preset-{name} }}" in page
    for component in REGISTRY:
        if component.owner != "refsr_blocks":
            continue
        if component.kind == "model":
            assert f"### `{component.name}` {{ #architecture-{component.name} }}" in page
            for slot in component.factory.slots:
                assert f"| `{slot}` | [" in page
            for param in component.factory.params:
                assert f"| `{param}` |" in page
        else:
            assert f"#### `{component.name}` {{ #{component.kind}-{component.name} }}" in page
            assert readable(component.doc) in page  # the first docstring line, Sphinx roles as code
            for param in component.defaults:
                assert f"| `{param}` |" in page
    for kind in REGISTRY.kinds:
        assert (f"{{ #kind-{kind} }}" in page) == (kind != "model")
    assert "| `ref_encoder` | [encoder](#kind-encoder) | same as `lr_encoder` |" in page


def test_spec_reference_follows_the_registry(fresh_registry, docgen):
    class DocTestWarper:
        """A warper registered by this test.

        Args:
            strength: how hard it warps.
        """

        def __init__(self, strength: float = 0.5) -> None:
            self.strength = strength

    fresh_registry.register("warper", "doc_test_warper", DocTestWarper)
    page = docgen.spec_reference()
    assert "#### `doc_test_warper` { #warper-doc_test_warper }" in page
    assert "| `strength` | `0.5` | how hard it warps. |" in page
    fresh_registry.register("warper", "plugin_warper", DocTestWarper, owner="some-plugin")
    assert "plugin_warper" not in docgen.spec_reference()
    assert "plugin_warper" in docgen.spec_reference(include_plugins=True)


def test_parameter_descriptions_come_from_the_docstrings(fresh_registry, docgen):
    class DocTestWarper:
        """Warps with :func:`~refsr_blocks.ops.warp.backward_warp`,
        and a second line.

        Second paragraph, not in the summary.

        Args:
            strength, softness: how hard
                it warps.
            mode (str): ``"a"`` or ``"b"`` | pipe.

        Example:
            >>> 1
            1
        """

        def __init__(self, strength: float = 0.5, softness: float = 0.1, mode: str = "a", undocumented: int = 1):
            pass

    fresh_registry.register("warper", "doc_test_warper", DocTestWarper)
    page = docgen.spec_reference()
    section = page[page.index("#### `doc_test_warper`") :]
    section = section[: section.index("\n#### ", 1) if "\n#### " in section[1:] else len(section)]
    assert "Warps with `backward_warp`,\nand a second line." in section
    assert "Second paragraph" not in section and ":func:" not in section
    assert "| `strength` | `0.5` | how hard it warps. |" in section
    assert "| `softness` | `0.1` | how hard it warps. |" in section
    assert '| `mode` | `\'a\'` | ``"a"`` or ``"b"`` \\| pipe. |' in section
    assert "| `undocumented` | `1` |  |" in section


def test_injected_parameters_are_marked(docgen):
    page = docgen.spec_reference()
    section = page[page.index("#### `flownets_plus`") :]
    scales_row = next(line for line in section.splitlines() if line.startswith("| `scales` |"))
    assert "set by the model (crossnet)" in scales_row
    width_row = next(line for line in section.splitlines() if line.startswith("| `width` |"))
    assert "set by the model" not in width_row


def test_docgen_command_line(docgen, capsys):
    assert docgen.main(["api-modules"]) == 0
    assert "refsr_blocks.tools.viz\n" in capsys.readouterr().out
    assert docgen.main(["spec-reference"]) == 0
    assert capsys.readouterr().out.startswith("# Spec reference\n")


def test_spec_error_shows_the_real_error(markers):
    text = markers.spec_error('build_model("crossnet", upscale=5)')
    assert text.startswith('```pycon\n>>> build_model("crossnet", upscale=5)\n')
    assert "SpecError: params.upscale: must be one of [2, 3, 4, 8], got 5" in text
    with pytest.raises(AssertionError, match="did not raise"):
        markers.spec_error('build_model("crossnet_lite")')


def test_every_marker_in_the_pages_is_known(markers):
    known = {*markers.MARKERS, "pictures-weights"}
    used = {name for page in (ROOT / "docs").glob("*.md") for name in MARKER.findall(page.read_text())}
    assert used and used <= known, f"unknown markers: {used - known}"


def test_contracts_table_has_every_kind(markers):
    table = markers.contracts_table()
    for kind in REGISTRY.kinds:
        assert f"| `{kind}` |" in table
    assert "FlowContract" in table and "(reference/spec.md#flow-flownets_plus)" in table


def test_config_reference_reads_the_attributes(markers):
    text = markers.config_reference()
    assert "| `seed` | `0` | seeds model initialisation, data sampling and synthetic pairs. |" in text
    assert "**`schedule`**" in text and "| `milestones` | `(0.75,)` |" in text
    reference_row = next(line for line in text.splitlines() if line.startswith("| `reference` |"))
    assert "(the network then only sees the LR input" in reference_row  # a description over several lines


def test_benchmark_table(tmp_path, markers):
    missing = markers.benchmark_table(tmp_path / "results.json")
    assert "python benchmarks/run.py" in missing
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "floors_gflops": {"fp32_cl": 40.0},
                "threads": 2,
                "results": [{"label": "crossnet 320x512", "latency_s": 1.5, "gflop": 80.0, "achieved_gflops": 53.3}],
            }
        )
    )
    table = markers.benchmark_table(tmp_path / "results.json")
    assert "| crossnet 320x512 | 1500 | - | 80 | 53 | - | - | - | - | - |" in table
    assert "2 threads" in table and "fp32_cl 40 GFLOP/s" in table


def test_cli_transcript_shows_output_and_status(markers):
    text = markers.cli_transcript(["spec", "crosnet"])
    assert text.startswith("```console\n$ refsr-blocks spec crosnet\nerror: ")
    assert "(exit status 2)" in text
    assert (
        markers.MARKERS["cli"]("list loss --pattern l1")
        == "```console\n$ refsr-blocks list loss --pattern l1\nl1  Mean absolute error.\n```\n"
    )


def test_write_pictures(tmp_path, docgen):
    paths, weights = docgen.write_pictures(tmp_path, size=(32, 48))
    expected = {"flow-convention", "model-flows", "model-warp", "model-comparison", "model-errors"}
    import torch

    model, _ = docgen.picture_model(docgen.picture_checkpoint())
    scale = int(model.spec["params"]["upscale"])
    with torch.no_grad():
        out = model.forward_intermediates(torch.rand(1, 3, 32 // scale, 48 // scale), torch.rand(1, 3, 32, 48))
    if out.get("confidence"):  # an aligner that says where it trusts the reference gets its picture
        expected.add("model-confidence")
    assert set(paths) == expected
    assert all(p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths.values())
    from refsr_blocks.assets import pretrained_path

    # The shipped weights when the package carries them, else a seeded random model.
    shipped = pretrained_path()
    assert (shipped.name if shipped.is_file() else "random weights") in weights


# -- the site -------------------------------------------------------------------------------------
def test_mkdocs_build_strict(tmp_path, docgen):
    missing = missing_docs_tools()
    if missing:
        pytest.skip(f"the documentation tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"mkdocs build --strict failed after {seconds:.0f} s:\n{proc.stdout}\n{proc.stderr}"
    # generated pages and pictures
    spec_page = (site / "reference" / "spec" / "index.html").read_text()
    assert "flownets_plus" in spec_page and "crossnet_lite" in spec_page
    for module in docgen.public_modules():
        assert (site / "reference" / "api" / module / "index.html").is_file(), module
    for picture in ("flow-convention", "model-flows", "model-warp", "model-comparison", "model-errors"):
        assert (site / "assets" / "generated" / f"{picture}.png").is_file()
    # markers were all replaced, transcripts and examples were included
    for page in site.rglob("*.html"):
        assert "refsr:" not in page.read_text(), f"unreplaced marker in {page}"
    cli_page = page_text(site / "cli" / "index.html")
    assert "$ refsr-blocks list\nupsampler:" in cli_page and "| total | crossnet |" in cli_page
    assert '@register_component("warper", "constant_border")' in page_text(site / "examples" / "index.html")
    specs_page = page_text(site / "specs" / "index.html")
    assert "SpecError: components.flow.params.widht" in specs_page  # the command line's error
    assert "SpecError: params.upscale: must be one of" in specs_page  # a spec-error marker's
