"""Reading and writing images as float tensors: the one image reader of the library.

Images in the data layer are ``torch.float32`` tensors of shape 3×H×W (RGB) with values in
[0, 1]. Every image file the library reads (datasets, ``Predictor``, ``refsr-blocks``) goes
through :func:`open_image`, which

- says what is wrong with a path that is not a readable regular file (missing, a folder, a
  FIFO or device), naming it;
- reads only the header first and refuses an image over :data:`MAX_IMAGE_PIXELS` (or the
  caller's ``max_pixels``) before decoding a pixel, naming its width×height and the limit (a
  few KB of PNG can declare 50000×50000 pixels);
- turns a junk, truncated or damaged file into one :class:`~refsr_blocks.data.errors.DataError`
  naming the file;
- applies the EXIF orientation (a phone photo comes out upright, as image viewers show it).

Values become [0, 1] by one rule (:func:`pil_to_tensor`, also used by ``Predictor`` for PIL
images it is given):

- 8-bit images (grey, palette, RGB, alpha, CMYK, ...) are converted to RGB and divided by 255;
  alpha is dropped;
- 16-bit grey images (PIL modes ``I;16*``) are divided by 65535;
- 32-bit integer and float images (PIL modes ``I`` and ``F``, e.g. a float32 TIFF) are scaled by
  their largest value: taken as they are when it is at most 1 (float images already in [0, 1]),
  divided by 255 when it is at most 255, by 65535 when at most 65535, and by that largest value
  above (an HDR image is normalised to its brightest pixel). Negative values clip to 0; NaN or
  infinite values are an error.

Grey images are repeated to three channels.
"""

from __future__ import annotations

import hashlib
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ._checks import check_image
from .errors import DataError, DataNotFoundError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "check_image_file",
    "check_image_size",
    "file_sha256",
    "images_by_stem",
    "list_images",
    "load_image",
    "open_image",
    "pil_to_tensor",
    "read_image_size",
    "save_image",
    "writable_image_suffix",
]

#: File name extensions (lower case) treated as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

#: The most pixels (width × height) of an image file the library decodes: 2**30, about 32768×32768
#: (a 24000×24000 reference, the ×4 partner of a 6000×6000 LR image, fits). Checked from the header.
MAX_IMAGE_PIXELS = 2**30

#: PIL modes of 16-bit grey images.
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N")

