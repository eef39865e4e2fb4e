"""The fast inference path: optimize_for_inference, run, retain_freed_memory."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model
from refsr_blocks.runtime import inference_context, optimize_for_inference, run

# Allocates a 256 MB tensor, frees it, allocates and fills one again, and prints the minor
# page faults of that second round; with ``retain`` it first calls retain_freed_memory().
FAULTS_SCRIPT = textwrap.dedent(
    """
    import resource, sys, torch
    from refsr_blocks.runtime import retain_freed_memory
    if sys.argv[1] == "retain":
        assert retain_freed_memory()
    torch.ones(64, 2**20).add_(1)  # 256 MB, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(64, 2**20).add_(1)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _second_round_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="retain_freed_memory is glibc-only",
)
def test_retain_freed_memory_reuses_pages_instead_of_faulting_them_again() -> None:
    """Without it, glibc unmaps the freed 256 MB and the next tensor page-faults it back in;
    with it, the freed block is reused: (almost) no page faults in a separate process."""
    default = _second_round_faults("default")
    retained = _second_round_faults("retain")
    assert default > 5_000, f"expected the default allocator to fault in fresh pages, got {default} faults"
    assert retained < default / 20, f"retained memory still faulted {retained} times (default {default})"


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


def test_inference_context_rejects_unknown_precision() -> None:
    with pytest.raises(ValueError, match="precision must be one of"), inference_context("cpu", "fp8"):
        pass
