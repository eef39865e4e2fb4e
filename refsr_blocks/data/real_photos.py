"""Real photographs and real stereo pairs that installable packages ship, gathered offline.

The collection is pinned: :data:`PHOTOS` and :data:`STEREO_PAIRS` list every file, where it
comes from (a Python package's wheel or a Debian package), its stated licence and its split.
:func:`gather_real_data` copies them into a folder laid out for the datasets::

    ROOT/photos/{train,val,test}/<name>.png                       single photos (synthetic parallax)
    ROOT/stereo/{train,val,test}/<name>/{target,ref}.png          rectified pairs: left view, right view
    ROOT/manifest.json                                            origin, licence, split, SHA-256 per file

``photos/<split>`` feeds :class:`~refsr_blocks.data.SyntheticParallaxDataset` and
``stereo/<split>`` :class:`~refsr_blocks.data.PairFolderDataset` (the right view is the
reference; no ground-truth flow).

Sources: scikit-image's ``skimage/data``, scikit-learn's ``datasets/images``, matplotlib's
``mpl-data/sample_data`` (found in the installed packages), Debian's ``opencv-doc``
(``examples/data``) and the OAK-D pairs of PyPI's ``stereodemo`` wheel; the last two are
unpacked by ``scripts/fetch_real_data.sh``, which then calls this module.

**Held out.** Middlebury stereo and optical-flow images (:data:`HELD_OUT`: scikit-image's
motorcycle pair, OpenCV's Aloe pair and the RubberWhale and Basketball frames) are in no split:
no training, validation or model selection ever sees them; they are kept for final checks.
The splits are fixed here, so that no run can reshuffle test images into training.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .errors import DataError, DataNotFoundError
from .io import file_sha256, load_image, save_image

__all__ = [
    "HELD_OUT",
    "PHOTOS",
    "SPLITS",
    "STEREO_PAIRS",
    "PhotoEntry",
    "StereoEntry",
    "gather_real_data",
    "photo_folder",
    "stereo_folder",
]

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")

_SKIMAGE = "PyPI scikit-image (skimage/data)"
_SKLEARN = "PyPI scikit-learn (sklearn/datasets/images)"
_MPL = "PyPI matplotlib (matplotlib/mpl-data/sample_data)"
_OPENCV = "Debian opencv-doc 4.6.0 (usr/share/doc/opencv-doc/examples/data)"
_STEREODEMO = "PyPI stereodemo 0.7 (stereodemo/datasets/oak-d)"
_OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause (debian/copyright, Files: *; the image's own origin is not stated)"
_CC0 = "CC0"
_PD = "public domain"


@dataclass(frozen=True)
class PhotoEntry:
    """One photograph of the collection.

    Attributes:
        name: file stem in the gathered folder.
        source: package the file ships in.
        path: path inside that package's data folder.
        licence: the licence the package states for it.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    name: str
    source: str
    path: str
    licence: str
    split: Split


@dataclass(frozen=True)
class StereoEntry:
    """One rectified stereo pair (greyscale): left view = target, right view = reference."""

    name: str
    source: str
    left: str
    right: str
    licence: str
    split: Split


def _sk(name: str, path: str, licence: str, split: Split) -> PhotoEntry:
    return PhotoEntry(name, _SKIMAGE, path, licence, split)


def _cv(name: str, split: Split) -> PhotoEntry:
    return PhotoEntry(
        f"opencv_{name}", _OPENCV, f"{name}.jpg" if name not in _CV_PNG else f"{name}.png", _OPENCV_LICENCE, split
    )


_CV_PNG = ("smarties", "box_in_scene", "graf1")

