"""Image sources that need no download.

:func:`builtin_images` returns sample photos shipped inside scikit-image's wheel
(``skimage/data``: astronaut, coffee, chelsea, rocket) when scikit-image is
installed, and deterministic :func:`~refsr_blocks.data.procedural.procedural_image` pictures
otherwise. :func:`builtin_image_source` says which one ``"auto"`` picks. The photos are read
straight from the package folder with Pillow; scikit-image itself is never imported.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

from torch import Tensor

from .errors import DataError, DataNotFoundError
from .io import list_images, load_image
from .procedural import procedural_image

__all__ = ["SKIMAGE_PHOTOS", "builtin_image_source", "builtin_images", "load_image_folder"]

#: Colour photographs (all ≥ 300×451) in ``skimage/data`` used by :func:`builtin_images`.
#: (The motorcycle stereo pair there is Middlebury's: held out, see ``real_photos.HELD_OUT``.)
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
)

Source = Literal["auto", "skimage", "procedural"]


def _skimage_data_dir() -> Path | None:
    """The ``skimage/data`` folder of an installed scikit-image, or None."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data"
        if any((folder / name).is_file() for name in SKIMAGE_PHOTOS):
            return folder
    return None


def builtin_image_source() -> Literal["skimage", "procedural"]:
    """``"skimage"`` if scikit-image's sample photos are installed, else ``"procedural"``."""
    return "skimage" if _skimage_data_dir() is not None else "procedural"


@lru_cache(maxsize=4)
def _procedural(count: int, size: tuple[int, int], seed: int) -> tuple[Tensor, ...]:
    return tuple(procedural_image(size[0], size[1], seed + k) for k in range(count))


def builtin_images(
    source: Source = "auto",
    *,
    count: int = 8,
    size: tuple[int, int] = (384, 512),
    seed: int = 0,
) -> list[Tensor]:
    """Images available without a download, as a list of 3×H×W float32 tensors in [0, 1].

    Args:
        source: ``"skimage"`` for the sample photos of an installed scikit-image (see
            :data:`SKIMAGE_PHOTOS`; sizes vary, 300×451 to 512×512 and up), ``"procedural"``
            for ``count`` generated images of ``size`` (H, W), or ``"auto"`` (default):
            skimage if installed, otherwise procedural.
        count, size, seed: for procedural images only (image k uses seed ``seed + k``).

    Raises:
        DataNotFoundError: ``source="skimage"`` but scikit-image is not installed.

    Example:
        >>> imgs = builtin_images("procedural", count=2, size=(64, 64))
        >>> len(imgs), imgs[0].shape
        (2, torch.Size([3, 64, 64]))
    """
    if source not in ("auto", "skimage", "procedural"):
        raise DataError(f"source must be 'auto', 'skimage' or 'procedural', got {source!r}")
    if source == "auto":
        source = builtin_image_source()
    if source == "skimage":
        folder = _skimage_data_dir()
        if folder is None:
            raise DataNotFoundError(
                "scikit-image's sample photos are not installed (pip install scikit-image); "
                "use source='procedural' or 'auto'"
            )
        return [load_image(folder / name) for name in SKIMAGE_PHOTOS if (folder / name).is_file()]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DataError(f"count must be an int >= 1, got {count!r}")
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) for s in size)):
        raise DataError(f"size must be a pair (H, W) of ints, got {size!r}")
    return [img.clone() for img in _procedural(count, (int(size[0]), int(size[1])), seed)]


def load_image_folder(path: str | Path) -> list[Tensor]:
    """Load every image (PNG, JPEG, …) directly inside ``path``, sorted by file name, as
    3×H×W float32 tensors in [0, 1].

    Raises:
        DataNotFoundError: ``path`` is missing, not a folder, or holds no image.
    """
    files = list_images(path)
    if not files:
        raise DataNotFoundError(f"no images (png, jpg, jpeg, bmp, tif, webp, ppm) in {str(path)!r}")
    return [load_image(p) for p in files]
