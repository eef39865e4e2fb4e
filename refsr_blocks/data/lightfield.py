"""Light fields in the lenslet layout of the Flower and LFVideo datasets.

One PNG holds a whole light field with A×A angular samples (A = 14 in those datasets): pixel
``(y·A + u, x·A + v)`` of the PNG is pixel ``(y, x)`` of view ``(u, v)``, so a view is every
A-th pixel starting at (u, v). The real data have 376×541 pixels per view; any size works.

Following CrossNet, only the central 8×8 block of views is used (it starts at angular index
(14 - 8) // 2 = 3; the outer views are dark from vignetting). Inside that block the reference
is view (0, 0) and the target is view (i, i), i ∈ 1..7: the larger i, the larger the parallax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import einops
from torch import Tensor

from ._dataset import CropMode, RefSRDataset
from ._random import randint
from .augment import Sample
from .degradation import crop_to_multiple, downsample
from .errors import DataError, DataNotFoundError
from .io import IMAGE_EXTENSIONS, list_images, load_image_uint8

__all__ = ["LightFieldDataset", "lenslet_to_views", "views_to_lenslet"]


def lenslet_to_views(lenslet: Tensor, angular: int = 14) -> Tensor:
    """Split a lenslet image into its views.

    Args:
        lenslet: C×(H·A)×(W·A) tensor (any dtype) where pixel (y·A + u, x·A + v) belongs to
            view (u, v).
        angular: A, the number of angular samples per axis.

    Returns:
        A×A×C×H×W tensor, ``views[u, v]`` is view (u, v) (a view of ``lenslet``'s memory).

    Example:
        >>> import torch
        >>> views = torch.rand(3, 3, 1, 2, 4)
        >>> bool((lenslet_to_views(views_to_lenslet(views), 3) == views).all())
        True
    """
    if isinstance(angular, bool) or not isinstance(angular, int) or angular < 1:
        raise DataError(f"angular must be an int >= 1, got {angular!r}")
    if not isinstance(lenslet, Tensor) or lenslet.ndim != 3:
        shape = tuple(lenslet.shape) if isinstance(lenslet, Tensor) else type(lenslet).__name__
        raise DataError(f"lenslet must be a C×(H·A)×(W·A) tensor, got {shape}")
    _, h, w = lenslet.shape
    if h % angular or w % angular:
        raise DataError(
            f"lenslet image is {h}×{w} (H×W), not a multiple of angular={angular} in both axes; "
            "check the angular resolution of the dataset"
        )
    return einops.rearrange(lenslet, "c (h u) (w v) -> u v c h w", u=angular, v=angular)


def views_to_lenslet(views: Tensor) -> Tensor:
    """Inverse of :func:`lenslet_to_views`: A×A×C×H×W views to a C×(H·A)×(W·A) lenslet image."""
    if not isinstance(views, Tensor) or views.ndim != 5 or views.shape[0] != views.shape[1]:
        shape = tuple(views.shape) if isinstance(views, Tensor) else type(views).__name__
        raise DataError(f"views must be an A×A×C×H×W tensor, got {shape}")
    return einops.rearrange(views, "u v c h w -> c (h u) (w v)")


def _resolve_files(root: Path, split: str | None, files: Sequence[str | Path] | None) -> list[Path]:
    if not root.is_dir():
        raise DataNotFoundError(f"light-field root {str(root)!r} does not exist or is not a directory")
    if files is not None:
        paths = [p if Path(p).is_absolute() else root / p for p in map(Path, files)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataNotFoundError(f"{len(missing)} listed light-field file(s) not found, e.g. {missing[0]!r}")
        return paths
    if split is None:
        paths = list_images(root)
        where = str(root)
    elif (root / split).is_dir():
        paths = list_images(root / split)
        where = str(root / split)
    elif (root / f"{split}.txt").is_file():
        listing = root / f"{split}.txt"
        names = [ln.strip() for ln in listing.read_text().splitlines()]
        names = [n for n in names if n and not n.startswith("#")]
        return _resolve_files(root, None, names)
    else:
        raise DataNotFoundError(
            f"split {split!r} not found: expected a folder {str(root / split)!r} or a list "
            f"file {str(root / (split + '.txt'))!r}"
        )
    if not paths:
        raise DataNotFoundError(f"no light-field images ({', '.join(IMAGE_EXTENSIONS)}) in {where!r}")
    return paths


class LightFieldDataset(RefSRDataset):
    """RefSR pairs from lenslet light-field PNGs (Flower, LFVideo).

    Each item is a dict:

    - ``"lr"``: 3×h×w float32 in [0, 1], view (i, i) downsampled by ``scale``;
    - ``"hr"``: 3×H×W, view (i, i) (the target), H = scale·h, W = scale·w;
    - ``"ref"``: 3×H×W, view (0, 0) of the block (the reference);
    - ``"view"``: i (int); ``"name"``: the file stem (str).

    Views are cropped bottom/right to a multiple of ``scale`` (376×541 → 376×540 for ×4), the
    LR image is made from the whole view, then ``crop`` (if given) cuts the same window out of
    lr/hr/ref, aligned to the scale grid.

    Args:
        root: folder of lenslet PNGs (see ``split``).
        scale: upscale factor, 2, 3, 4 or 8.
        views: the angular indices i the target view (i, i) is drawn from, each in
            0..block-1 (0 makes the target the reference view itself). Default 1..7.
        angular: angular samples per axis in the files (14 for Flower/LFVideo).
        block: size of the block of views used (8 in CrossNet).
        block_offset: first angular index of the block; default (angular - block) // 2.
        crop: HR crop (H, W) (multiples of ``scale``), an int for a square, or None.
        split: None for every image in ``root``; a name ``s`` for the images in ``root/s/``
            or, failing that, those listed (one file name per line, relative to ``root``,
            ``#`` comments) in ``root/s.txt``.
        files: explicit list of files (relative to ``root`` or absolute); overrides ``split``.
        sampling: ``"all"`` (evaluation): item ``k`` is image ``k // len(views)`` with view
            ``views[k % len(views)]``, every (image, view) pair once. ``"random"`` (training):
            one item per image, with a view drawn uniformly from ``views``.
        crop_mode: where the crop goes, ``"random"`` or ``"center"``; default ``"center"``
            for ``sampling="all"`` and ``"random"`` for ``sampling="random"``.
        seed: None (torch's global RNG) or an int (items fixed per (seed, epoch, index)).
        transform: optional callable applied last to the item dict, ``transform(item,
            generator=g)`` if it accepts ``generator``, e.g. :class:`~refsr_blocks.data.augment.RandomDihedral`.

    Example:
        >>> ds = LightFieldDataset("data/flowers", scale=4, sampling="random", crop=(320, 512))  # doctest: +SKIP
        >>> item = ds[0]; item["lr"].shape, item["hr"].shape                                     # doctest: +SKIP
        (torch.Size([3, 80, 128]), torch.Size([3, 320, 512]))
    """

    def __init__(
        self,
        root: str | Path,
        scale: int = 4,
        views: Iterable[int] = (1, 2, 3, 4, 5, 6, 7),
        *,
        angular: int = 14,
        block: int = 8,
        block_offset: int | None = None,
        crop: int | tuple[int, int] | None = None,
        split: str | None = None,
        files: Sequence[str | Path] | None = None,
        sampling: Literal["all", "random"] = "all",
        crop_mode: CropMode | None = None,
        seed: int | None = None,
        transform: Callable[..., Sample] | None = None,
    ) -> None:
        if sampling not in ("all", "random"):
            raise DataError(f"sampling must be 'all' (evaluation) or 'random' (training), got {sampling!r}")
        if crop_mode is None:
            crop_mode = "center" if sampling == "all" else "random"
        super().__init__(scale, crop, seed, transform, crop_mode)
        for name, value in (("angular", angular), ("block", block)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"{name} must be an int >= 1, got {value!r}")
        if block > angular:
            raise DataError(f"block={block} cannot exceed angular={angular}")
        if block_offset is None:
            block_offset = (angular - block) // 2
        if (
            isinstance(block_offset, bool)
            or not isinstance(block_offset, int)
            or not 0 <= block_offset <= angular - block
        ):
            raise DataError(
                f"block_offset must be an int in 0..{angular - block} (angular - block), got {block_offset!r}"
            )
        view_list = list(views)
        bad = [v for v in view_list if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < block]
        if not view_list or bad:
            raise DataError(
                f"views must be a non-empty list of ints in 0..{block - 1} (block={block}), got {view_list!r}"
            )
        self.root = Path(root)
        self.files = _resolve_files(self.root, split, files)
        self.views: tuple[int, ...] = tuple(view_list)
        self.angular, self.block, self.block_offset = angular, block, block_offset
        self.sampling = sampling
        self._cache: tuple[int, dict[int, Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.files) * (len(self.views) if self.sampling == "all" else 1)

    def load_views(self, image_index: int) -> dict[int, Tensor]:
        """Decode light field ``image_index``; return {i: view (i, i) of the block} as uint8
        3×H×W tensors, for i = 0 (the reference) and every i in ``views``.

        The last light field decoded is cached, so evaluation (which visits every view of one
        light field in a row) decodes each PNG once.
        """
        if self._cache is not None and self._cache[0] == image_index:
            return self._cache[1]
        path = self.files[image_index]
        try:
            all_views = lenslet_to_views(load_image_uint8(path), self.angular)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
        o = self.block_offset
        wanted = {0, *self.views}
        out = {i: all_views[o + i, o + i].contiguous() for i in sorted(wanted)}
        self._cache = (image_index, out)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        generator = self._generator(index)
        if self.sampling == "all":
            image_index, view = divmod(index, len(self.views))
            view = self.views[view]
        else:
            image_index = index
            view = self.views[randint(0, len(self.views), generator)]
        views = self.load_views(image_index)
        hr = crop_to_multiple(views[view].float().div_(255.0), self.scale)
        ref = crop_to_multiple(views[0].float().div_(255.0), self.scale)
        sample: Sample = {
            "lr": downsample(hr, self.scale),
            "ref": ref,
            "hr": hr,
            "view": view,
            "name": self.files[image_index].stem,
        }
        sample = self._crop(sample, generator, f"each view of light field {str(self.files[image_index])!r}")
        sample = {k: v.contiguous() if isinstance(v, Tensor) else v for k, v in sample.items()}
        return self._apply_transform(sample, generator)