#: The photographs, with their fixed split (about 70 / 15 / 15 %).
PHOTOS: tuple[PhotoEntry, ...] = (
    _sk("astronaut", "astronaut.png", f"{_PD} (NASA)", "train"),
    _sk("coffee", "coffee.png", f"{_CC0} (Rachel Michetti)", "test"),
    _sk("chelsea", "chelsea.png", f"{_CC0} (Stefan van der Walt)", "train"),
    _sk("rocket", "rocket.jpg", f"{_PD} (SpaceX)", "train"),
    _sk("camera", "camera.png", f"{_CC0} (Lav Varshney)", "train"),
    _sk("brick", "brick.png", f"{_CC0} (CC0Textures)", "train"),
    _sk("grass", "grass.png", f"{_CC0} (CC0Textures)", "train"),
    _sk("gravel", "gravel.png", f"{_CC0} (CC0Textures)", "val"),
    _sk("hubble_deep_field", "hubble_deep_field.jpg", f"{_PD} (NASA)", "train"),
    _sk("retina", "retina.jpg", "CC0 1.0 (Häggström)", "train"),
    _sk("coins", "coins.png", "no known copyright restrictions", "train"),
    _sk("clock_motion", "clock_motion.png", f"{_PD} (Stefan van der Walt)", "val"),
    _sk("ihc", "ihc.png", "no known copyright restrictions", "train"),
    PhotoEntry("sklearn_china", _SKLEARN, "china.jpg", "CC BY 2.0 (danielbuechele, Flickr)", "train"),
    PhotoEntry("sklearn_flower", _SKLEARN, "flower.jpg", "CC BY 2.0 (vultilion, Flickr)", "test"),
    PhotoEntry("mpl_grace_hopper", _MPL, "grace_hopper.jpg", f"{_PD} (US Navy)", "train"),
    _cv("apple", "train"),
    _cv("baboon", "train"),
    _cv("board", "train"),
    _cv("building", "test"),
    _cv("butterfly", "train"),
    _cv("fruits", "train"),
    _cv("home", "val"),
    _cv("leuvenA", "train"),
    _cv("graf1", "train"),
    _cv("messi5", "train"),
    _cv("orange", "train"),
    _cv("squirrel_cls", "test"),
    _cv("smarties", "train"),
    _cv("aero1", "val"),
    _cv("stuff", "train"),
    _cv("box_in_scene", "train"),
    _cv("starry_night", "train"),
)

_OAKD_LICENCE = "CC BY 4.0 (stereodemo's OAK-D captures)"

#: The 12 rectified OAK-D pairs of stereodemo (640×480, baseline 7.5 cm, f = 451 px: a
#: disparity of 34 px at 1 m, 68 px at 0.5 m), with their fixed split.
STEREO_PAIRS: tuple[StereoEntry, ...] = tuple(
    StereoEntry(f"oakd_{name}", _STEREODEMO, f"{name}_left.png", f"{name}_right.png", _OAKD_LICENCE, split)  # type: ignore[arg-type]
    for name, split in (
        ("bedroom_chair", "train"),
        ("corridor", "train"),
        ("cycles", "train"),
        ("desk", "test"),
        ("donkey_toy", "train"),
        ("kid_bedroom", "val"),
        ("living_room", "test"),
        ("pov_controllers", "train"),
        ("pov_hands", "val"),
        ("selfie", "train"),
        ("stairs", "test"),
        ("toy", "train"),
    )
)

#: Middlebury stereo / optical-flow images that the packages ship: never gathered into a split.
HELD_OUT: tuple[str, ...] = (
    "skimage/data/motorcycle_left.png",
    "skimage/data/motorcycle_right.png",
    "skimage/data/motorcycle_disp.npz",
    "opencv-doc/examples/data/aloeL.jpg",
    "opencv-doc/examples/data/aloeR.jpg",
    "opencv-doc/examples/data/aloeGT.png",
    "opencv-doc/examples/data/rubberwhale1.png",
    "opencv-doc/examples/data/rubberwhale2.png",
    "opencv-doc/examples/data/basketball1.png",
    "opencv-doc/examples/data/basketball2.png",
)


