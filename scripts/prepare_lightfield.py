"""Turn the Flower / LFVideo downloads into the layout :class:`~refsr_blocks.data.LightFieldDataset` reads.

Two sources:

``h5``: the authors' HDF5 files (``train_x4_x8.h5``, ``test_x4_x8.h5``), whose ``/img_HR`` is an
N×8×8×3×H×W uint8 array (the central 8×8 views of each light field). Each light field becomes
one lenslet PNG with 8×8 angular samples, read with ``angular=8, block=8, block_offset=0``::

    python scripts/prepare_lightfield.py h5 flower/train_x4_x8.h5 --out data/flowers/train
    python scripts/prepare_lightfield.py h5 flower/test_x4_x8.h5 --out data/flowers/test

``lenslet``: the original lenslet PNGs (14×14 angular samples). They are checked (size a
multiple of the angular resolution), linked or copied into ``--out`` and split into the list
files ``train.txt``, ``val.txt`` and ``test.txt`` that ``split="train"``/``"val"``/``"test"``
read. The test set is the names in ``--test-list`` or ``--test-count`` names drawn with
``--seed``; ``--val-count`` names are then drawn from the rest for validation (model selection
never sees the test set; the paper had no validation split)::

    python scripts/prepare_lightfield.py lenslet Flowers_8bit/ --out data/flowers --test-count 100 --val-count 100

The PNGs that ``h5`` writes are lenslets too: run ``lenslet`` over the training folder with
``--angular 8 --test-count 0 --val-count N`` to split a validation set off the authors' training set.

Both write ``SHA256SUMS`` (of the sources) into ``--out`` so two preparations can be compared.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from refsr_blocks.data import DataError, save_image, views_to_lenslet
from refsr_blocks.data.io import file_sha256, list_images, read_image_size

#: Angular samples per axis of the authors' HDF5 (the central block only).
H5_ANGULAR = 8


def write_checksums(out: Path, sources: Sequence[Path]) -> Path:
    """Write ``SHA256SUMS`` (``<hash>  <file name>`` per source) into ``out``."""
    path = out / "SHA256SUMS"
    path.write_text("".join(f"{file_sha256(p)}  {p.name}\n" for p in sources))
    return path


def from_h5(
    source: Path, out: Path, *, dataset: str = "/img_HR", prefix: str | None = None, limit: int | None = None
) -> list[Path]:
    """Write one lenslet PNG (8×8 angular samples) per light field of the authors' HDF5.

    Args:
        source: the ``.h5`` file.
        out: the folder to write ``<prefix>_<index:05d>.png`` into.
        dataset: the HDF5 dataset of the views, N×8×8×3×H×W uint8 (``/img_HR``).
        prefix: file-name prefix (default: the source's stem).
        limit: convert only the first ``limit`` light fields.

    Returns:
        The PNGs written.
    """
    try:
        import h5py
    except ImportError:
        raise DataError("reading the authors' HDF5 needs h5py: pip install 'refsr-blocks[data]'") from None
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    prefix = prefix or source.stem
    written = []
    with h5py.File(source, "r") as f:
        if dataset not in f:
            raise DataError(f"{source}: no dataset {dataset!r} (it has {sorted(f.keys())})")
        views = f[dataset]
        if views.ndim != 6 or views.shape[1] != H5_ANGULAR or views.shape[2] != H5_ANGULAR or views.shape[3] != 3:
            raise DataError(f"{source}{dataset}: expected N×8×8×3×H×W views, got shape {views.shape}")
        count = views.shape[0] if limit is None else min(limit, views.shape[0])
        for n in range(count):
            lf = torch.from_numpy(views[n]).float().div_(255.0)  # 8×8×3×H×W
            path = out / f"{prefix}_{n:05d}.png"
            save_image(views_to_lenslet(lf), path)
            written.append(path)
    return written


def from_lenslet(
    source: Path,
    out: Path,
    *,
    angular: int = 14,
    test_list: Path | None = None,
    test_count: int | None = None,
    val_count: int = 0,
    seed: int = 0,
    copy: bool = False,
) -> tuple[list[str], list[str], list[str]]:
    """Check lenslet PNGs, put them into ``out`` (links, or copies) and write the split lists.

    ``train.txt`` and ``test.txt`` are always written, ``val.txt`` when ``val_count`` > 0 (names
    drawn from the non-test ones with ``seed``).

    Returns:
        (train names, validation names, test names), file names relative to ``out``.
    """
    paths = list_images(source)
    if not paths:
        raise DataError(f"no images in {source}")
    bad = [p.name for p in paths if any(d % angular for d in read_image_size(p))]
    if bad:
        raise DataError(f"{len(bad)} image(s) are not a multiple of angular={angular} in both axes, e.g. {bad[0]}")
    names = sorted(p.name for p in paths)
    if test_list is not None:
        wanted = [ln.strip() for ln in test_list.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise DataError(f"{len(missing)} test name(s) not among the images, e.g. {missing[0]!r}")
        test = sorted(wanted)
    elif test_count is not None:
        if not 0 <= test_count < len(names):
            raise DataError(f"test_count must be in 0..{len(names) - 1}, got {test_count}")
        test = sorted(random.Random(seed).sample(names, test_count))
    else:
        raise DataError("give --test-list or --test-count")
    rest = [n for n in names if n not in set(test)]
    if not 0 <= val_count < len(rest):
        raise DataError(
            f"val_count must be in 0..{len(rest) - 1} (the light fields left after the test set), got {val_count}"
        )
    val = sorted(random.Random(seed + 1).sample(rest, val_count))
    out.mkdir(parents=True, exist_ok=True)
    for p in paths:
        dst = out / p.name
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if copy:
            shutil.copy2(p, dst)
        else:
            os.symlink(p.resolve(), dst)
    train = [n for n in rest if n not in set(val)]
    lists = {"train": train, "test": test, **({"val": val} if val else {})}
    for split, split_names in lists.items():
        (out / f"{split}.txt").write_text("".join(f"{n}\n" for n in split_names))
    if not val:
        (out / "val.txt").unlink(missing_ok=True)  # a list from an earlier preparation would be stale
    return train, val, test


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="source_kind", required=True)
    h5 = sub.add_parser("h5", help="the authors' HDF5 (/img_HR: N×8×8×3×H×W)")
    h5.add_argument("source", type=Path)
    h5.add_argument("--out", type=Path, required=True)
    h5.add_argument("--dataset", default="/img_HR")
    h5.add_argument("--prefix", default=None)
    h5.add_argument("--limit", type=int, default=None)
    lens = sub.add_parser("lenslet", help="the original lenslet PNGs (14×14 angular samples)")
    lens.add_argument("source", type=Path)
    lens.add_argument("--out", type=Path, required=True)
    lens.add_argument("--angular", type=int, default=14)
    lens.add_argument("--test-list", type=Path, default=None)
    lens.add_argument("--test-count", type=int, default=None)
    lens.add_argument("--val-count", type=int, default=0, help="validation light fields drawn from the rest")
    lens.add_argument("--seed", type=int, default=0)
    lens.add_argument("--copy", action="store_true", help="copy the files instead of linking them")
    args = parser.parse_args(argv)
    try:
        if args.source_kind == "h5":
            written = from_h5(args.source, args.out, dataset=args.dataset, prefix=args.prefix, limit=args.limit)
            write_checksums(args.out, [args.source])
            print(
                f"wrote {len(written)} light fields to {args.out}; read them with "
                f"LightFieldDataset(root, angular={H5_ANGULAR}, block={H5_ANGULAR}, block_offset=0)"
            )
        else:
            train, val, test = from_lenslet(
                args.source,
                args.out,
                angular=args.angular,
                test_list=args.test_list,
                test_count=args.test_count,
                val_count=args.val_count,
                seed=args.seed,
                copy=args.copy,
            )
            write_checksums(args.out, sorted(args.source.glob("*.png")))
            print(
                f"{len(train)} training, {len(val)} validation and {len(test)} test light fields in {args.out} "
                f"(train.txt, {'val.txt, ' if val else ''}test.txt)"
            )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
