"""The benchmark scripts keep running: they are not part of the package, so nothing else exercises them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 7 s: a subprocess that imports torch and counts FLOPs on fake tensors
def test_tiled_benchmark_counts_the_work_of_tiled_inference() -> None:
    """``benchmarks/tiled.py --flops-only``: tiled work over whole-image work, ≥ 1 (the overlaps are extra)."""
    options = ["--flops-only", "--preset", "crossnet_lite", "--sizes", "1024x1280", "--window", "512"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tiled.py"), *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r"output 1024x1280: (\d+) windows, FLOPs tiled/whole (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr[-2000:]
    windows, ratio = int(match.group(1)), float(match.group(2))
    assert windows > 1 and 1.0 < ratio < 2.0
