"""Reading and writing images as float tensors.

Images in the data layer are ``torch.float32`` tensors of shape 3×H×W (RGB) with values in
[0, 1]. Grey-scale, palette and alpha images are converted to RGB on load; 16-bit grey-scale
PNGs keep their precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ._checks import check_image
from .errors import DataError, DataNotFoundError

__all__ = ["IMAGE_EXTENSIONS", "list_images", "load_image", "read_image_size", "save_image"]

#: File name extensions (lower case) treated as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(folder: str | Path, *, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by name.

    Raises:
        DataNotFoundError: ``folder`` does not exist or is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise DataNotFoundError(f"image folder {str(folder)!r} {what}")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return (H, W) of an image file without decoding its pixels."""
    with Image.open(path) as im:
        w, h = im.size
    return h, w


def load_image_uint8(path: str | Path) -> Tensor:
    """Load an image file as a ``torch.uint8`` tensor 3×H×W (RGB)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file {str(path)!r} does not exist")
    with Image.open(path) as im:
        im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def load_image(path: str | Path) -> Tensor:
    """Load an image file as a float32 tensor 3×H×W with values in [0, 1].

    8-bit images are divided by 255; 16-bit grey-scale images by 65535 (and repeated to three
    channels). Alpha is dropped.

    Example:
        >>> import tempfile, torch
        >>> from refsr_blocks.data import load_image, save_image
        >>> path = tempfile.mkdtemp() + "/x.png"
        >>> save_image(torch.full((3, 4, 5), 0.5), path)
        >>> load_image(path).shape
        torch.Size([3, 4, 5])
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file {str(path)!r} does not exist")
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") else 255.0)
            if im.mode == "I" and arr.max() > 1.0:  # 16-bit PNGs decode as mode "I"
                arr = arr * 255.0 / 65535.0
            img = torch.from_numpy(np.clip(arr, 0.0, 1.0)).unsqueeze(0).expand(3, -1, -1)
            return img.contiguous()
    return load_image_uint8(path).float().div_(255.0)


def save_image(img: Tensor, path: str | Path) -> None:
    """Save a 3×H×W (or 1×H×W) float image in [0, 1] as an 8-bit file (format from the suffix).

    Values are clamped to [0, 1] and rounded to the nearest 8-bit level.
    """
    img = check_image(img, "img", batched=False)
    if img.shape[0] not in (1, 3):
        raise DataError(f"img must have 1 or 3 channels to be saved, got shape {tuple(img.shape)}")
    arr = img.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    arr_np = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr_np).save(path)
