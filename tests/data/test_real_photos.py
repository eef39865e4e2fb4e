"""The pinned real-photo collection: fixed splits, held-out Middlebury images, gathering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from refsr_blocks.data import DataError, DataNotFoundError, PairFolderDataset, SyntheticParallaxDataset, save_image
from refsr_blocks.data import real_photos as rp


def test_names_are_unique_and_every_split_is_used() -> None:
    names = [e.name for e in rp.PHOTOS] + [p.name for p in rp.STEREO_PAIRS]
    assert len(names) == len(set(names))
    for entries in (rp.PHOTOS, rp.STEREO_PAIRS):
        assert {e.split for e in entries} == set(rp.SPLITS)
    assert len(rp.STEREO_PAIRS) == 12


def test_no_entry_is_a_held_out_middlebury_image() -> None:
    held = {Path(h).name for h in rp.HELD_OUT}
    files = {e.path for e in rp.PHOTOS} | {p.left for p in rp.STEREO_PAIRS} | {p.right for p in rp.STEREO_PAIRS}
    assert not files & held
    assert {"motorcycle_left.png", "aloeL.jpg", "rubberwhale1.png"} <= held


def test_every_entry_states_a_licence_and_source() -> None:
    for entry in (*rp.PHOTOS, *rp.STEREO_PAIRS):
        assert entry.licence and entry.source, entry


def _fake_sources(tmp_path: Path) -> tuple[Path, Path]:
    """Tiny stand-ins for the opencv-doc and stereodemo folders (the real ones are fetched)."""
    opencv, oakd = tmp_path / "opencv", tmp_path / "oakd"
    for entry in rp.PHOTOS:
        if entry.source.startswith("Debian opencv-doc"):
            save_image(torch.rand(3, 40, 48), opencv / entry.path)
    for pair in rp.STEREO_PAIRS:
        save_image(torch.rand(3, 32, 40), oakd / pair.left)
        save_image(torch.rand(3, 32, 40), oakd / pair.right)
    return opencv, oakd


def test_gather_lays_out_splits_and_a_manifest(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    opencv, oakd = _fake_sources(tmp_path)
    counts = rp.gather_real_data(tmp_path / "real", opencv_dir=opencv, stereodemo_dir=oakd)
    assert counts == {"photos": len(rp.PHOTOS), "stereo_pairs": 12, "missing": 0}
    manifest = json.loads((tmp_path / "real" / "manifest.json").read_text())
    assert {m["name"] for m in manifest["photos"]} == {e.name for e in rp.PHOTOS}
    assert all(len(m["sha256"]) == 64 for m in manifest["photos"])
    for split in rp.SPLITS:
        photos = sorted(p.stem for p in rp.photo_folder(tmp_path / "real", split).iterdir())
        assert photos == sorted(e.name for e in rp.PHOTOS if e.split == split)
    # The folders feed the datasets directly.
    test_pairs = PairFolderDataset(rp.stereo_folder(tmp_path / "real", "test"), scale=4)
    assert len(test_pairs) == sum(p.split == "test" for p in rp.STEREO_PAIRS)
    photos = SyntheticParallaxDataset(rp.photo_folder(tmp_path / "real", "val"), scale=4, crop=32, max_disparity=4)
    assert photos[0]["hr"].shape == (3, 32, 32)


def test_missing_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="fetch_real_data.sh"):
        rp.gather_real_data(tmp_path / "real", opencv_dir=tmp_path / "nowhere", stereodemo_dir=tmp_path / "nowhere")
    counts = rp.gather_real_data(tmp_path / "partial", require_all=False)
    assert counts["missing"] >= 12 * 2  # the stereo pairs at least


def test_a_held_out_file_is_refused_even_if_listed(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="held-out Middlebury"):
        rp._check_not_held_out(tmp_path / "skimage" / "data" / "motorcycle_left.png")


def test_unknown_split_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="split must be one of"):
        rp.photo_folder(tmp_path, "training")  # type: ignore[arg-type]
    with pytest.raises(DataNotFoundError, match="fetch_real_data.sh"):
        rp.stereo_folder(tmp_path, "test")
