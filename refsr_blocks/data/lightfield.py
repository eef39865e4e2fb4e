"""Light fields in the lenslet layout of the Flower and LFVideo datasets.

One PNG holds a whole light field with A×A angular samples (A = 14 in those datasets): pixel
``(y·A + u, x·A + v)`` of the PNG is pixel ``(y, x)`` of view ``(u, v)``, so a view is every
A-th pixel starting at (u, v). The real data have 376×541 pixels per view; any size works.

Following CrossNet, only the central 8×8 block of views is used (it starts at angular index
(14 - 8) // 2 = 3; the outer views are dark from vignetting). For evaluation, inside that block
the reference is view (0, 0) and the target is view (i, i), i ∈ 1..7: the larger i, the larger
the parallax. For training, the paper (and the authors' code) draws the target and the
reference at random from the whole block, two different views (``pairs="grid"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import einops
import torch
from torch import Tensor

from ._dataset import CropMode, RefSRDataset
from ._random import randint, uniform_float
from .augment import Sample
from .degradation import crop_to_multiple, downsample
from .errors import DataError, DataNotFoundError
from .io import IMAGE_EXTENSIONS, list_images, load_image_uint8

__all__ = ["LightFieldDataset", "LightFieldPhotometric", "lenslet_to_views", "views_to_lenslet"]

#: Luma weights (ITU-R BT.601) of the saturation change, as the authors' ``grayscale``.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class LightFieldPhotometric:
    """The authors' photometric augmentation of light-field pairs, applied alike to target and reference.

    Per item: an offset ``b ~ N(0, brightness²)`` is added, the image is multiplied by one gain
    ``g ~ U(1 - gain, 1 + gain)`` (the same for the three channels), blended with its luma
    ``Y`` as ``a·Y + (1 - a)·x`` with ``a ~ U(-saturation, saturation)`` (their "contrast": a
    saturation change), then clipped to [0, 1]. The authors' defaults: 0.02, 0.1, 0.3. Zeros
    are the identity. The target and the reference get the same draw (one change of the scene,
    not a difference between the views); the LR image is made from the changed target.

    Example:
        >>> import torch
        >>> aug = LightFieldPhotometric()
        >>> a, b = aug(torch.rand(3, 4, 4), torch.rand(3, 4, 4), generator=torch.Generator().manual_seed(0))
        >>> a.shape, bool(a.min() >= 0 and a.max() <= 1)
        (torch.Size([3, 4, 4]), True)
    """

    brightness: float = 0.02
    gain: float = 0.1
    saturation: float = 0.3

    def __post_init__(self) -> None:
        for name in ("brightness", "gain", "saturation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise DataError(f"LightFieldPhotometric.{name} must be a number in [0, 1), got {value!r}")

    def __call__(self, *images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Apply one draw to each 3×H×W float image in [0, 1]; returns new tensors, same shapes."""
        offset = float(torch.randn((), generator=generator)) * self.brightness
        gain = uniform_float(1 - self.gain, 1 + self.gain, generator)
        alpha = uniform_float(-self.saturation, self.saturation, generator)
        out = []
        for img in images:
            if img.ndim != 3 or img.shape[0] != 3:
                raise DataError(f"LightFieldPhotometric works on 3×H×W RGB images, got {tuple(img.shape)}")
            x = (img + offset) * gain
            luma = torch.tensordot(torch.tensor(LUMA, dtype=x.dtype), x, dims=1).expand_as(x)
            out.append((alpha * luma + (1 - alpha) * x).clamp(0, 1))
        return tuple(out)