def _package_dir(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return folder if folder.is_dir() else None


def _source_dirs(opencv_dir: Path | None, stereodemo_dir: Path | None) -> dict[str, Path | None]:
    return {
        _SKIMAGE: _package_dir("skimage", "data"),
        _SKLEARN: _package_dir("sklearn", "datasets", "images"),
        _MPL: _package_dir("matplotlib", "mpl-data", "sample_data"),
        _OPENCV: opencv_dir,
        _STEREODEMO: stereodemo_dir,
    }


def _check_not_held_out(path: Path) -> None:
    if any(path.as_posix().endswith(held.split("/", 1)[1]) for held in HELD_OUT):
        raise DataError(f"{str(path)!r} is a held-out Middlebury image and must not enter a split")


def gather_real_data(
    root: str | Path,
    *,
    opencv_dir: str | Path | None = None,
    stereodemo_dir: str | Path | None = None,
    require_all: bool = True,
) -> dict[str, int]:
    """Copy the pinned collection into ``root`` (layout in the module docstring).

    Photos are written as RGB PNGs (greyscale ones replicated to three channels); stereo views
    keep their pixels. ``root/manifest.json`` records each file's source, path, licence,
    split and SHA-256 of the original file.

    Args:
        root: destination folder (created).
        opencv_dir: the unpacked ``opencv-doc`` ``examples/data`` folder.
        stereodemo_dir: the unpacked ``stereodemo/datasets/oak-d`` folder.
        require_all: raise if any pinned file is missing (else skip it and say so in the
            manifest's ``missing`` list).

    Returns:
        Counts ``{"photos": n, "stereo_pairs": m, "missing": k}``.

    Raises:
        DataNotFoundError: a source or file is missing and ``require_all`` is set.
    """
    root = Path(root)
    sources = _source_dirs(
        Path(opencv_dir) if opencv_dir is not None else None,
        Path(stereodemo_dir) if stereodemo_dir is not None else None,
    )
    manifest: dict[str, list[dict[str, str]]] = {"photos": [], "stereo_pairs": [], "missing": []}

    def locate(source: str, relative: str) -> Path | None:
        folder = sources[source]
        path = None if folder is None else folder / relative
        if path is not None and path.is_file():
            _check_not_held_out(path)
            return path
        if require_all:
            hint = "run scripts/fetch_real_data.sh" if source in (_OPENCV, _STEREODEMO) else "pip install it"
            raise DataNotFoundError(f"{relative!r} from {source} not found (looked in {folder}); {hint}")
        manifest["missing"].append({"source": source, "path": relative})
        return None

    for entry in PHOTOS:
        path = locate(entry.source, entry.path)
        if path is None:
            continue
        save_image(load_image(path), root / "photos" / entry.split / f"{entry.name}.png")
        manifest["photos"].append({**asdict(entry), "sha256": file_sha256(path)})
    for pair in STEREO_PAIRS:
        left, right = locate(pair.source, pair.left), locate(pair.source, pair.right)
        if left is None or right is None:
            continue
        folder = root / "stereo" / pair.split / pair.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(left, folder / "target.png")
        shutil.copyfile(right, folder / "ref.png")
        manifest["stereo_pairs"].append(
            {**asdict(pair), "sha256_left": file_sha256(left), "sha256_right": file_sha256(right)}
        )
    manifest["held_out"] = [{"path": p, "why": "Middlebury: final checks only"} for p in HELD_OUT]  # type: ignore[misc]
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return {k: len(manifest[k]) for k in ("photos", "stereo_pairs", "missing")}


def photo_folder(root: str | Path, split: Split) -> Path:
    """``root/photos/<split>``, checked to exist (see :func:`gather_real_data`)."""
    return _split_folder(root, "photos", split)


def stereo_folder(root: str | Path, split: Split) -> Path:
    """``root/stereo/<split>``, checked to exist (see :func:`gather_real_data`)."""
    return _split_folder(root, "stereo", split)


def _split_folder(root: str | Path, kind: str, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / kind / split
    if not folder.is_dir():
        raise DataNotFoundError(
            f"{str(folder)!r} does not exist; gather the data with scripts/fetch_real_data.sh {root}"
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    """``python -m refsr_blocks.data.real_photos ROOT [--opencv DIR] [--stereodemo DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m refsr_blocks.data.real_photos", description=gather_real_data.__doc__
    )
    parser.add_argument("root", help="destination folder")
    parser.add_argument("--opencv", help="unpacked opencv-doc examples/data folder")
    parser.add_argument("--stereodemo", help="unpacked stereodemo/datasets/oak-d folder")
    args = parser.parse_args(argv)
    counts = gather_real_data(args.root, opencv_dir=args.opencv, stereodemo_dir=args.stereodemo)
    print(f"gathered {counts['photos']} photos and {counts['stereo_pairs']} stereo pairs into {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
