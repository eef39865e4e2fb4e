"""Final check on held-out Middlebury stereo pairs (never used for training, validation or selection).

Run once, after the model is fixed; its figures are reported, never optimised against:

    python benchmarks/final_check_middlebury.py [--checkpoint FILE]

Pairs: scikit-image's motorcycle pair (``skimage/data``, Middlebury 2014) and, when
``scripts/fetch_real_data.sh`` has unpacked opencv-doc, OpenCV's Aloe pair (Middlebury 2006).
Left view = ground truth (cropped to a multiple of 4), its ×4 reduction = LR, right view =
reference. Rows: bicubic, the model with a grey reference, with its LR's bicubic upsample as
reference, with the real reference; plus the wall time of one forward pass.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from refsr_blocks import load_model
from refsr_blocks.assets import load_pretrained
from refsr_blocks.data import crop_to_multiple, downsample, load_image
from refsr_blocks.data.real_photos import _package_dir
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.evaluation.references import prepare_reference
from refsr_blocks.tools.viz import bicubic_upsample


def _pairs() -> dict[str, tuple[Path, Path]]:
    pairs = {}
    skimage_data = _package_dir("skimage", "data")
    if skimage_data is not None:
        pairs["motorcycle (skimage)"] = (skimage_data / "motorcycle_left.png", skimage_data / "motorcycle_right.png")
    cache = Path(os.environ.get("REFSR_CACHE", Path.home() / ".cache" / "refsr-blocks"))
    opencv = cache / "opencv-doc" / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data"
    if (opencv / "aloeL.jpg").is_file():
        pairs["aloe (opencv-doc)"] = (opencv / "aloeL.jpg", opencv / "aloeR.jpg")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the default pretrained model")
    args = parser.parse_args()
    model = load_pretrained() if args.checkpoint is None else load_model(args.checkpoint).eval()
    print(
        f"{'pair':<22} {'size':>9} {'bicubic':>8} {'grey ref':>9} {'bic. ref':>9} {'real ref':>9} {'ref gain':>9} {'s/pass':>7}"
    )
    for name, (left, right) in _pairs().items():
        hr = crop_to_multiple(load_image(left), 4)[None]
        ref = crop_to_multiple(load_image(right), 4)[None]
        lr = downsample(hr[0], 4)[None]
        with torch.no_grad():
            t0 = time.perf_counter()
            real = float(psnr(model(lr, ref).clamp(0, 1), hr))
            seconds = time.perf_counter() - t0
            grey = float(psnr(model(lr, prepare_reference(ref, "blank")).clamp(0, 1), hr))
            bic_ref = float(psnr(model(lr, bicubic_upsample(lr, 4)).clamp(0, 1), hr))
        bicubic = float(psnr(bicubic_upsample(lr, 4).clamp(0, 1), hr))
        size = f"{hr.shape[-2]}×{hr.shape[-1]}"
        print(
            f"{name:<22} {size:>9} {bicubic:>8.2f} {grey:>9.2f} {bic_ref:>9.2f} {real:>9.2f} "
            f"{real - max(grey, bic_ref):>+9.2f} {seconds:>7.2f}"
        )


if __name__ == "__main__":
    main()
