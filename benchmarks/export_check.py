"""ONNX (onnxruntime) and torch.export against eager PyTorch, for the presets and the components.

    python benchmarks/export_check.py               # the default and lite presets
    python benchmarks/export_check.py --components  # small models holding the other components

Prints, per model and output size, the largest |onnxruntime − PyTorch| and |torch.export −
PyTorch| on seeded random weights and inputs (or why an export failed). ``--components``
also prints the largest |bf16 autocast − fp32| of the whole model: these are the runs the
``SUPPORT`` declarations of the aligners, the authors' parts, the TTSR parts and the timm
encoder rest on.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from refsr_blocks import build_model
from refsr_blocks.components.models import ttsr as ttsr_module
from refsr_blocks.inference.export import check_onnx, export_onnx, export_program

PRESETS = (("crossnet_lite", (12, 20)), ("crossnet", (16, 16)), ("crossnet", (30, 40)))

#: A small TTSR (the `ttsr` architecture with narrow parts).
SMALL_TTSR = {"channels": 8, "residual": True, "extractor.channels": 4, "fusion.blocks": [1, 1, 1, 1]}
#: Small models holding the components the default presets do not.
COMPONENT_MODELS: dict[str, Callable[[], nn.Module]] = {
    "crossnet_attention (attention aligner)": lambda: build_model(
        "crossnet_attention", channels=8, upsampler="bicubic"
    ),
    "crossnet_authors (authors' encoder, flow, decoder)": lambda: build_model(
        "crossnet_authors", channels=8, **{"decoder.unused_conv": False}
    ),
    "crossnet_lite + deformable aligner": lambda: build_model(
        "crossnet_lite", aligner="deformable", **{"aligner.hidden": 8}
    ),
    "crossnet_lite + ttsr_lte encoder": lambda: build_model(
        "crossnet_lite", lr_encoder="ttsr_lte", channels=4, **{"upsampler.channels": 8}
    ),
    "crossnet_lite + timm encoder": lambda: build_model("crossnet_lite", lr_encoder="timm"),
    "ttsr (small; texture extractor, attention, CSFI)": lambda: build_model("ttsr", **SMALL_TTSR),
}


def _exportable_degrade_reference(ref: torch.Tensor, scale: int) -> torch.Tensor:
    """TTSR's ``Ref↓↑`` with plain bicubic and integer sizes: what ONNX opset 17 can express.

    The model's own step (antialiased, sizes rounded from the traced shape) is the one part
    of TTSR that does not export; swapping it in shows that the rest (CSFI included) does.
    """
    h, w = (int(size) for size in ref.shape[-2:])
    small = F.interpolate(ref, size=(max(1, h // scale), max(1, w // scale)), mode="bicubic", align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send the process's stdout and stderr to /dev/null (a failed ONNX export prints its whole graph)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _attempt(measure: Callable[[], str]) -> str:
    """``measure()``, or why it failed (a report, not a test: say why and go on)."""
    try:
        with _silenced():
            return measure()
    except Exception as err:
        return "FAILED: " + str(err).strip().splitlines()[-1][:160]


def check(label: str, model: nn.Module, h: int, w: int, bf16: bool = False) -> None:
    """Export ``model`` both ways at an h×w LR input (×4) and print the differences to eager."""
    generator = torch.Generator().manual_seed(0)
    lr, ref = torch.rand(1, 3, h, w, generator=generator), torch.rand(1, 3, 4 * h, 4 * w, generator=generator)
    with torch.no_grad():
        expected = model(lr, ref)

    def onnx() -> str:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            diff = check_onnx(export_onnx(model, f"{folder}/model.onnx", lr, ref), model, lr, ref)
            return f"{diff:.1e} (export {time.perf_counter() - start:.1f} s)"

    def program() -> str:
        return f"{(export_program(model, lr, ref).module()(lr, ref) - expected).abs().max().item():.1e}"

    def low_precision() -> str:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return f"{(model(lr, ref).float() - expected).abs().max().item():.1e}"

    line = f"{label}, output {4 * h}x{4 * w}: onnx max|ort - torch| {_attempt(onnx)}; "
    line += f"torch.export max diff {_attempt(program)}"
    if bf16:
        line += f"; bf16 max|bf16 - fp32| {_attempt(low_precision)}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", action="store_true", help="the component models instead of the presets")
    args = parser.parse_args()
    if args.components:
        for label, make in COMPONENT_MODELS.items():
            torch.manual_seed(0)
            check(label, make().eval(), 12, 20, bf16=True)
        torch.manual_seed(0)
        with mock.patch.object(ttsr_module, "degrade_reference", _exportable_degrade_reference):
            check("ttsr (small) with an exportable Ref↓↑ step", build_model("ttsr", **SMALL_TTSR).eval(), 12, 20)
        return
    for preset, (h, w) in PRESETS:
        torch.manual_seed(0)
        check(preset, build_model(preset).eval(), h, w)


if __name__ == "__main__":
    main()
