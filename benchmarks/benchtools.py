"""Helpers the benchmark scripts share: timing, the CPU's name, one forward pass's memory, size options.

The scripts import it as ``from benchtools import ...`` (this folder is on ``sys.path`` when one
of them runs as ``python benchmarks/<script>.py``). It imports torch only inside the helpers
that need it, so a script that measures other processes stays light.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; the CPU does not)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss_mib() -> float:
    """This process's resident set size now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def forward_memory(model: Any, lr: Any, refs: Sequence[Any]) -> dict[str, Any]:
    """One forward pass of ``model(lr, refs)`` under ``torch.no_grad()``: its seconds and memory.

    The weights and the allocator are warmed on an 8×8 corner of the LR first; the pass's
    memory is the peak RSS (``ru_maxrss``) minus the RSS just before it, in MiB. Run it in a
    fresh process: the peak is the process's.
    """
    import torch

    with torch.no_grad():
        model(lr[..., :8, :8], [r[..., :32, :32] for r in refs])
    before = rss_mib()
    start = time.perf_counter()
    with torch.no_grad():
        out = model(lr, refs)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "pass_mib": peak - before,
        "seconds": seconds,
        "output": list(out.shape),
    }


def size_parser(doc: str, height: int = 320, width: int = 512) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--height`` and ``--width`` (pixels)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--height", type=int, default=height)
    parser.add_argument("--width", type=int, default=width)
    return parser
