"""Describe, fingerprint and picture the fixed viewpoint-pair sets (or random training draws).

The fixed validation and test sets are not files: ``ViewpointPairsDataset(split="val"|"test")``
makes them on the fly, the same in every run (docs/viewpoint-data.md). This script prints,
per kind, the item count, the mean valid fraction and a SHA-256 over every item's tensors,
so two machines can check they evaluate the same pairs, and can draw a picture per kind
(target, reference, the reference warped back by the ground-truth flow, the valid mask)::

    python scripts/make_viewpoint_sets.py --root data/real --split test --config configs/viewpoint
    python scripts/make_viewpoint_sets.py --split train --grid out/viewpoint_train.png --items 3
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from refsr_blocks.data.viewpoint import KINDS, ViewpointPairsDataset
from refsr_blocks.ops.warp import pixel_grid, sample
from refsr_blocks.train.config import read_config_file


def fingerprint(item: dict[str, object]) -> bytes:
    """The bytes of an item's tensors, in key order (what the SHA-256 covers)."""
    return b"".join(v.contiguous().numpy().tobytes() for k, v in sorted(item.items()) if isinstance(v, torch.Tensor))


def picture_row(item: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Target, reference (resized to the target's size if it differs), warped reference, valid mask."""
    hr, ref = item["hr"], item["ref"]
    h, w = hr.shape[-2:]
    shown = ref if ref.shape == hr.shape else F.interpolate(ref[None], size=(h, w), mode="bilinear", antialias=True)[0]
    if "flow" not in item:
        return [hr, shown, torch.zeros_like(hr), torch.zeros_like(hr)]
    points = (pixel_grid(h, w)[0] + item["flow"]).reshape(1, 2, -1)
    warped = sample(ref[None], points, mode="bicubic")[0].reshape(3, h, w).clamp(0, 1)
    valid = item["valid"]
    return [hr, shown, warped * (0.35 + 0.65 * valid), valid.expand(3, h, w)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/real", help="the gathered collection (default data/real)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument(
        "--config", type=Path, default=None, help="a folder of eval_<kind>_<split>.yaml entries to use (their params)"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds (default all)")
    parser.add_argument("--grid", type=Path, default=None, help="write a picture: per kind, --items rows")
    parser.add_argument("--items", type=int, default=2, help="rows per kind in the picture (default 2)")
    args = parser.parse_args(argv)
    total = hashlib.sha256()
    rows: list[torch.Tensor] = []
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        params: dict[str, object] = {"root": args.root, "split": args.split, "kinds": [kind]}
        if args.config is not None:
            entry = dict(read_config_file(str(args.config / f"eval_{kind}_{args.split}.yaml")))
            entry.pop("kind")
            params.update(entry)
        elif args.split == "train":
            params.update(length=args.items, seed=KINDS.index(kind) if kind in KINDS else 0)  # photos vary
        ds = ViewpointPairsDataset(**params, scale=args.scale)  # type: ignore[arg-type]
        digest = hashlib.sha256()
        valid = []
        for i in range(len(ds)):
            item = ds[i]
            digest.update(fingerprint(item))
            if "valid" in item:
                valid.append(float(item["valid"].mean()))
            if args.grid is not None and i < args.items:
                rows += picture_row(item)
        total.update(digest.digest())
        mean_valid = f"{sum(valid) / len(valid):.2f}" if valid else "-"
        print(f"{kind:16s} {len(ds):3d} items  mean valid {mean_valid:>4s}  sha256 {digest.hexdigest()[:16]}")
    print(f"{'all':16s} sha256 {total.hexdigest()[:16]}")
    if args.grid is not None:
        # Every tile at one display size (stereo pairs are larger than the generated items).
        size = (192, round(192 * rows[0].shape[-1] / rows[0].shape[-2]))  # the first target's aspect
        tiles = [F.interpolate(r[None], size=size, mode="bilinear", antialias=True)[0] for r in rows]
        padded = [t.clamp(0, 1) for t in tiles]
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        save_image(make_grid(padded, nrow=4, padding=4, pad_value=1.0), args.grid)
        print(f"wrote {args.grid} (columns: target, reference, reference warped by the flow, valid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
