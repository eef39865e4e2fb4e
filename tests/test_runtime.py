"""The fast inference path: optimize_for_inference, run, retain_freed_memory."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model
from refsr_blocks.inference.runtime import inference_context, optimize_for_inference, run
from refsr_blocks.layers import PrepackedConv2d, PrepackedConvTranspose2d

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


def test_run_in_bf16_takes_the_fast_layers_and_stays_close() -> None:
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
    assert all(m._packed is not None and m._packed[0][2] == torch.bfloat16 for m in packed)


def test_inference_context_rejects_unknown_precision() -> None:
    with pytest.raises(ValueError, match="precision must be one of"), inference_context("cpu", "fp8"):
        pass
