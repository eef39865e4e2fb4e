"""The benchmark scripts keep running: they are not part of the package, so nothing else exercises them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


def _viewpoint_tables(out: Path) -> str:
    command = [sys.executable, str(ROOT / "scripts" / "viewpoint_tables.py"), str(out)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_viewpoint_tables_put_one_row_per_kind_with_the_controls(tmp_path) -> None:
    """scripts/viewpoint_tables.py reads each kind's summary.json: the controls and the gain land in their columns."""
    import json

    for kind, gain in (("scale", -0.26), ("shift2d", 2.5)):
        summary = {
            "methods": {
                "bicubic": {"psnr": 30.0},
                "m:upsampler": {"psnr": 30.5},
                "m (ref=grey)": {"psnr": 31.0},
                "m (ref=bicubic-lr)": {"psnr": 30.9},
                "m": {"psnr": 31.0 + gain},
            },
            "reference_gain": {
                "m": {
                    "psnr": 31.0 + gain,
                    "reference_gain": gain,
                    "per_item_min": gain - 1,
                    "per_item_median": gain,
                    "items": 12,
                }
            },
        }
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "summary.json").write_text(json.dumps(summary))
    out = _viewpoint_tables(tmp_path)
    assert "### m" in out
    assert "| scale (12) | 30.00 | 30.50 | 31.00 | 30.90 | 30.74 | – | -0.26 | -1.26 | -0.26 |" in out
    assert "| shift2d (12) | 30.00 | 30.50 | 31.00 | 30.90 | 33.50 | – | +2.50 | +1.50 | +2.50 |" in out
    assert "Real-ESRGAN" not in out  # no run had it

    scale = json.loads((tmp_path / "scale" / "summary.json").read_text())
    scale["methods"]["realesrgan_x4plus"] = {"psnr": 28.25}
    (tmp_path / "scale" / "summary.json").write_text(json.dumps(scale))
    out = _viewpoint_tables(tmp_path)
    assert "| kind (items) | bicubic | Real-ESRGAN | SISR alone |" in out
    assert "| scale (12) | 30.00 | 28.25 | 30.50 |" in out and "| shift2d (12) | 30.00 | – | 30.50 |" in out
