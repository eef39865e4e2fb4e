"""Train a small CrossNet for a few steps on synthetic data, then save a checkpoint.

No download: the images are procedural pictures (or scikit-image's sample photos when it is
installed, see ``refsr_blocks.data.builtin_images``) and each reference is a synthetic
second view of its target (``SyntheticParallaxDataset``). This is the bare loop, to show the
parts; ``python -m refsr_blocks.train CONFIG`` is the full trainer.

    python examples/small_training.py --steps 200 --out-dir runs/example
    python examples/small_training.py --tiny       # 3 steps of a very small model (CI)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from refsr_blocks import build_model, get_component, save_model
from refsr_blocks.data import SyntheticParallaxDataset, builtin_images
from refsr_blocks.evaluation.metrics import psnr

#: A very small CrossNet (×4, 3 pyramid levels, 8 channels) for --tiny.
TINY_SPEC = {
    "model": "crossnet",
    "params": {"upscale": 4, "scales": 3, "channels": 8, "residual": True},
    "components": {
        "upsampler": {"name": "mdsr", "params": {"num_blocks": 1, "channels": 8}},
        "flow": {"name": "flownets_plus", "params": {"width": 0.125}},
        "decoder": {"name": "unet_fusion", "params": {"output_activation": "none"}},
    },
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps of a very small model, for CI")
    parser.add_argument("--steps", type=int, default=200, help="optimisation steps")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=96, help="HR crop size (a multiple of 4)")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/small_training"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.batch_size, args.crop = 3, 2, 32

    torch.manual_seed(0)
    model = build_model(TINY_SPEC if args.tiny else "crossnet_lite").train()
    loss_fn = get_component("loss", "charbonnier").factory()  # sqrt(x² + 0.001²), CrossNet's loss
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4 if not args.tiny else 1e-3)

    # Training pairs: random crops of the images, a new synthetic reference view each time.
    size = (2 * args.crop, 2 * args.crop)
    images = builtin_images("procedural", count=4, size=size) if args.tiny else builtin_images(size=size)
    train_set = SyntheticParallaxDataset(images, scale=4, crop=args.crop, max_disparity=8.0)
    # Validation: the same images, fixed crops and references (an int seed fixes item i).
    val_set = SyntheticParallaxDataset(images, scale=4, crop=args.crop, max_disparity=8.0, seed=1, crop_mode="center")
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)

    step, start = 0, time.perf_counter()
    while step < args.steps:
        for batch in loader:
            # The flow estimator sees the upsampled LR image, never the ground truth.
            sr = model(batch["lr"], batch["ref"])
            loss = loss_fn(sr, batch["hr"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == 1 or step % max(1, args.steps // 10) == 0 or step == args.steps:
                print(f"step {step:4d}  loss {loss.item():.4f}  ({time.perf_counter() - start:.1f} s)")
            if step == args.steps:
                break

    model.eval()
    with torch.inference_mode():
        scores = [
            float(psnr(model(s["lr"][None], s["ref"][None]), s["hr"][None])[0])
            for s in (val_set[i] for i in range(len(val_set)))
        ]
    print(f"validation PSNR: {sum(scores) / len(scores):.2f} dB over {len(scores)} pairs")

    path = save_model(model, args.out_dir / "model.safetensors", metadata={"steps": str(step)})
    print(f"saved {path} (load it with refsr_blocks.load_model, or `refsr-blocks sr --checkpoint {path} ...`)")


if __name__ == "__main__":
    main()
