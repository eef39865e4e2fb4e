"""The fast inference path: optimize_for_inference, run, retain_freed_memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model
from refsr_blocks.inference.runtime import (
    bf16_fast_path_available,
    inference_context,
    optimize_for_inference,
    resolve_precision,
    run,
)
from refsr_blocks.layers import PrepackedConv2d, PrepackedConvTranspose2d, prepacked

#: The library's own check: whether bf16 takes the packed path on this CPU (and why not).
PACKED_BF16_PROBLEM = prepacked.packed_dtype_problem(torch.bfloat16)

# Allocates, fills and frees a 256 MB tensor ten times and prints the minor page faults of
# rounds 2-10 (the first round always faults its pages in); with ``retain`` it first calls
# retain_freed_memory().
FAULTS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, torch
    from refsr_blocks.inference.runtime import retain_freed_memory
    if sys.argv[1] == "retain":
        assert retain_freed_memory()
    faults = []
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(64, 2**20).add_(1)  # 256 MB, freed at once
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps(faults[1:]))
    """
)


def _faults_after_first_round(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="retain_freed_memory is glibc-only",
)
def test_retain_freed_memory_reuses_pages_instead_of_faulting_them_again() -> None:
    """Without it, glibc unmaps each freed 256 MB block and every round page-faults it back in.
    With it, freed blocks are reused. Not always at once: glibc's heap sometimes grows once
    more when a small allocation lands in the freed space (about half of the processes, one
    round of nine, in 40 runs here), so the bound is a third of the default's faults."""
    default = _faults_after_first_round("default")
    retained = _faults_after_first_round("retain")
    assert min(default) > 30_000, f"expected every default round to fault its 65536 pages in, got {default}"
    assert sum(retained) < sum(default) / 3, f"retained memory still faulted: {retained} (default {default})"


def test_optimize_for_inference_and_run_match_the_plain_model() -> None:
    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET).eval()
    lr, ref = torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40)  # TINY_CROSSNET is ×2
    with torch.no_grad():
        expected = model(lr, ref)
    fast = optimize_for_inference(model)
    assert not any(p.requires_grad for p in fast.parameters())
    out = run(fast, lr, ref)
    assert out.dtype == torch.float32 and out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    packed = [m for m in fast.modules() if isinstance(m, (PrepackedConv2d, PrepackedConvTranspose2d))]
    assert packed and all(m._packed is not None for m in packed), "run() takes the packed-weight path"


def _bf16_run_and_packed_layers() -> list[torch.nn.Module]:
    """Run the tiny CrossNet in bf16 on the fast path; check it stays close to fp32; return its packed layers."""
    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET).eval()
    lr, ref = torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        expected = model(lr, ref)
    fast = optimize_for_inference(model)
    out = run(fast, lr, ref, precision="bf16")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=5e-2)  # bf16 has 8 significant bits
    packed = [m for m in fast.modules() if isinstance(m, (PrepackedConv2d, PrepackedConvTranspose2d))]
    assert packed, "the fp32 packed path exists wherever oneDNN does"
    return packed


@pytest.mark.skipif(
    PACKED_BF16_PROBLEM is not None, reason=f"no packed bf16 convolutions on this CPU: {PACKED_BF16_PROBLEM}"
)
def test_run_in_bf16_takes_the_fast_layers_and_stays_close() -> None:
    packed = _bf16_run_and_packed_layers()
    assert all(m._packed is not None and m._packed[0][2] == torch.bfloat16 for m in packed)


@pytest.mark.skipif(PACKED_BF16_PROBLEM is None, reason="this CPU has packed bf16 (the fallback is tested below)")
def test_run_in_bf16_without_packed_bf16_runs_plain_layers_and_stays_close() -> None:
    """On a CPU that fails the bf16 check (``ONEDNN_MAX_CPU_ISA=AVX2`` here) every packed layer runs as nn."""
    assert all(m._packed is None for m in _bf16_run_and_packed_layers())


def test_a_failed_bf16_check_runs_plain_layers_and_stays_close(monkeypatch) -> None:
    """The same fallback on any CPU: the check reports bf16 failed, as it does on an AVX2 CPU."""
    monkeypatch.setattr(prepacked, "packed_dtypes", lambda: (torch.float32,))
    assert all(m._packed is None for m in _bf16_run_and_packed_layers())


def test_auto_precision_is_bf16_only_where_bf16_is_fast(monkeypatch, recwarn) -> None:
    for problem, expected in ((None, "bf16"), ("this CPU has no bf16 arithmetic instructions", "fp32")):
        monkeypatch.setattr(prepacked, "bf16_fast_path_problem", lambda problem=problem: problem)
        assert bf16_fast_path_available() == (problem is None)
        assert resolve_precision("auto", "cpu") == expected
        assert resolve_precision("auto", "cuda") == "fp32", "CUDA keeps fp32 unless asked"
        assert resolve_precision("fp32", "cpu") == "fp32"
    assert not recwarn.list, "auto and fp32 never warn"


def test_explicit_bf16_warns_once_where_it_is_slow(monkeypatch) -> None:
    monkeypatch.setattr(prepacked, "bf16_fast_path_problem", lambda: "this CPU has no bf16 arithmetic instructions")
    with pytest.warns(
        RuntimeWarning, match=r"'bf16' will be slow on this CPU \(this CPU has no bf16.*'fp32' or 'auto'"
    ):
        assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(prepacked, "bf16_fast_path_problem", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")


# In a child process that limits oneDNN to AVX2, as on a CPU without AVX-512 (the variable is
# read when oneDNN starts, so it cannot be set in this process).
AVX2_SCRIPT = textwrap.dedent(
    """
    import json, warnings, torch
    from small import TINY_CROSSNET
    from refsr_blocks import Predictor, build_model
    from refsr_blocks.layers.prepacked import bf16_fast_path_problem, packed_dtype_problem
    with warnings.catch_warnings(record=True) as auto_warnings:
        warnings.simplefilter("always")
        auto = Predictor(build_model(TINY_CROSSNET), device="cpu").precision
    with warnings.catch_warnings(record=True) as bf16_warnings:
        warnings.simplefilter("always")
        bf16 = Predictor(build_model(TINY_CROSSNET), device="cpu", precision="bf16")
        bf16.predict(torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40))
    print(json.dumps({
        "packed_bf16": packed_dtype_problem(torch.bfloat16), "fast": bf16_fast_path_problem(), "auto": auto,
        "auto_warnings": [str(w.message) for w in auto_warnings],
        "bf16_warnings": [str(w.message) for w in bf16_warnings if w.category is RuntimeWarning],
    }))
    """
)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="ONEDNN_MAX_CPU_ISA=AVX2 is x86-64 only")
def test_on_an_avx2_cpu_auto_is_fp32_and_bf16_warns_once() -> None:
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", AVX2_SCRIPT], capture_output=True, text=True, env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "cpu support" in result["packed_bf16"], result  # oneDNN names avx512bw/vl/dq or avx_ne_convert
    assert result["fast"] == result["packed_bf16"]
    assert result["auto"] == "fp32" and result["auto_warnings"] == []
    assert len(result["bf16_warnings"]) == 1 and "will be slow" in result["bf16_warnings"][0], result


def test_inference_context_rejects_unknown_precision() -> None:
    with pytest.raises(ValueError, match="precision must be one of"), inference_context("cpu", "fp8"):
        pass
