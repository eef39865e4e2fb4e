"""Datasets from configuration entries.

An entry names a dataset ``kind`` and passes the rest as that dataset's constructor
parameters (checked against its signature), plus two conveniences:

- ``{kind: mix, parts: [ENTRY, ...], repeats: [1, ...]}``: several entries as one
  training set (:class:`~refsr_blocks.data.mixed.MixedDataset`: items without a
  ground-truth flow get a zero one marked invalid);
- ``augment: {dihedral: true, parallax_shift: 15}``: random flips/quarter turns and
  CrossNet's random reference shift, applied per item with the item's own generator;
- for ``kind: synthetic``, ``images`` may be a folder, a list of files, or
  ``{builtin: auto|procedural|skimage, count: 8, size: [384, 512], seed: 0, indices: [0, 2]}``
  for :func:`~refsr_blocks.data.builtin_images` (``indices`` picks some of them, which is how
  train and test sets are kept apart).

``photometric`` (synthetic) may be a mapping of :class:`~refsr_blocks.data.PhotometricJitter`
amounts or ``null``. The ``scale`` is the model's upscale factor; an entry may repeat it but
not contradict it.

Example:
    >>> entry = {"kind": "synthetic", "images": {"builtin": "procedural", "count": 2, "size": [64, 64]},
    ...          "crop": 32, "length": 3}
    >>> ds = build_dataset(entry, scale=4, default_seed=0)
    >>> len(ds), tuple(ds[0]["lr"].shape)
    (3, (3, 8, 8))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch.utils.data import Dataset

from ..data import (
    Compose,
    DataError,
    DataNotFoundError,
    LightFieldDataset,
    PairFolderDataset,
    PhotometricJitter,
    RandomDihedral,
    RandomParallaxShift,
    SyntheticParallaxDataset,
    builtin_images,
)
from ..data.mixed import MixedDataset
from ..registry import closest
from .config import ConfigError

__all__ = ["DATASET_KINDS", "VAL_SEED", "build_dataset", "check_dataset_entry"]

#: Seed of validation and test sets whose entry sets none (fixed, so that runs compare).
VAL_SEED = 0

#: Dataset kinds a configuration entry may name.
DATASET_KINDS: dict[str, type] = {
    "synthetic": SyntheticParallaxDataset,
    "lightfield": LightFieldDataset,
    "pairs": PairFolderDataset,
}
#: Constructor parameters the configuration does not set directly.
_NOT_SETTABLE = ("self", "transform")
_AUGMENT_KEYS = ("dihedral", "parallax_shift")
_BUILTIN_KEYS = ("builtin", "count", "size", "seed", "indices")
_TUPLE_PARAMS = ("crop", "layers", "size")


def _unknown(path: str, key: str, accepted: list[str], what: str) -> ConfigError:
    hint = closest(str(key), accepted)
    did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
    return ConfigError(f"{path}.{key}", f"unknown {what}.{did_you_mean} Accepted: {', '.join(accepted)}.")


def _parameters(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return [name for name in sig.parameters if name not in _NOT_SETTABLE]


_MIX_KEYS = ("kind", "parts", "repeats")


def _check_mix_entry(entry: Mapping[str, Any], path: str) -> None:
    for key in entry:
        if key not in _MIX_KEYS:
            raise _unknown(path, key, list(_MIX_KEYS), "key of a 'mix' dataset")
    parts = entry.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{path}.parts", f"expected a non-empty list of dataset entries, got {parts!r}")
    for i, part in enumerate(parts):
        check_dataset_entry(part, f"{path}.parts[{i}]")


def check_dataset_entry(entry: Any, path: str) -> None:
    """Check the keys of a dataset entry (values are checked when the dataset is built)."""
    if isinstance(entry, Mapping) and entry.get("kind") == "mix":
        return _check_mix_entry(entry, path)
    if not isinstance(entry, Mapping):
        raise ConfigError(path, f"expected a mapping with a 'kind' ({', '.join(DATASET_KINDS)}), got {entry!r}")
    kind = entry.get("kind")
    if kind not in DATASET_KINDS:
        hint = closest(str(kind), list(DATASET_KINDS))
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"{path}.kind", f"must be one of {', '.join(DATASET_KINDS)}, mix, got {kind!r}.{did_you_mean}"
        )
    accepted = _parameters(DATASET_KINDS[kind])
    for key in entry:
        if key not in ("kind", "augment", *accepted):
            raise _unknown(path, key, ["kind", "augment", *accepted], f"parameter of the {kind!r} dataset")
    augment = entry.get("augment")
    if augment is not None:
        if not isinstance(augment, Mapping):
            raise ConfigError(f"{path}.augment", f"expected a mapping ({', '.join(_AUGMENT_KEYS)}), got {augment!r}")
        for key in augment:
            if key not in _AUGMENT_KEYS:
                raise _unknown(f"{path}.augment", key, list(_AUGMENT_KEYS), "augmentation")
        if not isinstance(augment.get("dihedral", False), bool):
            raise ConfigError(f"{path}.augment.dihedral", f"expected true or false, got {augment['dihedral']!r}")
        shift = augment.get("parallax_shift", 0)
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ConfigError(f"{path}.augment.parallax_shift", f"expected an int >= 0 (pixels), got {shift!r}")
    images = entry.get("images")
    if isinstance(images, Mapping):
        for key in images:
            if key not in _BUILTIN_KEYS:
                raise _unknown(f"{path}.images", key, list(_BUILTIN_KEYS), "key of a builtin image source")
        if "builtin" not in images:
            raise ConfigError(f"{path}.images.builtin", "required: 'auto', 'procedural' or 'skimage'")


def _builtin(images: Mapping[str, Any], path: str) -> list[Any]:
    options = {k: images[k] for k in ("count", "seed") if k in images}
    if "size" in images:
        size = images["size"]
        options["size"] = tuple(size) if isinstance(size, list) else size
    try:
        found = builtin_images(images["builtin"], **options)
    except (DataError, DataNotFoundError) as err:
        raise ConfigError(f"{path}.images", str(err)) from None
    indices = images.get("indices")
    if indices is None:
        return found
    if not isinstance(indices, list) or not all(isinstance(i, int) and 0 <= i < len(found) for i in indices):
        raise ConfigError(
            f"{path}.images.indices",
            f"expected a list of ints in 0..{len(found) - 1} ({len(found)} images), got {indices!r}",
        )
    return [found[i] for i in indices]


def _transform(augment: Mapping[str, Any] | None) -> Callable[..., Any] | None:
    if not augment:
        return None
    transforms: list[Callable[..., Any]] = []
    if augment.get("dihedral", False):
        transforms.append(RandomDihedral())
    if augment.get("parallax_shift", 0):
        transforms.append(RandomParallaxShift(int(augment["parallax_shift"])))
    return Compose(transforms) if transforms else None


def build_dataset(entry: Mapping[str, Any], *, scale: int, default_seed: int | None, path: str = "data") -> Dataset:
    """Build the dataset an entry describes.

    Args:
        entry: ``{"kind": ..., <parameters>}`` (see the module docstring).
        scale: the model's upscale factor.
        default_seed: the dataset's ``seed`` unless the entry sets one (an int makes item ``i``
            a pure function of (seed, epoch, i), which resumable training relies on).
        path: where the entry sits in the configuration, for error messages.

    Raises:
        ConfigError: naming ``path`` and the dataset's own message.
    """
    check_dataset_entry(entry, path)
    kind = entry["kind"]
    if kind == "mix":
        parts = [
            build_dataset(part, scale=scale, default_seed=default_seed, path=f"{path}.parts[{i}]")
            for i, part in enumerate(entry["parts"])
        ]
        try:
            return MixedDataset(parts, entry.get("repeats"))
        except DataError as err:
            raise ConfigError(path, str(err)) from None
    params = {k: v for k, v in entry.items() if k not in ("kind", "augment")}
    if "scale" in params and params["scale"] != scale:
        raise ConfigError(f"{path}.scale", f"is {params['scale']!r} but the model's upscale factor is {scale}")
    params["scale"] = scale
    params.setdefault("seed", default_seed)
    for key in _TUPLE_PARAMS:
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if isinstance(params.get("images"), Mapping):
        params["images"] = _builtin(params["images"], path)
    if kind == "synthetic" and isinstance(params.get("photometric"), Mapping):
        try:
            params["photometric"] = PhotometricJitter(**params["photometric"])
        except (TypeError, DataError) as err:
            raise ConfigError(f"{path}.photometric", str(err)) from None
    transform = _transform(entry.get("augment"))
    try:
        return DATASET_KINDS[kind](**params, transform=transform)
    except (DataError, DataNotFoundError, TypeError) as err:
        raise ConfigError(path, f"cannot build the {kind!r} dataset: {err}") from None
