"""Export: ONNX (opset 17, through the library's warp) against onnxruntime, torch.export, declared support."""

from __future__ import annotations

import pytest
import torch

from refsr_blocks import build_model
from refsr_blocks.core.registry import REGISTRY, list_kinds
from refsr_blocks.core.support import Support, component_support, size_multiple_of, support_table
from refsr_blocks.inference.export import ExportError, check_onnx, export_onnx, export_program
from refsr_blocks.inference.runtime import optimize_for_inference

onnxruntime = pytest.importorskip("onnxruntime", reason="the dev extra installs onnx and onnxruntime")
pytest.importorskip("onnx")

TOLERANCE = 1e-4


def _inputs(h: int, w: int, scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, h, w, generator=g), torch.rand(1, 3, h * scale, w * scale, generator=g)


def _roundtrip(preset: str, tmp_path, h: int, w: int) -> None:
    torch.manual_seed(0)
    model = build_model(preset).eval()
    lr, ref = _inputs(h, w)
    # a model prepared for CPU inference (fast layers, channels_last) exports as well
    optimize_for_inference(model)
    path = export_onnx(model, tmp_path / f"{preset}.onnx", lr, ref)
    import onnx

    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == 17
    assert check_onnx(path, model, lr, ref) < TOLERANCE
    program = export_program(model, lr, ref)
    with torch.no_grad():
        expected = model(lr, ref)
    torch.testing.assert_close(program.module()(lr, ref), expected, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.slow  # about 3-7 s on 2 cores; slow tests still run in CI
def test_lite_preset_exports_to_onnx_and_torch_export(tmp_path) -> None:
    _roundtrip("crossnet_lite", tmp_path, 12, 20)  # 48×80 output: not a multiple of 64 (padding traced)


@pytest.mark.slow
def test_default_preset_exports_to_onnx_and_torch_export(tmp_path) -> None:
    _roundtrip("crossnet", tmp_path, 16, 16)


def test_export_errors_are_library_errors(tmp_path) -> None:
    class Unexportable(torch.nn.Module):
        def forward(self, lr, ref):
            return torch.fft.rfft2(ref).real  # no ONNX opset 17 symbolic

    with pytest.raises(ExportError, match="ONNX export \\(opset 17\\) failed"):
        export_onnx(Unexportable(), tmp_path / "x.onnx", *_inputs(4, 4))


def test_declared_support_of_the_default_presets() -> None:
    for preset in ("crossnet", "crossnet_lite"):
        model = build_model(preset)
        assert size_multiple_of(model) == 64  # FlowNetS+
        for name in ("upsampler", "aligner.flow", "decoder"):
            support = component_support(model.get_submodule(name))
            assert support is not None and support.onnx and support.torch_export, (preset, name)


def test_every_built_in_model_part_declares_its_support() -> None:
    """A component the library registers in a model-part kind says what it supports (plugins may not)."""
    missing = [
        f"{kind}/{name}"
        for kind in list_kinds(model_parts=True)
        for name in REGISTRY.list(kind)
        if REGISTRY.get(kind, name).owner == "refsr_blocks"
        and component_support(REGISTRY.get(kind, name).factory) is None
    ]
    assert not missing, f"built-in components without a SUPPORT = Support(...) declaration: {missing}"


def test_support_table_and_validation() -> None:
    rows = {(r["kind"], r["name"]): r["support"] for r in support_table()}
    assert rows[("flow", "flownets_plus")].size_multiple == 64
    assert rows[("warper", "bilinear")].onnx
    assert not rows[("prealign", "phase_correlation")].onnx
    with pytest.raises(ValueError, match="dtypes must be among"):
        Support(dtypes=("int8",))
    with pytest.raises(ValueError, match="size_multiple"):
        Support(size_multiple=0)
    both = Support(dtypes=("fp32", "bf16"), onnx=True, torch_export=True, size_multiple=8)
    both = both.combine(Support(dtypes=("fp32",), onnx=False, torch_export=True, size_multiple=6))
    assert both == Support(dtypes=("fp32",), onnx=False, torch_export=True, size_multiple=24)
