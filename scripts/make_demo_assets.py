"""Write the shipped demo pair and weights from a finished first-result run.

Usage::

    bash scripts/first_result.sh                 # trains into runs/first_result
    python scripts/make_demo_assets.py           # copies the weights, writes the demo pair

The demo pair is item ``--index`` of the first-result config's held-out ``data.test`` split
(procedural images the network never saw in training), saved as 8-bit PNGs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from refsr_blocks.data import save_image
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.train import load_config

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "refsr_blocks" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "first_result" / "crossnet")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "first_result.yaml")
    parser.add_argument("--index", type=int, default=2)
    args = parser.parse_args()

    config = load_config(args.config)
    scale = config.model["params"]["upscale"]
    dataset = build_dataset(config.data.test, scale=scale, default_seed=config.seed, path="data.test")
    item = dataset[args.index]
    (ASSETS / "demo").mkdir(parents=True, exist_ok=True)
    for name in ("lr", "ref", "hr"):
        save_image(item[name], ASSETS / "demo" / f"{name}.png")
    weights = ASSETS / "crossnet_small_x4.safetensors"
    shutil.copyfile(args.run / "model.safetensors", weights)
    print(f"wrote {ASSETS / 'demo'}/{{lr,ref,hr}}.png ({item['name']}) and {weights}")


if __name__ == "__main__":
    main()
