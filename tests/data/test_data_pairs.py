"""PairFolderDataset: both layouts, pairing, size checks, crops, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from refsr_blocks.data import DataError, DataNotFoundError, PairFolderDataset, downsample, find_pairs, save_image


def _img(seed: int, h: int = 20, w: int = 26) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g).float() / 255


@pytest.fixture
def scene_root(tmp_path):
    for k, scene in enumerate(("s1", "s0")):
        save_image(_img(2 * k), tmp_path / scene / "target.png")
        save_image(_img(2 * k + 1), tmp_path / scene / "ref.png")
    return tmp_path


@pytest.fixture
def split_root(tmp_path):
    for k, name in enumerate(("a", "b", "c")):
        save_image(_img(2 * k), tmp_path / "target" / f"{name}.png")
        save_image(_img(2 * k + 1), tmp_path / "ref" / f"{name}.png")
    return tmp_path


def test_scene_layout(scene_root):
    ds = PairFolderDataset(scene_root, scale=4)
    assert len(ds) == 2
    item = ds[0]
    assert item["name"] == "s0"
    torch.testing.assert_close(item["hr"], _img(2)[:, :20, :24])
    torch.testing.assert_close(item["ref"], _img(3)[:, :20, :24])
    torch.testing.assert_close(item["lr"], downsample(_img(2)[:, :20, :24], 4))
    assert item["lr"].shape == (3, 5, 6)


def test_split_layout_and_custom_names(split_root, tmp_path):
    ds = PairFolderDataset(split_root, scale=2)
    assert [ds[k]["name"] for k in range(len(ds))] == ["a", "b", "c"]
    (split_root / "target").rename(split_root / "left")
    (split_root / "ref").rename(split_root / "right")
    ds = PairFolderDataset(split_root, scale=2, target_name="left", ref_name="right")
    torch.testing.assert_close(ds[1]["ref"], _img(3))


def test_crop_and_collate(split_root):
    ds = PairFolderDataset(split_root, scale=4, crop=(8, 12), seed=0)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["hr"].shape == (3, 3, 8, 12) and batch["lr"].shape == (3, 3, 2, 3)
    assert batch["ref"].shape == (3, 3, 8, 12)
    again = next(iter(DataLoader(PairFolderDataset(split_root, scale=4, crop=(8, 12), seed=0), batch_size=3)))
    torch.testing.assert_close(batch["hr"], again["hr"])


def test_unmatched_names(split_root):
    save_image(_img(9), split_root / "target" / "d.png")
    with pytest.raises(DataError, match=r"pair up by name; without a reference: \['d'\]"):
        PairFolderDataset(split_root)


def test_incomplete_scene(scene_root):
    save_image(_img(9), scene_root / "s2" / "target.png")
    with pytest.raises(DataError, match=r"\['s2'\] .* lack a 'target' or a 'ref' image"):
        PairFolderDataset(scene_root)


def test_size_mismatch(scene_root):
    save_image(_img(9, 20, 30), scene_root / "s0" / "ref.png")
    with pytest.raises(DataError, match=r"pair 's0': target .* is 20×26 but reference .* is 20×30"):
        PairFolderDataset(scene_root)


def test_empty_missing_and_too_small(tmp_path, scene_root):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        PairFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match=r"no image pairs found .* Accepted layouts"):
        PairFolderDataset(tmp_path / "empty")
    with pytest.raises(DataError, match="smaller than the crop 32×32"):
        PairFolderDataset(scene_root, crop=32)
    with pytest.raises(DataError, match="scale must be one of"):
        PairFolderDataset(scene_root, scale=6)
    with pytest.raises(DataError, match="must differ"):
        find_pairs(scene_root, target_name="x", ref_name="x")
