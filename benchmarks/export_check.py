"""ONNX (onnxruntime) and torch.export against eager PyTorch, for the default and lite presets.

    python benchmarks/export_check.py

Prints, per preset and output size, the largest |onnxruntime − PyTorch| and
|torch.export − PyTorch| on seeded random weights and inputs.
"""

from __future__ import annotations

import tempfile
import time

import torch

from refsr_blocks import build_model
from refsr_blocks.inference.export import check_onnx, export_onnx, export_program

CASES = (("crossnet_lite", (12, 20)), ("crossnet", (16, 16)), ("crossnet", (30, 40)))


def main() -> None:
    for preset, (h, w) in CASES:
        torch.manual_seed(0)
        model = build_model(preset).eval()
        generator = torch.Generator().manual_seed(0)
        lr, ref = torch.rand(1, 3, h, w, generator=generator), torch.rand(1, 3, 4 * h, 4 * w, generator=generator)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path = export_onnx(model, f"{folder}/model.onnx", lr, ref)
            seconds = time.perf_counter() - start
            onnx_diff = check_onnx(path, model, lr, ref)
        program = export_program(model, lr, ref)
        with torch.no_grad():
            export_diff = (program.module()(lr, ref) - model(lr, ref)).abs().max().item()
        print(
            f"{preset:14s} output {4 * h}x{4 * w}: onnx max|ort - torch| {onnx_diff:.1e} (export {seconds:.1f} s); "
            f"torch.export max diff {export_diff:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