# PIL's own decompression-bomb limit (a process-wide setting, 179 Mpx by default) would refuse the
# large references the library handles; it is lifted only while one header is read, under this lock,
# and the library's limit is checked right after.
_PIL_LIMIT_LOCK = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (checkpoints and datasets are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def images_by_stem(files: Iterable[Path], what: str = "image") -> dict[str, Path]:
    """``files`` keyed by file stem, for pairing two folders by name (``a.png`` with ``a.jpg``).

    Raises:
        DataError: two files share a stem (``a.png`` and ``a.jpg``): which one is meant is
            ambiguous, so neither is picked silently.
    """
    by_stem: dict[str, Path] = {}
    for path in files:
        other = by_stem.setdefault(path.stem, path)
        if other != path:
            raise DataError(
                f"{what} files {str(other)!r} and {str(path)!r} have the same name stem {path.stem!r}: "
                "which one pairs with it is ambiguous; rename or move one of them"
            )
    return by_stem


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words (from its ``st_mode``)."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_image_file(path: str | Path, what: str = "image file") -> Path:
    """``path`` as a ``Path`` if it is an existing regular file (symlinks followed).

    Checked with ``stat`` only, so a FIFO is never opened (opening one blocks until a writer comes).

    Raises:
        DataNotFoundError: nothing exists at ``path``.
        DataError: ``path`` is a folder, a FIFO, a device or a socket, or cannot be examined;
            the message names it and what it is.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataNotFoundError(f"{what} {str(path)!r} does not exist") from None
    except OSError as err:
        raise DataError(f"cannot read {what} {str(path)!r}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{what} {str(path)!r} is a folder, not an image file: pass an image file here")
    if not stat.S_ISREG(mode):
        raise DataError(f"{what} {str(path)!r} is {_file_kind(mode)}, not an image file: pass an image file here")
    return path


def _open_header(path: Path, what: str) -> Image.Image:
    """``Image.open`` (the header only) with PIL's process-wide bomb limit lifted for this read."""
    with _PIL_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        except UnidentifiedImageError:
            raise DataError(
                f"{what} {str(path)!r} is not an image file that can be read (PNG, JPEG, TIFF, BMP, WebP, ...)"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:  # a header PIL cannot parse
            raise DataError(f"{what} {str(path)!r} is damaged: {_first_line(err)}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_image_size(size: tuple[int, int], path: Path, what: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse an image of ``size`` (width, height) over ``max_pixels``, or with no pixels.

    Raises:
        DataError: naming the file, its width×height and the limit.
    """
    width, height = size
    if width <= 0 or height <= 0:
        raise DataError(f"{what} {str(path)!r} is {width}×{height} pixels: it holds no image")
    if width * height > max_pixels:
        raise DataError(
            f"{what} {str(path)!r} is {width}×{height} pixels ({width * height / 1e6:.0f} Mpx), over the limit of "
            f"{max_pixels / 1e6:.0f} Mpx ({max_pixels} pixels): split or downscale it"
        )


def open_image(path: str | Path, what: str = "image file", *, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open, check and decode an image file; returns a loaded, upright PIL image.

    The size is checked from the header before any pixel is decoded; then the pixels are decoded
    and the EXIF orientation applied (``PIL.ImageOps.exif_transpose``).

    Args:
        path: the image file.
        what: what it is, for messages (``"LR image"``, ``"reference image"``).
        max_pixels: the most pixels (width × height) accepted.

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: not a regular file, not an image, truncated or damaged, or too large; the
            message names the file.
    """
    path = check_image_file(path, what)
    im = _open_header(path, what)
    try:
        check_image_size(im.size, path, what, max_pixels)
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except DataError:
        im.close()
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        im.close()  # a truncated file, a damaged stream or EXIF block
        raise DataError(f"{what} {str(path)!r} is truncated or damaged: {_first_line(err)}") from None
    return im


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return (H, W) of an image file from its header, without decoding its pixels.

    Raises:
        DataNotFoundError, DataError: as :func:`open_image` (the size limit aside).
    """
    path = check_image_file(path)
    with _open_header(path, "image file") as im:
        w, h = im.size
    return h, w


def load_image_uint8(path: str | Path) -> Tensor:
    """Load an image file as a ``torch.uint8`` tensor 3×H×W (RGB), checked as :func:`open_image`."""
    with open_image(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _deep_scale(values: np.ndarray, mode: str) -> float:
    """The divisor that brings a mode "I" / "F" image into [0, 1] (the rule of the module docstring)."""
    if not np.isfinite(values).all():
        raise DataError(f"the mode {mode!r} image holds NaN or infinite values")
    top = float(values.max()) if values.size else 0.0
    for limit in (1.0, 255.0, 65535.0):
        if top <= limit:
            return limit
    return top


def pil_to_tensor(image: Image.Image) -> Tensor:
    """A PIL image as a float32 3×H×W tensor in [0, 1], by the scaling rule of the module docstring."""
    if image.mode in _MODES_16BIT:
        arr = np.asarray(image, dtype=np.float32) / 65535.0
    elif image.mode in ("I", "F"):
        arr = np.asarray(image, dtype=np.float32)
        arr = np.clip(arr / _deep_scale(arr, image.mode), 0.0, 1.0)
    elif image.mode == "L":
        arr = np.asarray(image, dtype=np.float32) / 255.0
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
        return torch.from_numpy(rgb / 255.0).permute(2, 0, 1).contiguous()
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).unsqueeze(0).expand(3, -1, -1).contiguous()


def load_image(path: str | Path, what: str = "image file", *, max_pixels: int = MAX_IMAGE_PIXELS) -> Tensor:
    """Load an image file as a float32 tensor 3×H×W with values in [0, 1].

    Read by :func:`open_image` (checked, size-limited, upright) and scaled by
    :func:`pil_to_tensor` (8-bit: ÷255; 16-bit grey: ÷65535; float and 32-bit images by their range;
    grey repeated to three channels; alpha dropped).

    Example:
        >>> import tempfile, torch
        >>> from refsr_blocks.data import load_image, save_image
        >>> path = tempfile.mkdtemp() + "/x.png"
        >>> save_image(torch.full((3, 4, 5), 0.5), path)
        >>> load_image(path).shape
        torch.Size([3, 4, 5])

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: not a readable image file, or too large (see :func:`open_image`).
    """
    with open_image(path, what, max_pixels=max_pixels) as im:
        try:
            return pil_to_tensor(im)
        except DataError as err:
            raise DataError(f"{what} {str(path)!r}: {err}") from None


def writable_image_suffix(path: str | Path) -> bool:
    """Whether PIL can write an image file named ``path`` (its suffix names a format PIL saves)."""
    format_ = Image.registered_extensions().get(Path(path).suffix.lower())
    return format_ is not None and format_ in Image.SAVE


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
