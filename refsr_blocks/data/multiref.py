"""Datasets with K ≥ 1 references of any size: the CUFED5 layout and folders of (LR or HR, refs).

*CUFED5 layout* (:class:`CUFED5Dataset`, kind ``dataset`` name ``cufed5``): one flat folder,
input ``NNN_0.png`` (the HR image) and its references ``NNN_1.png`` … ``NNN_5.png`` (CUFED5's
similarity levels, 1 the most similar), any sizes::

    root/000_0.png  root/000_1.png … root/000_5.png
    root/001_0.png  …

*Reference folders* (:class:`ReferenceFolderDataset`, name ``ref_folder``): one sub-folder per
scene holding the image to super-resolve — ``hr.<ext>`` (the LR is made from it, so the
scene can be evaluated) or ``lr.<ext>`` (inference only, no ``"hr"`` in the item) — and one
or more references ``ref*.<ext>`` (``ref.png``, ``ref_1.png``, ``ref2.jpg``…, sorted by name)::

    root/<scene>/hr.png   root/<scene>/ref_1.png   root/<scene>/ref_2.png

Items: ``"lr"`` 3×h×w, ``"hr"`` 3×(s·h)×(s·w) (when known), ``"ref"`` the first reference
3×H_1×W_1, ``"refs"`` all of them (a list, sizes differ), ``"name"``. References are never
resized: models choose (attention matches any size; flow models apply their
``ref_policy``). Lists of different-size tensors do not batch: evaluate with batch size 1
(as :func:`~refsr_blocks.evaluation.evaluate` does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from ._dataset import RefSRDataset
from .augment import Sample
from .degradation import crop_to_multiple, downsample, matlab_downsample
from .errors import DataError, DataNotFoundError
from .io import IMAGE_EXTENSIONS, list_images, load_image

__all__ = ["LR_KERNELS", "CUFED5Dataset", "ReferenceFolderDataset", "make_lr"]

#: How the LR image is made from the HR one: torch's antialiased bicubic (PIL's kernel and
#: border handling) or MATLAB-style ``imresize`` (symmetric border).
LR_KERNELS = ("pil", "matlab")

_CUFED_NAME = re.compile(r"^(?P<scene>\d+)_(?P<level>\d+)$")


def make_lr(hr: Tensor, scale: int, kernel: str = "pil") -> Tensor:
    """The LR image of a C×H×W ``hr`` (H, W multiples of ``scale``) by ``kernel`` (:data:`LR_KERNELS`)."""
    if kernel == "pil":
        return downsample(hr, scale)
    if kernel == "matlab":
        return matlab_downsample(hr[None], scale)[0]
    raise DataError(f"lr_kernel must be one of {list(LR_KERNELS)}, got {kernel!r}")


class _MultiReference(RefSRDataset):
    """Shared item building: HR (cropped to a multiple of the scale) → LR, references as they are.

    ``root`` must be a folder; ``what`` names it in the error if it is not.
    """

    # The degradation's factors are 2, 3, 4 and 8 (check_scale); ``levels`` are file-name
    # numbers, not sizes.
    PARAM_BOUNDS = dict(scale=(2, 8))  # noqa: RUF012

    def __init__(
        self,
        root: str | Path,
        what: str,
        scale: int,
        seed: int | None,
        transform: Callable[..., Sample] | None,
        lr_kernel: str,
    ) -> None:
        super().__init__(scale, None, seed, transform, "center")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataNotFoundError(f"{what} {str(self.root)!r} does not exist")
        if lr_kernel not in LR_KERNELS:
            raise DataError(f"lr_kernel must be one of {list(LR_KERNELS)}, got {lr_kernel!r}")
        self.lr_kernel = lr_kernel
        self.items: list[tuple[str, Path, str, list[Path]]] = []  # (name, image, "hr"|"lr", refs)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        name, path, role, ref_paths = self.items[index]
        image = load_image(path)
        refs = [load_image(p) for p in ref_paths]
        if role == "hr":
            hr = crop_to_multiple(image, self.scale)
            sample: Sample = {"lr": make_lr(hr, self.scale, self.lr_kernel), "hr": hr}
        else:
            sample = {"lr": image}
        sample.update({"ref": refs[0], "refs": refs, "name": name})
        return self._apply_transform(sample, self._generator(index))


class CUFED5Dataset(_MultiReference):
    """The CUFED5 test layout: ``NNN_0`` is the HR input, ``NNN_1`` … ``NNN_5`` its references.

    Args:
        root: the flat folder.
        scale: upscale factor (4 in the literature).
        levels: which reference levels to load, in order (default all five; ``[1]`` gives
            the most similar reference only).
        lr_kernel: ``"pil"`` or ``"matlab"`` (see :func:`make_lr`).
        seed, transform: as other datasets.

    Raises:
        DataNotFoundError: no ``NNN_0`` image in ``root``.
        DataError: a scene lacks one of the requested levels.
    """

    def __init__(
        self,
        root: str | Path,
        scale: int = 4,
        *,
        levels: Sequence[int] = (1, 2, 3, 4, 5),
        lr_kernel: str = "pil",
        seed: int | None = None,
        transform: Callable[..., Sample] | None = None,
    ) -> None:
        super().__init__(root, "CUFED5 folder", scale, seed, transform, lr_kernel)
        levels = [int(v) for v in levels]
        if not levels or any(v < 1 for v in levels):
            raise DataError(f"levels must be reference levels >= 1, got {levels}")
        scenes: dict[str, dict[int, Path]] = {}
        for path in list_images(self.root):
            match = _CUFED_NAME.match(path.stem)
            if match:
                found = scenes.setdefault(match["scene"], {})
                level = int(match["level"])
                if level in found:
                    raise DataError(f"two files for {match['scene']}_{level}: {found[level].name}, {path.name}")
                found[level] = path
        inputs = sorted(s for s, found in scenes.items() if 0 in found)
        if not inputs:
            raise DataNotFoundError(
                f"no CUFED5 input (NNN_0.<ext>) in {str(self.root)!r}; the layout is NNN_0 (input) and "
                f"NNN_1 … NNN_5 (references), extensions {', '.join(IMAGE_EXTENSIONS)}"
            )
        for scene in inputs:
            missing = [v for v in levels if v not in scenes[scene]]
            if missing:
                raise DataError(f"CUFED5 scene {scene!r} in {str(self.root)!r} has no reference level(s) {missing}")
            self.items.append((scene, scenes[scene][0], "hr", [scenes[scene][v] for v in levels]))
        self.levels = levels


class ReferenceFolderDataset(_MultiReference):
    """Scenes of one image (``hr`` or ``lr``) and one or more references ``ref*`` (see the module docstring).

    Args:
        root: the folder of scene folders.
        scale: upscale factor.
        lr_kernel: how the LR is made from ``hr`` (see :func:`make_lr`).
        seed, transform: as other datasets.
    """

    def __init__(
        self,
        root: str | Path,
        scale: int = 4,
        *,
        lr_kernel: str = "pil",
        seed: int | None = None,
        transform: Callable[..., Sample] | None = None,
    ) -> None:
        super().__init__(root, "reference folder", scale, seed, transform, lr_kernel)
        for scene in sorted(p for p in self.root.iterdir() if p.is_dir()):
            images = list_images(scene)
            by_stem = {p.stem: p for p in images}
            refs = sorted(p for p in images if p.stem.startswith("ref"))
            roles = [r for r in ("hr", "lr") if r in by_stem]
            if len(roles) != 1 or not refs:
                raise DataError(
                    f"scene {str(scene)!r} must hold exactly one of hr.<ext> or lr.<ext> and at least one "
                    f"ref*.<ext>; found {sorted(by_stem)}"
                )
            self.items.append((scene.name, by_stem[roles[0]], roles[0], refs))
        if not self.items:
            raise DataNotFoundError(f"no scene folders in {str(self.root)!r}")