def _photometric(value: LightFieldPhotometric | Mapping[str, float] | bool | None) -> LightFieldPhotometric | None:
    if value is None or value is False:
        return None
    if value is True:
        return LightFieldPhotometric()
    if isinstance(value, LightFieldPhotometric):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"brightness", "gain", "saturation"})
        if unknown:
            raise DataError(f"photometric: unknown amount(s) {unknown}; amounts: brightness, gain, saturation")
        return LightFieldPhotometric(**value)
    raise DataError(
        f"photometric must be a LightFieldPhotometric, a mapping of its amounts, a bool or None, got {value!r}"
    )


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

    - ``"lr"``: 3×h×w float32 in [0, 1], the target view downsampled by ``scale``;
    - ``"hr"``: 3×H×W, the target view, H = scale·h, W = scale·w;
    - ``"ref"``: 3×H×W, the reference view;
    - ``"view"``: the parallax index, max(|u - u'|, |v - v'|) between target (u, v) and reference
      (u', v') (i for the pair (i, i), (0, 0)); ``"views"``: int64 tensor (u, v, u', v'), block
      coordinates; ``"name"``: the file stem (str).

    Pairs: ``sampling="all"`` (evaluation) and ``pairs="diagonal"`` use target (i, i), i in
    ``views``, against reference (0, 0). ``sampling="random"`` with ``pairs="grid"`` (the
    default for training, as in the paper) draws the target and the reference uniformly among
    the ``block``×``block`` views, two different ones (the authors' code drew from indices
    0..6 only, an off-by-one of ``numpy.randint``; here every index of the block is reachable).

    Views are cropped bottom/right to a multiple of ``scale`` (376×541 → 376×540 for ×4), the
    LR image is made from the whole view, then ``crop`` (if given) cuts the same window out of
    lr/hr/ref, aligned to the scale grid.

    Args:
        root: folder of lenslet PNGs (see ``split``).
        scale: upscale factor, 2, 3, 4 or 8.
        views: the angular indices i the target view (i, i) is drawn from, each in
            0..block-1 (0 makes the target the reference view itself). Default 1..7. Diagonal
            pairs only (``pairs="grid"`` draws from the whole block).
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
        pairs: ``"grid"`` or ``"diagonal"`` (see Pairs above); default ``"grid"`` for
            ``sampling="random"``, and ``"diagonal"`` (the only choice) for ``sampling="all"``.
        photometric: the authors' photometric augmentation (:class:`LightFieldPhotometric`, a
            mapping of its amounts, ``True`` for its defaults), applied alike to target and
            reference before the LR image is made; None (default) for none.

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
        pairs: Literal["grid", "diagonal"] | None = None,
        photometric: LightFieldPhotometric | Mapping[str, float] | bool | None = None,
    ) -> None:
        if sampling not in ("all", "random"):
            raise DataError(f"sampling must be 'all' (evaluation) or 'random' (training), got {sampling!r}")
        if pairs is None:
            pairs = "grid" if sampling == "random" else "diagonal"
        if pairs not in ("grid", "diagonal"):
            raise DataError(
                f"pairs must be 'grid' (random views of the block) or 'diagonal' ((i, i) vs (0, 0)), got {pairs!r}"
            )
        if pairs == "grid" and sampling == "all":
            raise DataError(
                "pairs='grid' draws views at random: use it with sampling='random' (evaluation is diagonal)"
            )
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
        self.pairs: str = pairs
        if pairs == "grid" and block < 2:
            raise DataError("pairs='grid' needs block >= 2 (two different views)")
        self.photometric = _photometric(photometric)
        self._cache: tuple[int, Tensor] | None = None

    def __len__(self) -> int:
        return len(self.files) * (len(self.views) if self.sampling == "all" else 1)

    def _block_views(self, image_index: int) -> Tensor:
        """block×block×3×H×W uint8 views of the block of light field ``image_index``.

        The block of the last light field decoded is cached (a contiguous copy, not the whole
        lenslet image), so evaluation, which visits every view of one light field in a row,
        decodes each PNG once.
        """
        if self._cache is not None and self._cache[0] == image_index:
            return self._cache[1]
        path = self.files[image_index]
        try:
            all_views = lenslet_to_views(load_image_uint8(path), self.angular)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
        o, b = self.block_offset, self.block
        block = all_views[o : o + b, o : o + b].contiguous()
        self._cache = (image_index, block)
        return block

    def load_view(self, image_index: int, u: int, v: int) -> Tensor:
        """View (u, v) of the block (block coordinates, 0..block-1) as a uint8 3×H×W tensor."""
        if not (0 <= u < self.block and 0 <= v < self.block):
            raise DataError(f"view ({u}, {v}) is outside the {self.block}×{self.block} block")
        return self._block_views(image_index)[u, v]

    def load_views(self, image_index: int) -> dict[int, Tensor]:
        """Decode light field ``image_index``; return {i: view (i, i) of the block} as uint8
        3×H×W tensors, for i = 0 (the reference) and every i in ``views``."""
        return {i: self.load_view(image_index, i, i) for i in sorted({0, *self.views})}

    def _draw_pair(self, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        """Target (u, v) and a different reference (u', v'), uniform over the block."""
        n = self.block * self.block
        target = randint(0, n, generator)
        ref = randint(0, n - 1, generator)
        ref += ref >= target  # uniform over the n - 1 other views
        return (*divmod(target, self.block), *divmod(ref, self.block))

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        generator = self._generator(index)
        if self.sampling == "all":
            image_index, view = divmod(index, len(self.views))
            u, v, ur, vr = self.views[view], self.views[view], 0, 0
        elif self.pairs == "diagonal":
            image_index = index
            i = self.views[randint(0, len(self.views), generator)]
            u, v, ur, vr = i, i, 0, 0
        else:
            image_index = index
            u, v, ur, vr = self._draw_pair(generator)
        hr = crop_to_multiple(self.load_view(image_index, u, v).float().div_(255.0), self.scale)
        ref = crop_to_multiple(self.load_view(image_index, ur, vr).float().div_(255.0), self.scale)
        if self.photometric is not None:
            hr, ref = self.photometric(hr, ref, generator=generator)
        sample: Sample = {
            "lr": downsample(hr, self.scale),
            "ref": ref,
            "hr": hr,
            "view": max(abs(u - ur), abs(v - vr)),
            "views": torch.tensor([u, v, ur, vr]),
            "name": self.files[image_index].stem,
        }
        sample = self._crop(sample, generator, f"each view of light field {str(self.files[image_index])!r}")
        sample = {k: v.contiguous() if isinstance(v, Tensor) else v for k, v in sample.items()}
        return self._apply_transform(sample, generator)
