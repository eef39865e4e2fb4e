"""The documentation: generators (always) and a strict mkdocs build (when mkdocs is installed)."""

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

from refsr_blocks import docs_gen
from refsr_blocks.registry import KINDS, REGISTRY
from refsr_blocks.spec import list_models

ROOT = Path(__file__).resolve().parents[1]
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def page_text(path: Path) -> str:
    """The text of an HTML page, tags removed (code is split into highlighting spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def missing_docs_tools() -> list[str]:
    return [name for name in DOCS_TOOLS if importlib.util.find_spec(name.split(".")[0]) is None]


# -- generators -----------------------------------------------------------------------------------
def test_public_modules_walks_the_package():
    modules = docs_gen.public_modules()
    assert modules[0] == "refsr_blocks"
    for name in ("refsr_blocks.spec", "refsr_blocks.cli", "refsr_blocks.viz", "refsr_blocks.ops.flow"):
        assert name in modules
    assert not [m for m in modules if any(part.startswith("_") for part in m.split("."))]
    on_disk = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "refsr_blocks").rglob("*.py")
        if not any(part.startswith("_") for part in p.relative_to(ROOT).parts)
    }
    assert on_disk <= set(modules), f"public modules missing from the API reference: {on_disk - set(modules)}"


def test_api_pages():
    assert docs_gen.api_page("refsr_blocks.viz") == "# `refsr_blocks.viz`\n\n::: refsr_blocks.viz\n"
    index = docs_gen.api_index(["refsr_blocks", "refsr_blocks.viz"])
    assert "[`refsr_blocks.viz`](refsr_blocks.viz.md)" in index
    assert docs_gen.module_summary("refsr_blocks.viz").startswith("Pictures of what a RefSR model does")


def test_spec_reference_lists_every_preset_and_component():
    page = docs_gen.spec_reference()
    for name in list_models():
        assert f"### `{name}` {{ #preset-{name} }}" in page
    for component in REGISTRY:
        if component.owner != "refsr_blocks":
            continue
        if component.kind == "model":
            assert f"### `{component.name}` {{ #architecture-{component.name} }}" in page
        else:
            assert f"#### `{component.name}` {{ #{component.kind}-{component.name} }}" in page
            for param in component.defaults:
                assert f"| `{param}` |" in page
    for kind in KINDS[:-1]:
        assert f"{{ #kind-{kind} }}" in page


def test_spec_reference_follows_the_registry(fresh_registry):
    class DocTestWarper:
        """A warper registered by this test.

        Args:
            strength: how hard it warps.
        """

        def __init__(self, strength: float = 0.5) -> None:
            self.strength = strength

    fresh_registry.register("warper", "doc_test_warper", DocTestWarper)
    page = docs_gen.spec_reference()
    assert "#### `doc_test_warper` { #warper-doc_test_warper }" in page
    assert "| `strength` | `0.5` | how hard it warps. |" in page
    fresh_registry.register("warper", "plugin_warper", DocTestWarper, owner="some-plugin")
    assert "plugin_warper" not in docs_gen.spec_reference()
    assert "plugin_warper" in docs_gen.spec_reference(include_plugins=True)


def test_injected_parameters_are_marked():
    page = docs_gen.spec_reference()
    section = page[page.index("#### `flownets_plus`") :]
    scales_row = next(line for line in section.splitlines() if line.startswith("| `scales` |"))
    assert "set by the model (crossnet)" in scales_row


def test_docstring_args_parses_google_sections():
    from refsr_blocks.upsamplers.mdsr import MDSR

    args = docstring_args = docs_gen.docstring_args(MDSR)
    assert set(args) == {"scale", "in_channels", "extra_scales", "num_blocks", "channels"}
    assert docstring_args["num_blocks"].startswith("residual blocks")


def test_spec_error_examples_are_real_errors():
    text = docs_gen.spec_error_examples(['build_model("crossnet", upscale=5)'])
    assert "SpecError: params.upscale: must be one of [2, 3, 4, 8], got 5" in text
    with pytest.raises(AssertionError, match="did not raise"):
        docs_gen.spec_error_examples(['build_model("crossnet_lite")'])


def test_contracts_table_has_every_kind():
    table = docs_gen.contracts_table()
    for kind in KINDS:
        assert f"| `{kind}` |" in table
    assert "FlowContract" in table and "(reference/spec.md#flow-flownets_plus)" in table


def test_benchmark_table(tmp_path):
    missing = docs_gen.benchmark_table(tmp_path / "results.json")
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
    table = docs_gen.benchmark_table(tmp_path / "results.json")
    assert "| crossnet 320x512 | 1500 | - | 80 | 53 | - | - | - | - | - |" in table
    assert "2 threads" in table and "fp32_cl 40 GFLOP/s" in table


def test_cli_transcript_shows_output_and_status():
    text = docs_gen.cli_transcript(["spec", "crosnet"])
    assert text.startswith("```console\n$ refsr-blocks spec crosnet\nerror: ")
    assert "(exit status 2)" in text


def test_write_pictures(tmp_path):
    pictures = docs_gen.write_pictures(tmp_path, size=(32, 48))
    expected = {"flow-convention", "model-flows", "model-warp", "model-comparison", "model-errors"}
    assert set(pictures.paths) == expected
    assert all(p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures.paths.values())
    from refsr_blocks.cli import shipped_weights

    # The shipped weights when the package carries them, else a seeded random model.
    shipped = shipped_weights()
    assert (shipped.name if shipped.is_file() else "random weights") in pictures.weights


# -- the site -------------------------------------------------------------------------------------
def test_mkdocs_build_strict(tmp_path):
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
    for module in docs_gen.public_modules():
        assert (site / "reference" / "api" / module / "index.html").is_file(), module
    for picture in ("flow-convention", "model-flows", "model-warp", "model-comparison", "model-errors"):
        assert (site / "assets" / "generated" / f"{picture}.png").is_file()
    # markers were all replaced, transcripts and examples were included
    for page in site.rglob("*.html"):
        assert "refsr:" not in page.read_text(), f"unreplaced marker in {page}"
    cli_page = page_text(site / "cli" / "index.html")
    assert "$ refsr-blocks list\nupsampler:" in cli_page and "| total | crossnet |" in cli_page
    assert '@register_component("warper", "constant_border")' in page_text(site / "examples" / "index.html")
    assert "SpecError: components.flow.params.widht" in page_text(site / "specs" / "index.html")


# -- pictures (refsr_blocks.viz) ----------------------------------------------------------------
def test_layout_helpers_sizes():
    import torch

    from refsr_blocks.viz import grid, hstack, labelled, vstack

    a, b = torch.rand(3, 10, 20), torch.rand(1, 14, 6)  # grey images are expanded to RGB
    assert hstack([a, b], gap=2).shape == (3, 14, 28)
    assert vstack([a, b], gap=2).shape == (3, 26, 20)
    assert grid([a, b, a], columns=2, gap=2).shape == (3, 14 + 2 + 10, 28)
    strip = labelled(a, "x", font_size=10)
    assert strip.shape == (3, 10 + 18, 20)
    assert torch.equal(strip[:, 18:], a)  # the image itself is untouched below the label
    with pytest.raises(ValueError, match="batch"):
        hstack([torch.rand(2, 3, 4, 4)])


def test_colorize_scale():
    import torch

    from refsr_blocks.viz import HEAT_ANCHORS, colorize

    values = torch.tensor([[0.0, 0.5, 1.0, 2.0]])
    rgb = colorize(values, vmax=1.0)
    assert rgb.shape == (3, 1, 4)
    assert torch.allclose(rgb[:, 0, 0] * 255, torch.tensor(HEAT_ANCHORS[0], dtype=torch.float32))
    assert torch.allclose(rgb[:, 0, 2] * 255, torch.tensor(HEAT_ANCHORS[-1], dtype=torch.float32))
    assert torch.equal(rgb[:, 0, 2], rgb[:, 0, 3])  # saturates above vmax
    brightness = rgb.sum(0)[0]
    assert brightness[0] < brightness[1] < brightness[2]


def test_psnr_matches_the_evaluation_metric():
    import torch

    from refsr_blocks.evaluation.metrics import psnr as batch_psnr
    from refsr_blocks.viz import psnr

    a, b = torch.rand(3, 16, 16), torch.rand(3, 16, 16)
    assert psnr(a, b) == pytest.approx(float(batch_psnr(a[None], b[None])[0]))
    assert psnr(a, b, shave=2) == pytest.approx(float(batch_psnr(a[None], b[None], border=2)[0]))
    assert psnr(a, a) == float("inf")


def test_flow_wheel_follows_the_convention():
    import torch

    from refsr_blocks.ops import flow_to_color
    from refsr_blocks.viz import flow_wheel

    wheel = flow_wheel(33)
    assert torch.allclose(wheel[:, 16, 16], torch.ones(3), atol=0.02)  # zero flow is white
    assert torch.equal(wheel[:, 0, 0], torch.ones(3))  # outside the disc
    right = flow_to_color(torch.tensor([[[1.0]], [[0.0]]])).float()[:, 0, 0] / 255  # a +x flow
    assert torch.allclose(wheel[:, 16, 32], right, atol=0.05)  # the rim: full length, +x


def test_warp_panel_layout_and_checks():
    import torch

    from refsr_blocks.viz import MIN_PANEL_WIDTH, display_factor, synthetic_pair, warp_panel

    pair = synthetic_pair(scale=4, size=(32, 48))
    panel = warp_panel(pair["hr"], pair["ref"], pair["flow"])
    factor = display_factor(48)
    assert 48 * factor >= MIN_PANEL_WIDTH
    assert panel.shape[-1] == 3 * 48 * factor + 2 * 6  # three columns
    assert panel.shape[-2] > 2 * 32 * factor  # two labelled rows
    with pytest.raises(ValueError, match="grid"):
        warp_panel(pair["hr"], pair["ref"], torch.zeros(2, 16, 24))


def test_flow_levels_panel_one_tile_per_level():
    import torch

    from refsr_blocks.viz import display_factor, flow_levels_panel

    flows = [torch.randn(1, 2, 20 // 2**k + 1, 30 // 2**k + 1) for k in range(3)]
    panel = flow_levels_panel(flows)
    width = flows[0].shape[-1] * display_factor(flows[0].shape[-1])
    assert panel.shape[-1] == 3 * width + 2 * 6
    with pytest.raises(ValueError, match="2×H×W"):
        flow_levels_panel([torch.randn(3, 4, 4)])


def test_render_intermediates_needs_a_crossnet_output(tmp_path):
    import torch

    from refsr_blocks.viz import render_intermediates

    class Plain(torch.nn.Module):
        def forward(self, lr, ref):
            return ref

    with pytest.raises(ValueError, match="return_intermediates"):
        render_intermediates(Plain(), torch.rand(3, 4, 4), torch.rand(3, 16, 16), tmp_path)
    with pytest.raises(ValueError, match="one"):
        render_intermediates(Plain(), torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16), tmp_path)
