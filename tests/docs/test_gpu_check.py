"""scripts/gpu_check.sh's Python part (benchmarks/gpu_check.py) runs on the CPU: its sections at tiny sizes."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check() -> Iterator[ModuleType]:
    # The script imports its neighbour benchtools.py, as it does when run from benchmarks/.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_warp_section_checks_half_precision_beyond_512_px(gpu_check) -> None:
    result = gpu_check.warp_checks("cpu", [(8, 600)], ["bf16"])
    (row,) = result["rows"]
    assert result["passed"] and row["zero_flow_exact"] and row["integer_flow_exact"]
    assert row["out_dtype"] == "torch.bfloat16" and 0 < row["max_error_in_roundings"] <= 1.01


@pytest.mark.slow
def test_bench_case_reports_flops_and_time(gpu_check) -> None:
    row = gpu_check.bench_case("cpu", "crossnet_lite", 32, 64, "fp32", False, repeats=1)
    assert row["gflop"] > 0 and row["median_ms"] > 0 and row["tflops"] > 0


def test_sections_are_skipped_not_run_past_the_budget(gpu_check, tmp_path) -> None:
    report: dict = {}
    gpu_check.run_section(report, "late", gpu_check.Budget(0), 10, lambda: {"ran": True})
    gpu_check.run_section(report, "broken", gpu_check.Budget(100), 10, lambda: 1 / 0)
    assert report["late"]["status"] == "skipped" and report["broken"]["status"] == "error"
    assert "ZeroDivisionError" in report["broken"]["error"]
    json.dumps(report)  # what the script writes


def test_the_script_refuses_to_pretend_without_a_gpu(gpu_check, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu_check.main(["--out", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()
