"""RefSR pairs from a folder of stereo or multi-view image pairs.

Two layouts are accepted (``target``/``ref`` are the default names, see ``target_name`` and
``ref_name``; any extension in :data:`~refsr_blocks.data.io.IMAGE_EXTENSIONS`):

*Scene folders*: one sub-folder per pair::

    root/<scene>/target.png
    root/<scene>/ref.png

*Split folders*: two folders whose files pair up by name (the stem, so ``a.png`` pairs with
``a.jpg``)::

    root/target/<name>.png
    root/ref/<name>.png

The split layout is used when ``root/<target_name>/`` and ``root/<ref_name>/`` both exist,
otherwise the scene layout. The target (the image to super-resolve) and its reference must
have the same size. Middlebury-style stereo folders fit the scene layout with
``target_name="im0", ref_name="im1"``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._dataset import CropMode, RefSRDataset
from .augment import Sample
from .degradation import crop_to_multiple, downsample
from .errors import DataError, DataNotFoundError
from .io import IMAGE_EXTENSIONS, list_images, load_image, read_image_size

__all__ = ["PairFolderDataset", "find_pairs"]


def _by_stem(paths: list[Path], where: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise DataError(f"two images named {p.stem!r} in {str(where)!r}: {out[p.stem].name}, {p.name}")
        out[p.stem] = p
    return out


def find_pairs(root: str | Path, *, target_name: str = "target", ref_name: str = "ref") -> list[tuple[str, Path, Path]]:
    """List the (name, target path, reference path) pairs under ``root``, sorted by name.

    See the module docstring for the two layouts. Raises
    :class:`~refsr_blocks.data.errors.DataNotFoundError` when ``root`` is missing or holds no
    pair, :class:`~refsr_blocks.data.errors.DataError` when files do not pair up.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"pair folder {str(root)!r} does not exist or is not a directory")
    if target_name == ref_name:
        raise DataError(f"target_name and ref_name must differ, both are {target_name!r}")
    tdir, rdir = root / target_name, root / ref_name
    pairs: list[tuple[str, Path, Path]] = []
    if tdir.is_dir() and rdir.is_dir():
        targets, refs = _by_stem(list_images(tdir), tdir), _by_stem(list_images(rdir), rdir)
        only_t, only_r = sorted(targets.keys() - refs.keys()), sorted(refs.keys() - targets.keys())
        if only_t or only_r:
            raise DataError(
                f"files in {str(tdir)!r} and {str(rdir)!r} must pair up by name; "
                f"without a reference: {only_t[:5]}, without a target: {only_r[:5]}"
            )
        pairs = [(n, targets[n], refs[n]) for n in sorted(targets)]
    else:
        incomplete: list[str] = []
        for scene in sorted(p for p in root.iterdir() if p.is_dir()):
            found = _by_stem(list_images(scene), scene)
            t, r = found.get(target_name), found.get(ref_name)
            if t and r:
                pairs.append((scene.name, t, r))
            elif t or r:
                incomplete.append(scene.name)
        if incomplete:
            raise DataError(
                f"scene folders {incomplete[:5]} under {str(root)!r} lack a {target_name!r} or a {ref_name!r} image"
            )
    if not pairs:
        raise DataNotFoundError(
            f"no image pairs found in {str(root)!r}. Accepted layouts: "
            f"root/<scene>/{{{target_name},{ref_name}}}.<ext> or root/{target_name}/<name>.<ext> "
            f"with root/{ref_name}/<name>.<ext>; extensions {', '.join(IMAGE_EXTENSIONS)}"
        )
    return pairs


class PairFolderDataset(RefSRDataset):
    """RefSR samples from a folder of (target, reference) image pairs.

    Each item is a dict: ``"lr"`` 3×h×w (the target downsampled by ``scale``), ``"hr"``
    3×H×W (the target), ``"ref"`` 3×H×W, ``"name"`` (str), all float32 in [0, 1]. Images are
    cropped bottom/right to a multiple of ``scale`` before the LR image is made.

    Sizes are read from the file headers when the dataset is built, so mismatched pairs and
    images smaller than ``crop`` fail at once with the file names.

    Args:
        root: the folder (layouts in the module docstring).
        scale: upscale factor, 2, 3, 4 or 8.
        crop: HR crop (H, W) (multiples of ``scale``), an int for a square, or None.
        crop_mode: ``"random"`` (default) or ``"center"``.
        seed: None (torch's global RNG) or an int (items fixed per (seed, epoch, index)).
        transform: optional callable applied last to the item dict.
        target_name, ref_name: the file stems (scene layout) or folder names (split layout).
    """

    def __init__(
        self,
        root: str | Path,
        scale: int = 4,
        *,
        crop: int | tuple[int, int] | None = None,
        crop_mode: CropMode = "random",
        seed: int | None = None,
        transform: Callable[..., Sample] | None = None,
        target_name: str = "target",
        ref_name: str = "ref",
    ) -> None:
        super().__init__(scale, crop, seed, transform, crop_mode)
        self.root = Path(root)
        self.pairs = find_pairs(self.root, target_name=target_name, ref_name=ref_name)
        for name, t, r in self.pairs:
            ts, rs = read_image_size(t), read_image_size(r)
            if ts != rs:
                raise DataError(
                    f"pair {name!r}: target {str(t)!r} is {ts[0]}×{ts[1]} but reference "
                    f"{str(r)!r} is {rs[0]}×{rs[1]} (H×W); a pair must have one size"
                )
            if min(ts) < self.scale:
                raise DataError(f"pair {name!r}: {ts[0]}×{ts[1]} image is smaller than scale {self.scale}")
            if self.crop is not None:
                usable = (ts[0] - ts[0] % self.scale, ts[1] - ts[1] % self.scale)
                if usable[0] < self.crop[0] or usable[1] < self.crop[1]:
                    raise DataError(
                        f"pair {name!r} ({str(t)!r}) is {ts[0]}×{ts[1]} (H×W), smaller than the "
                        f"crop {self.crop[0]}×{self.crop[1]}; use a smaller crop or crop=None"
                    )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        generator = self._generator(index)
        name, tpath, rpath = self.pairs[index]
        hr = crop_to_multiple(load_image(tpath), self.scale)
        ref = crop_to_multiple(load_image(rpath), self.scale)
        if hr.shape != ref.shape:  # files changed since the dataset was built
            raise DataError(f"pair {name!r}: target {tuple(hr.shape)} and reference {tuple(ref.shape)} differ in size")
        sample: Sample = {"lr": downsample(hr, self.scale), "ref": ref, "hr": hr, "name": name}
        sample = self._crop(sample, generator, f"pair {name!r}")
        sample = {k: v.contiguous() if hasattr(v, "contiguous") else v for k, v in sample.items()}
        return self._apply_transform(sample, generator)
