"""Does the default model compile as one graph? Prints capture and inductor results.

    python benchmarks/compile_check.py [--skip-inductor]

Graph capture (backend "eager") needs no C++ toolchain; inductor compiles real kernels and
takes tens of seconds on a small CPU. Both use ``fullgraph=True``: any graph break fails.
"""

from __future__ import annotations

import argparse
import time

import torch

from refsr_blocks import build_model
from refsr_blocks.assets import load_pretrained


def check(name: str, model: torch.nn.Module, backend: str, lr: torch.Tensor, ref: torch.Tensor) -> None:
    model.eval()
    start = time.perf_counter()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    with torch.no_grad():
        diff = (compiled(lr, ref) - model(lr, ref)).abs().max().item()
    print(
        f"{name:18s} {backend:9s} fullgraph ok  max |compiled - eager| {diff:.1e}  {time.perf_counter() - start:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-inductor", action="store_true", help="graph capture only")
    args = parser.parse_args()
    lr, ref = torch.rand(1, 3, 24, 32), torch.rand(1, 3, 96, 128)
    for name, model in (("crossnet (paper)", build_model("crossnet")), ("crossnet_real_x4", load_pretrained())):
        check(name, model, "eager", lr, ref)
    if not args.skip_inductor:
        check("crossnet_real_x4", load_pretrained(), "inductor", lr, ref)


if __name__ == "__main__":
    main()
