"""Add the SHA-256 weight digest (``refsr_blocks.sha256``) to model files saved before digests existed.

Usage: ``python scripts/add_weight_digests.py [FILE.safetensors ...]`` (default: the shipped
assets in ``refsr_blocks/assets``). Each file is loaded, re-saved with its metadata unchanged
plus the digest (atomically), read back, and compared tensor by tensor with the original
bytes: the script refuses to replace a file whose tensors would change by a single bit.
Files that already carry a digest are verified and left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from refsr_blocks.core.checkpoint import DIGEST_KEY, atomic_write, read_metadata, tensor_digest, verify_digest

ASSETS = Path(__file__).resolve().parent.parent / "refsr_blocks" / "assets"


def add_digest(path: Path) -> str:
    """Add the digest to ``path`` (bit-identical tensors); returns what was done."""
    if verify_digest(path):
        return "digest present and valid"
    metadata = read_metadata(path)
    tensors = load_file(str(path))
    metadata[DIGEST_KEY] = tensor_digest(tensors)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    again = load_file(str(path))
    if again.keys() != tensors.keys() or not all(
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(a.view(-1).view(torch.uint8), b.view(-1).view(torch.uint8))
        for a, b in ((tensors[k], again[k]) for k in tensors)
    ):
        raise SystemExit(f"{path}: tensors changed on re-save; this must not happen")
    verify_digest(path, required=True)
    return f"digest added ({metadata[DIGEST_KEY][:16]}…), tensors bit-identical"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(ASSETS.glob("*.safetensors"))
    for path in paths:
        print(f"{path}: {add_digest(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
