"""The data layer of refsr-blocks: datasets, degradation, augmentation and image sources.

Images are float32 tensors C×H×W (or B×C×H×W) with values in [0, 1]. Datasets return dicts
of tensors (plus ``int``/``str`` metadata) that ``torch.utils.data.default_collate`` batches::

    {"lr": 3×h×w, "ref": 3×H×W, "hr": 3×H×W, ...}        H = scale·h, W = scale·w

Flows follow the library's convention: channel 0 = x, channel 1 = y, in pixels, and
``hr[p] ≈ ref[p + flow[p]]`` (backward-warping ``ref`` with ``flow`` gives the target).

Modules:

- :mod:`~refsr_blocks.data.degradation`: :func:`downsample`, :func:`crop_to_multiple`.
- :mod:`~refsr_blocks.data.lightfield`: :class:`LightFieldDataset` (Flower / LFVideo lenslet PNGs).
- :mod:`~refsr_blocks.data.pairs`: :class:`PairFolderDataset` (folders of image pairs).
- :mod:`~refsr_blocks.data.multiref`: :class:`CUFED5Dataset`, :class:`ReferenceFolderDataset` (K references of any size).
- :mod:`~refsr_blocks.data.synthetic`: :class:`SyntheticParallaxDataset`, :func:`make_parallax_pair`.
- :mod:`~refsr_blocks.data.viewpoint`: :class:`ViewpointPairsDataset`, :func:`make_viewpoint_pair`
  (real-collection photos seen from another viewpoint: shifts, unrectified stereo, homographies,
  scale, rotation, partial overlap, occluding layers; fixed val/test sets per kind).
- :mod:`~refsr_blocks.data.augment`: flips/rotations, parallax shift, aligned crops.
- :mod:`~refsr_blocks.data.sources`: :func:`builtin_images`, :func:`load_image_folder`.

The three datasets are registered components of kind ``"dataset"`` (``synthetic``,
``lightfield``, ``pairs``), which is how training configurations name them; a plugin adds
one with ``register_component("dataset", NAME, factory)``, the factory taking ``scale``,
``seed`` and ``transform`` keywords as these do.
"""

from __future__ import annotations

from ..core.registry import register_component, register_kind
from .augment import (
    Compose,
    RandomCrop,
    RandomDihedral,
    RandomParallaxShift,
    center_crop,
    dihedral,
    hflip,
    random_crop,
    random_dihedral,
    random_parallax_shift,
    rot90,
    shift_reference,
    vflip,
)
from .degradation import SUPPORTED_SCALES, crop_to_multiple, downsample
from .disparity import invert_displacement, random_layered_disparity
from .errors import DataError, DataNotFoundError
from .io import list_images, load_image, save_image
from .lightfield import LightFieldDataset, lenslet_to_views, views_to_lenslet
from .multiref import CUFED5Dataset, ReferenceFolderDataset
from .pairs import PairFolderDataset, find_pairs
from .photometric import PhotometricJitter
from .procedural import procedural_image
from .sources import builtin_image_source, builtin_images, load_image_folder
from .synthetic import ParallaxPair, SyntheticParallaxDataset, make_parallax_pair, synthesize_parallax
from .viewpoint import ViewpointPairsDataset, make_viewpoint_pair

register_kind(
    "dataset",
    model_part=False,
    doc="RefSR data: factory(scale=, seed=, transform=, ...) -> dataset of {'lr', 'ref', 'hr', ...} dicts",
)
register_component("dataset", "synthetic", SyntheticParallaxDataset)
register_component("dataset", "lightfield", LightFieldDataset)
register_component("dataset", "pairs", PairFolderDataset)
register_component("dataset", "cufed5", CUFED5Dataset)
register_component("dataset", "ref_folder", ReferenceFolderDataset)
register_component("dataset", "viewpoint_pairs", ViewpointPairsDataset)

__all__ = [
    "SUPPORTED_SCALES",
    "CUFED5Dataset",
    "Compose",
    "DataError",
    "DataNotFoundError",
    "LightFieldDataset",
    "PairFolderDataset",
    "ParallaxPair",
    "PhotometricJitter",
    "RandomCrop",
    "RandomDihedral",
    "RandomParallaxShift",
    "ReferenceFolderDataset",
    "SyntheticParallaxDataset",
    "ViewpointPairsDataset",
    "builtin_image_source",
    "builtin_images",
    "center_crop",
    "crop_to_multiple",
    "dihedral",
    "downsample",
    "find_pairs",
    "hflip",
    "invert_displacement",
    "lenslet_to_views",
    "list_images",
    "load_image",
    "load_image_folder",
    "make_parallax_pair",
    "make_viewpoint_pair",
    "procedural_image",
    "random_crop",
    "random_dihedral",
    "random_layered_disparity",
    "random_parallax_shift",
    "rot90",
    "save_image",
    "shift_reference",
    "synthesize_parallax",
    "vflip",
    "views_to_lenslet",
]
