"""Training and evaluation pairs whose reference looks like a real second view.

From the photos of the real collection (:mod:`~refsr_blocks.data.real_photos`), each pair
shows one photo through two cameras: the target (the ground truth, its ×s reduction the LR
input) and a reference whose viewpoint differs by one *kind* of change
(:mod:`~refsr_blocks.data.view_kinds`: ``shift2d``, ``unrectified``, ``homography``,
``scale``, ``rotation``, ``partial_overlap``, ``layers``), rendered with the exact flow
(:mod:`~refsr_blocks.data.view_geometry`), then made to differ as another camera's image
does (:mod:`~refsr_blocks.data.view_degrade`: photometry, blur, noise, JPEG). The kind
``stereo`` serves the collection's real rectified stereo pairs instead.

Items (dicts; ``default_collate`` batches them when the references share one size)::

    "lr"    3×h×w     the target reduced by ``scale`` (the library's degradation)
    "hr"    3×H×W     the target
    "ref"   3×Hr×Wr   the reference; Hr×Wr = H×W unless ``ref_size="free"``
    "flow"  2×H×W     hr[p] ≈ ref[p + flow[p]], in the reference's own pixel grid
    "valid" 1×H×W     1 where that holds (inside the reference and not occluded there)
    "name"  str       "<kind>/<photo>#<n>": the kind of viewpoint change first

(The kind is part of the name rather than a key of its own, so that these items batch with
those of the other datasets in a ``mix``.)

Where the reference has another size, ``p + flow[p]`` is a position in the reference's
pixels, not the target's: warp it with :func:`~refsr_blocks.ops.warp.sample`. Real stereo
items carry no ground-truth flow: in training their ``flow`` is zero and ``valid`` all zero
(a flow loss ignores them, as :class:`~refsr_blocks.data.mixed.MixedDataset` does); fixed
stereo items have neither key.

Two modes. *Random* (training): item ``i`` draws a kind, a photo and a geometry from the
item's generator, a pure function of (``seed``, epoch, ``i``), so a resumed run sees the same
pairs. *Fixed* (validation and test, the default for the ``val`` and ``test`` splits):
``items_per_kind`` items per kind, item ``j`` of a kind made from photo ``j mod n`` with a
generator seeded by (``seed``, the kind's name, ``j``), so a kind's items are the same
whichever other kinds are listed, in every run. They are made on one thread (whatever the
caller's thread count) and their images rounded to 8 bits, as files would be, so that the
last bits of floating point rarely show; ``scripts/make_viewpoint_sets.py`` prints
fingerprints to compare between machines (docs/viewpoint-data.md).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._checks import check_fits, float_image
from ._dataset import RefSRDataset
from ._random import item_generator, randint, uniform_float
from .augment import Sample, random_crop
from .degradation import crop_to_multiple, downsample
from .errors import DataError
from .io import list_images, load_image, read_image_size
from .pairs import PairFolderDataset
from .real_photos import HELD_OUT, PHOTOS, photo_folder, stereo_folder
from .view_degrade import ReferenceDegradation
from .view_geometry import LayeredView, Placement, local_scale, render_pair, scene_box
from .view_kinds import DEFAULT_RANGES, GEOMETRIC_KINDS, ViewRanges, sample_view

__all__ = ["KINDS", "ViewpointPair", "ViewpointPairsDataset", "make_viewpoint_pair", "place_target"]

#: Every kind, in report order: the generated ones, then the real stereo pairs.
KINDS: tuple[str, ...] = (*GEOMETRIC_KINDS, "stereo")
REF_SIZES = ("same", "free")
_HELD_OUT_STEMS = frozenset(Path(p).stem.lower() for p in HELD_OUT)
_PHOTO_SPLITS = {p.name: p.split for p in PHOTOS}
#: Photos a dataset keeps decoded (more than the collection holds).
_CACHED_PHOTOS = 64


@dataclass(frozen=True)
class ViewpointPair:
    """One generated pair (see the module docstring for the tensors' meaning).

    Attributes:
        hr: 3×H×W. ref: 3×Hr×Wr. flow: 2×H×W. valid: 1×H×W. kind: its kind.
        view: the geometry; placement: where the target lies in the photo.
    """

    hr: Tensor
    ref: Tensor
    flow: Tensor
    valid: Tensor
    kind: str
    view: LayeredView
    placement: Placement


def place_target(
    photo_size: tuple[int, int], size: tuple[int, int], view: LayeredView, generator: torch.Generator | None
) -> Placement:
    """Where to put a target of ``size`` (H, W) in a photo of ``photo_size`` (Hp, Wp).

    Scale: photo pixels per target pixel, just enough that no reference pixel is finer than a
    photo pixel (a zoomed-in reference stays sharp, its target is the photo reduced) but no
    more than lets the target fit in the photo. Offset: drawn so that everything the
    reference sees lies in the photo when it can, else the target alone (the rest mirrored).
    """
    (hp, wp), (h, w) = photo_size, size
    fit = min((hp - 1) / max(h - 1, 1), (wp - 1) / max(w - 1, 1))
    centre = ((view.ref_size[1] - 1) / 2, (view.ref_size[0] - 1) / 2)
    finest = max(1.0 / local_scale(torch.linalg.inv(a), centre) for a in view.motions)
    # Within 10 % the reference is taken as sharp as the target (no resampled target).
    scale = min(finest if finest > 1.1 else 1.0, fit)
    box = scene_box(view, size)
    offset = []
    for extent, n, b0, b1 in ((wp - 1, w, box[0], box[2]), (hp - 1, h, box[1], box[3])):
        lo_t, hi_t = 0.0, extent - scale * (n - 1)  # the target inside the photo
        lo, hi = max(lo_t, -scale * b0), min(hi_t, extent - scale * b1)  # and all the reference sees
        if lo <= hi:
            value = uniform_float(lo, hi, generator)
        else:  # the reference sees beyond the photo wherever the target is: centre what it sees
            value = min(max((extent - scale * (b0 + b1)) / 2, lo_t), hi_t)
        offset.append(float(math.floor(value)) if scale == 1.0 else value)
    return Placement(scale=scale, offset=(offset[0], offset[1]))


def make_viewpoint_pair(
    photo: Tensor,
    kind: str,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    *,
    ranges: ViewRanges = DEFAULT_RANGES,
    free_size: bool = False,
    multiple: int = 8,
    degradation: ReferenceDegradation | None = None,
) -> ViewpointPair:
    """Make a target of ``size`` (H, W) and a reference of ``kind`` from ``photo`` (3×Hp×Wp in [0, 1]).

    ``degradation=None`` leaves the reference as rendered (what the flow describes exactly);
    the dataset applies a :class:`~refsr_blocks.data.view_degrade.ReferenceDegradation`.

    Example:
        >>> import torch
        >>> pair = make_viewpoint_pair(torch.rand(3, 96, 128), "rotation", (48, 64), torch.Generator().manual_seed(0))
        >>> tuple(pair.hr.shape), tuple(pair.ref.shape), tuple(pair.flow.shape), tuple(pair.valid.shape)
        ((3, 48, 64), (3, 48, 64), (2, 48, 64), (1, 48, 64))
    """
    photo = float_image(photo)
    if photo.ndim != 3 or photo.shape[0] != 3:
        raise DataError(f"photo must be 3×H×W (RGB), got shape {tuple(photo.shape)}")
    check_fits(tuple(photo.shape[-2:]), size, "the photo")
    view = sample_view(kind, size, generator, ranges, free_size=free_size, multiple=multiple)
    placement = place_target(tuple(photo.shape[-2:]), size, view, generator)  # type: ignore[arg-type]
    pair = render_pair(photo, size, view, placement, generator)
    ref = pair.ref if degradation is None else degradation(pair.ref, generator)
    return ViewpointPair(pair.hr, ref, pair.flow, pair.valid, kind, view, placement)


@contextmanager
def _one_thread(enabled: bool) -> Iterator[None]:
    """Run on one thread when ``enabled``: a parallel sum adds in an order that depends on the
    thread count, and a fixed set must not depend on the caller's."""
    threads = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if enabled:
            torch.set_num_threads(threads)


def _quantize(img: Tensor) -> Tensor:
    """Round to 8 bits, as an image file would."""
    return (img * 255).round() / 255


def _check_kinds(kinds: object) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, Sequence) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise DataError(f"kinds must be a non-empty list of kind names ({', '.join(KINDS)}), got {kinds!r}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise DataError(f"unknown kinds {unknown}; kinds: {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise DataError(f"kinds lists a kind twice: {list(kinds)}")
    return tuple(kinds)


def _check_photo(path: Path, split: str) -> None:
    """Refuse held-out Middlebury images and photos of the collection that belong to another split."""
    if path.stem.lower() in _HELD_OUT_STEMS:
        raise DataError(f"{str(path)!r} is a held-out Middlebury image (real_photos.HELD_OUT) and must never be used")
    home = _PHOTO_SPLITS.get(path.stem)
    if home is not None and home != split:
        raise DataError(f"{str(path)!r} is a {home!r} photo of the collection (real_photos.PHOTOS), not {split!r}")


class ViewpointPairsDataset(RefSRDataset):
    """Pairs with real-looking viewpoint changes from the real collection (module docstring).

    Args:
        root: the gathered collection (``scripts/fetch_real_data.sh``): ``root/photos/<split>``
            and, for the ``stereo`` kind, ``root/stereo/<split>``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        scale: upscale factor, 2, 3, 4 or 8.
        kinds: the kinds to make (default all, :data:`KINDS`).
        crop: the target's (H, W) (multiples of ``scale``; an int for a square). Fixed stereo
            items are whole pairs instead.
        fixed: fixed items (``items_per_kind`` per kind) or random draws; default: fixed for
            ``val`` and ``test``, random for ``train``. Fixed sets come from ``val``/``test`` only.
        items_per_kind: fixed items per generated kind (stereo: every pair of the split).
        length: random draws per epoch.
        max_shift, max_parallax: the pixel amounts of the geometry (:class:`ViewRanges`).
        ref_size: ``"same"`` (the reference is H×W, batchable) or ``"free"`` (``scale`` and
            ``partial_overlap`` references take their own size and aspect).
        p_photometric, p_blur, p_noise, p_jpeg: probabilities of the reference's differences
            (:class:`~refsr_blocks.data.view_degrade.ReferenceDegradation`).
        photometric: amounts of the photometric jitter (a mapping; default its defaults).
        seed: None (torch's global RNG) or an int; fixed sets use 0 when None.
        transform: optional callable applied last to the item dict (``ref_size="same"`` only).
    """

    PARAM_BOUNDS = {  # noqa: RUF012
        "scale": (2, 8),
        "crop": (8, 4096),
        "items_per_kind": (1, 10_000),
        "length": (1, 10_000_000),
        "max_shift": (0.0, 1024.0),
        "max_parallax": (0.0, 512.0),
        "p_photometric": (0.0, 1.0),
        "p_blur": (0.0, 1.0),
        "p_noise": (0.0, 1.0),
        "p_jpeg": (0.0, 1.0),
    }

    def __init__(
        self,
        root: str | Path = "data/real",
        split: str = "train",
        scale: int = 4,
        *,
        kinds: Sequence[str] = KINDS,
        crop: int | tuple[int, int] = (192, 192),
        fixed: bool | None = None,
        items_per_kind: int = 8,
        length: int = 1024,
        max_shift: float = 48.0,
        max_parallax: float = 16.0,
        ref_size: str = "same",
        p_photometric: float = 0.8,
        p_blur: float = 0.3,
        p_noise: float = 0.3,
        p_jpeg: float = 0.3,
        photometric: dict[str, float] | None = None,
        seed: int | None = None,
        transform: Callable[..., Sample] | None = None,
    ) -> None:
        if crop is None:
            raise DataError("crop must be the target's (H, W) or an int; viewpoint pairs need a size")
        super().__init__(scale, crop, seed, transform, "random")
        assert self.crop is not None
        self.split = split
        self.kinds = _check_kinds(kinds)
        self.fixed = split != "train" if fixed is None else fixed
        if not isinstance(self.fixed, bool):
            raise DataError(f"fixed must be true, false or null, got {fixed!r}")
        if self.fixed and split not in ("val", "test"):
            raise DataError(f"fixed sets come from the 'val' and 'test' photos only, not {split!r}")
        for name, value in (("items_per_kind", items_per_kind), ("length", length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"{name} must be an int >= 1, got {value!r}")
        for name, value in (("max_shift", max_shift), ("max_parallax", max_parallax)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise DataError(f"{name} must be a number >= 0 (pixels), got {value!r}")
        if ref_size not in REF_SIZES:
            raise DataError(f"ref_size must be one of {list(REF_SIZES)}, got {ref_size!r}")
        if ref_size == "free" and transform is not None:
            raise DataError("transform (augment) assumes a reference of the target's size; use ref_size='same'")
        self.items_per_kind, self.length = items_per_kind, length
        self.ranges = ViewRanges(float(max_shift), float(max_parallax))
        self.ref_size = ref_size
        self.degradation = ReferenceDegradation.from_options(
            p_photometric=p_photometric, p_blur=p_blur, p_noise=p_noise, p_jpeg=p_jpeg, photometric=photometric
        )
        self.photos: list[Path] = []
        if any(k in GEOMETRIC_KINDS for k in self.kinds):
            folder = photo_folder(root, split)  # type: ignore[arg-type]
            self.photos = list_images(folder)
            if not self.photos:
                raise DataError(f"no photos in {str(folder)!r}")
            for path in self.photos:
                _check_photo(path, split)
                check_fits(read_image_size(path), self.crop, f"photo {str(path)!r}")
        self.stereo: PairFolderDataset | None = None
        if "stereo" in self.kinds:
            self.stereo = PairFolderDataset(
                stereo_folder(root, split),
                self.scale,
                crop=None if self.fixed else self.crop,  # type: ignore[arg-type]
            )
        self._counts = [self._count(k) for k in self.kinds]
        self._cache: dict[int, Tensor] = {}

    def _photo(self, k: int) -> Tensor:
        """Photo ``k`` as 3×H×W float32; decoded photos are kept as 8 bits (the collection's 33
        photos take 25 MB so; decoding a PNG costs as much as rendering a pair)."""
        img8 = self._cache.get(k)
        if img8 is None:  # first use; the same conversion either way, so items do not depend on it
            img8 = (load_image(self.photos[k]) * 255).round().to(torch.uint8)
            if len(self._cache) < _CACHED_PHOTOS:
                self._cache[k] = img8
        return img8.float() / 255

    def _count(self, kind: str) -> int:
        if kind == "stereo":
            assert self.stereo is not None
            return len(self.stereo)
        return self.items_per_kind

    def __len__(self) -> int:
        return sum(self._counts) if self.fixed else self.length

    def set_epoch(self, epoch: int) -> None:
        """New random draws per epoch; fixed sets do not change."""
        if not self.fixed:
            super().set_epoch(epoch)

    def kind_indices(self, kind: str) -> range:
        """The item indices of ``kind`` in a fixed set."""
        if not self.fixed or kind not in self.kinds:
            raise DataError(f"kind_indices needs a fixed set that lists {kind!r} (kinds: {list(self.kinds)})")
        start = sum(self._counts[: self.kinds.index(kind)])
        return range(start, start + self._counts[self.kinds.index(kind)])

    def _locate(self, index: int) -> tuple[str, int, torch.Generator | None]:
        """(kind, number within the kind, generator) of item ``index``."""
        if not self.fixed:
            generator = self._generator(index)
            return self.kinds[randint(0, len(self.kinds), generator)], index, generator
        for kind, count in zip(self.kinds, self._counts):
            if index < count:
                seed = 0 if self.seed is None else self.seed
                return kind, index, item_generator(seed, zlib.crc32(kind.encode()), index)
            index -= count
        raise AssertionError("index was checked")

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        kind, number, generator = self._locate(index)
        with _one_thread(self.fixed):
            sample = self._stereo(number, generator) if kind == "stereo" else self._generated(kind, number, generator)
        sample = {k: v.contiguous() if isinstance(v, Tensor) else v for k, v in sample.items()}
        return self._apply_transform(sample, generator)

    def _generated(self, kind: str, number: int, generator: torch.Generator | None) -> Sample:
        assert self.crop is not None
        k = number % len(self.photos) if self.fixed else randint(0, len(self.photos), generator)
        pair = make_viewpoint_pair(
            self._photo(k),
            kind,
            self.crop,
            generator,
            ranges=self.ranges,
            free_size=self.ref_size == "free",
            multiple=math.lcm(8, self.scale),
            degradation=self.degradation,
        )
        hr, ref = (_quantize(pair.hr), _quantize(pair.ref)) if self.fixed else (pair.hr, pair.ref)
        return {
            "lr": downsample(hr, self.scale),
            "hr": hr,
            "ref": ref,
            "flow": pair.flow,
            "valid": pair.valid,
            "name": f"{kind}/{self.photos[k].stem}#{number}",
        }

    def _stereo(self, number: int, generator: torch.Generator | None) -> Sample:
        assert self.stereo is not None and self.crop is not None
        if self.fixed:  # the real pair as it is: whole, no changes, no ground-truth flow
            item = self.stereo[number]
            return {
                "lr": item["lr"],
                "hr": item["hr"],
                "ref": item["ref"],
                "name": f"stereo/{item['name']}",
            }
        k = randint(0, len(self.stereo), generator)
        name, tpath, rpath = self.stereo.pairs[k]
        hr = crop_to_multiple(load_image(tpath), self.scale)
        ref = crop_to_multiple(load_image(rpath), self.scale)
        cropped = random_crop(
            {"hr": hr, "ref": ref, "lr": downsample(hr, self.scale)}, self.crop, self.scale, generator
        )
        h, w = self.crop
        return {
            "lr": cropped["lr"],
            "hr": cropped["hr"],
            "ref": self.degradation(cropped["ref"], generator),
            "flow": torch.zeros(2, h, w),
            "valid": torch.zeros(1, h, w),
            "name": f"stereo/{name}#{number}",
        }
