"""``import refsr_blocks`` stays light: the heavy optional libraries load only when a part needs them.

torchvision (which imports ``torch._dynamo``), timm, kornia and onnx cost seconds to import; a
user who only calls ``load_model`` or ``refsr-blocks --help`` must not pay for them. Timing is
measured in benchmarks, not asserted here; this checks the modules themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torchvision", "timm", "kornia", "torch._dynamo", "onnx", "onnxruntime", "torch.utils.flop_counter")


def _imported_after(statement: str) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_library_imports_no_heavy_optional_module() -> None:
    assert _imported_after("import refsr_blocks") == []


def test_building_and_running_crossnet_imports_no_heavy_optional_module() -> None:
    statement = (
        "import torch, refsr_blocks; m = refsr_blocks.build_model('crossnet_lite', scales=3, channels=8); "
        "m(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32))"
    )
    assert _imported_after(statement) == []


def test_the_parts_that_need_them_still_import_them() -> None:
    """The check can fail: using the deformable aligner does bring torchvision in."""
    statement = (
        "import torch, refsr_blocks; a = refsr_blocks.create_component('aligner', 'deformable', "
        "lr_channels=[4], ref_channels=[4]); a([torch.rand(1, 4, 6, 6)], [[torch.rand(1, 4, 6, 6)]])"
    )
    assert "torchvision" in _imported_after(statement)
