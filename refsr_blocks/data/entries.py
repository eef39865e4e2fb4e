"""Datasets from configuration entries (the ``data`` section of a training configuration,
and ``refsr-blocks eval --data``).

An entry names a registered ``"dataset"`` component (``kind: synthetic``, ``lightfield``,
``pairs``, or one a plugin registered) and passes the rest as its constructor parameters,
checked against its signature like a model component's (:func:`~refsr_blocks.core.spec.check_params`),
plus three conveniences:

- ``{kind: mix, parts: [ENTRY, ...], repeats: [1, ...]}``: several entries as one
  training set (:class:`~refsr_blocks.data.mixed.MixedDataset`: items without a
  ground-truth flow get a zero one marked invalid);
- ``augment: {dihedral: true, parallax_shift: 15}``: random flips/quarter turns and
  CrossNet's random reference shift, applied per item with the item's own generator;
- ``images`` may be ``{builtin: auto|procedural|skimage, count: 8, size: [384, 512], seed: 0,
  indices: [0, 2]}`` for :func:`~refsr_blocks.data.builtin_images` (``indices`` picks some
  of them, which is how train and test sets are kept apart).

``scale`` is the model's upscale factor (an entry may repeat it but not contradict it),
``transform`` comes from ``augment``, and ``seed`` defaults to the run's. ``photometric``
(synthetic) is a mapping of :class:`~refsr_blocks.data.PhotometricJitter` amounts or ``null``.

Example:
    >>> entry = {"kind": "synthetic", "images": {"builtin": "procedural", "count": 2, "size": [64, 64]},
    ...          "crop": 32, "length": 3}
    >>> ds = build_dataset(entry, scale=4, default_seed=0)
    >>> len(ds), tuple(ds[0]["lr"].shape)
    (3, (3, 8, 8))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import dataclasses as pydantic_dataclasses
from torch.utils.data import Dataset

from ..core.errors import SpecError as ConfigError
from ..core.errors import UnknownComponentError
from ..core.registry import REGISTRY, Component
from ..core.spec import check_params
from ..core.validation import SECTION_CONFIG, Bool, Int, NonNegativeInt, PositiveInt, Str, join_path, validate
from .augment import Compose, RandomDihedral, RandomParallaxShift
from .errors import DataError, DataNotFoundError
from .mixed import MixedDataset
from .sources import builtin_images

__all__ = ["VAL_SEED", "build_dataset", "check_dataset_entry"]

#: Seed of validation and test sets whose entry sets none (fixed, so that runs compare).
VAL_SEED = 0

#: Keys of an entry that are not the dataset's parameters.
_ENTRY_KEYS = ("kind", "augment")
#: Parameters the configuration sets: ``scale`` (the model's) and ``transform`` (``augment``).
_SUPPLIED = ("scale", "transform")
#: Parameters given as YAML lists that the datasets take as tuples.
_TUPLE_PARAMS = ("crop", "layers")


@pydantic_dataclasses.dataclass(frozen=True, config=SECTION_CONFIG)
class Augment:
    """An entry's ``augment``: random transforms applied to every item.

    Attributes:
        dihedral: random flips and quarter turns (:class:`~refsr_blocks.data.RandomDihedral`).
        parallax_shift: CrossNet's random shift of the reference, up to this many pixels
            (:class:`~refsr_blocks.data.RandomParallaxShift`; 0: none).
    """

    dihedral: Bool = False
    parallax_shift: NonNegativeInt = 0

    def transform(self) -> Callable[..., Any] | None:
        """The item transform, or None when nothing is on."""
        transforms: list[Callable[..., Any]] = []
        if self.dihedral:
            transforms.append(RandomDihedral())
        if self.parallax_shift:
            transforms.append(RandomParallaxShift(self.parallax_shift))
        return Compose(transforms) if transforms else None


@pydantic_dataclasses.dataclass(frozen=True, config=SECTION_CONFIG)
class BuiltinImages:
    """``images: {builtin: ...}``: pictures from :func:`~refsr_blocks.data.builtin_images`.

    Attributes:
        builtin: ``"auto"``, ``"procedural"`` or ``"skimage"``.
        count, size, seed: passed on when given (procedural images).
        indices: keep only these images (by position).
    """

    builtin: Str
    count: PositiveInt | None = None
    size: tuple[PositiveInt, PositiveInt] | None = None
    seed: Int | None = None
    indices: tuple[NonNegativeInt, ...] | None = None

    def load(self, path: str) -> list[Any]:
        """The images (3×H×W tensors); errors name ``path`` (the entry's ``images``)."""
        options = {k: getattr(self, k) for k in ("count", "size", "seed") if getattr(self, k) is not None}
        try:
            found = builtin_images(self.builtin, **options)  # type: ignore[arg-type]
        except (DataError, DataNotFoundError) as err:
            raise ConfigError(path, str(err)) from None
        if self.indices is None:
            return found
        if any(i >= len(found) for i in self.indices):
            raise ConfigError(
                join_path(path, "indices"),
                f"expected ints in 0..{len(found) - 1} ({len(found)} images), got {list(self.indices)!r}",
            )
        return [found[i] for i in self.indices]


@pydantic_dataclasses.dataclass(frozen=True, config=SECTION_CONFIG)
class Mix:
    """``{kind: mix, parts: [...], repeats: [...]}`` (the parts are checked as entries)."""

    kind: Str
    parts: tuple[dict[Str, Any], ...]
    repeats: tuple[PositiveInt, ...] | None = None


def _component(entry: Mapping[str, Any], path: str) -> Component:
    """The registered dataset an entry's ``kind`` names."""
    names = REGISTRY.list("dataset")
    if "kind" not in entry:
        raise ConfigError(join_path(path, "kind"), f"required: one of {', '.join(names)}, mix")
    try:
        return REGISTRY.get("dataset", entry["kind"])
    except UnknownComponentError as err:
        raise ConfigError(join_path(path, "kind"), f"{err} Or 'mix' for several of them.") from None


def _parameters(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset's own parameters in an entry (without ``kind``, ``augment``, ``scale``)."""
    return {k: v for k, v in entry.items() if k not in (*_ENTRY_KEYS, "scale")}


def check_dataset_entry(entry: Any, path: str) -> None:
    """Check a dataset entry without building it: its kind, keys, value types and ``augment``.

    What only the dataset can check (files exist, crops fit the images) is checked when
    :func:`build_dataset` builds it.

    Raises:
        ConfigError: naming the key inside ``path`` (``data.train.crop``).
    """
    if not isinstance(entry, Mapping):
        kinds = ", ".join([*REGISTRY.list("dataset"), "mix"])
        raise ConfigError(path, f"expected a mapping with a 'kind' ({kinds}), got {entry!r}")
    if entry.get("kind") == "mix":
        mix = validate(Mix, dict(entry), path)
        if not mix.parts:
            raise ConfigError(join_path(path, "parts"), "expected a non-empty list of dataset entries")
        for i, part in enumerate(mix.parts):
            check_dataset_entry(part, join_path(path, f"parts[{i}]"))
        return
    component = _component(entry, path)
    if "scale" in entry:
        validate(PositiveInt, entry["scale"], join_path(path, "scale"))
    check_params(component, _parameters(entry), path, supplied=_SUPPLIED, supplier="the training configuration")
    validate(Augment, entry.get("augment") or {}, join_path(path, "augment"))
    if isinstance(entry.get("images"), Mapping):
        validate(BuiltinImages, dict(entry["images"]), join_path(path, "images"))


def build_dataset(entry: Mapping[str, Any], *, scale: int, default_seed: int | None, path: str = "data") -> Dataset:
    """Build the dataset an entry describes.

    Args:
        entry: ``{"kind": ..., <parameters>}`` (see the module docstring).
        scale: the model's upscale factor.
        default_seed: the dataset's ``seed`` unless the entry sets one (an int makes item ``i``
            a pure function of (seed, epoch, i), which resumable training relies on).
        path: where the entry sits in the configuration, for error messages.

    Raises:
        ConfigError: naming ``path`` (or a key inside it) and the dataset's own message.
    """
    check_dataset_entry(entry, path)
    if entry["kind"] == "mix":
        parts = [
            build_dataset(part, scale=scale, default_seed=default_seed, path=join_path(path, f"parts[{i}]"))
            for i, part in enumerate(entry["parts"])
        ]
        try:
            return MixedDataset(parts, entry.get("repeats"))
        except DataError as err:
            raise ConfigError(path, str(err)) from None
    if entry.get("scale", scale) != scale:
        raise ConfigError(join_path(path, "scale"), f"is {entry['scale']!r} but the model's upscale factor is {scale}")
    component = REGISTRY.get("dataset", entry["kind"])
    params = _parameters(entry)
    params.setdefault("seed", default_seed)
    for key in _TUPLE_PARAMS:
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if isinstance(params.get("images"), Mapping):
        params["images"] = validate(BuiltinImages, dict(params["images"])).load(join_path(path, "images"))
    transform = validate(Augment, entry.get("augment") or {}).transform()
    try:
        return component.factory(**params, scale=scale, transform=transform)
    except (DataError, DataNotFoundError, TypeError, ValueError) as err:
        raise ConfigError(path, f"cannot build the {entry['kind']!r} dataset: {err}") from None
