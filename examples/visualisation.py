"""Draw what a model does: the flow convention, flows per level, the warp, comparisons, errors.

    python examples/visualisation.py --out-dir pictures                       # random weights
    python examples/visualisation.py --checkpoint model.safetensors --out-dir pictures
    python examples/visualisation.py --tiny --out-dir /tmp/pictures           # CI

Every picture is a PNG; ``refsr-blocks viz`` does the same from the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from refsr_blocks import build_model, load_model
from refsr_blocks.tools.viz import flow_convention_panel, render_intermediates, save_png, synthetic_pair


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="trained weights (random if omitted)")
    parser.add_argument("--out-dir", type=Path, default=Path("pictures"))
    parser.add_argument("--tiny", action="store_true", help="small images, for CI")
    args = parser.parse_args(argv)

    if args.checkpoint is not None:
        model = load_model(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = build_model("crossnet_lite")
        print("no --checkpoint: random weights, so the flows and the output are noise")
    scale = model.spec["params"]["upscale"]

    # A synthetic example with a known flow: hr[p] ≈ ref[p + flow[p]].
    size = (32, 48) if args.tiny else (128, 192)
    pair = synthetic_pair(scale=scale, size=size)

    # 1. The flow convention, with the true flow: warping the reference with it gives the target.
    path = save_png(flow_convention_panel(pair["hr"], pair["ref"], pair["flow"]), args.out_dir / "flow-convention.png")
    print("wrote", path)

    # 2. The model's intermediates, from one forward_intermediates call.
    for name, path in render_intermediates(model, pair["lr"], pair["ref"], args.out_dir, hr=pair["hr"]).items():
        print(f"wrote {path}  ({name})")


if __name__ == "__main__":
    main()
