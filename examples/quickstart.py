"""Quickstart: build CrossNet, super-resolve a pair, inspect the intermediates, save and reload.

python examples/quickstart.py            # a 96×128 pair
python examples/quickstart.py --tiny     # a 32×48 pair (what CI runs)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from refsr_blocks import build_model, list_components, list_models, load_model, save_model
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.tools.viz import synthetic_pair


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small images, for CI")
    args = parser.parse_args(argv)

    # 1. What is there: model presets, and components of one kind.
    print("models (architectures and presets):", ", ".join(list_models()))
    print("flow estimators:", ", ".join(list_components("flow")))

    # 2. Build a model from a preset. Keyword overrides change global parameters
    #    (upscale=8), swap components (flow="flownets") or set component parameters
    #    (**{"flow.width": 0.5}). crossnet_lite is the CPU-sized CrossNet.
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=4).eval()

    # 3. A (lr, ref) pair: lr is B×3×h×w, ref is B×3×(4h)×(4w), values in [0, 1]. Here a
    #    synthetic one: a generated picture, a second view of it, and the picture at 1/4 size.
    size = (32, 48) if args.tiny else (96, 128)
    pair = synthetic_pair(scale=4, size=size)
    lr, ref, hr = pair["lr"][None], pair["ref"][None], pair["hr"][None]

    with torch.inference_mode():
        sr = model(lr, ref)  # B×3×H×W
        out = model.forward_intermediates(lr, ref)  # a dict of everything the forward computed
    print(f"lr {tuple(lr.shape)} + ref {tuple(ref.shape)} -> sr {tuple(sr.shape)}")
    print(f"PSNR against the ground truth (random weights, so low): {float(psnr(sr, hr)[0]):.2f} dB")

    # 4. The intermediates: the upsampler's output, one flow per pyramid level (finest
    #    first, level k is 1/2^k of the size, channel 0 = x, 1 = y, in pixels of that level)
    #    and the warped reference features.
    print("upsampled:", tuple(out["upsampled"].shape))
    for k, (flow, feat) in enumerate(zip(out["flows"], out["warped_ref"])):
        print(f"level {k}: flow {tuple(flow.shape)}, warped reference features {tuple(feat.shape)}")

    # 5. model.spec is the fully resolved spec: it rebuilds the same architecture...
    again = build_model(model.spec)
    again.load_state_dict(model.state_dict())
    # ...and a checkpoint stores it beside the weights, so one file rebuilds the model.
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(model, Path(tmp) / "crossnet_lite.safetensors")
        loaded = load_model(path).eval()
        with torch.inference_mode():
            same = torch.equal(loaded(lr, ref), sr)
    print(f"saved and reloaded {path.name}: same output = {same}")


if __name__ == "__main__":
    main()
