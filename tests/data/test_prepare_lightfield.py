"""scripts/prepare_lightfield.py on small generated files: HDF5 in the authors' layout, lenslet PNGs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from refsr_blocks.data import LightFieldDataset, save_image, views_to_lenslet

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_lightfield.py"


@pytest.fixture(scope="module")
def prepare():
    spec = importlib.util.spec_from_file_location("prepare_lightfield", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_authors_h5_becomes_readable_lenslets(tmp_path, prepare):
    h5py = pytest.importorskip("h5py")
    g = torch.Generator().manual_seed(0)
    views = torch.randint(0, 256, (2, 8, 8, 3, 6, 10), generator=g, dtype=torch.uint8)
    src = tmp_path / "test_x4_x8.h5"
    with h5py.File(src, "w") as f:
        f["img_HR"] = views.numpy()
        f["img_LR_4"] = views[..., ::4, ::4].numpy()  # other arrays of their file are ignored
    out = tmp_path / "flowers" / "test"
    assert prepare.main(["h5", str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["test_x4_x8_00000.png", "test_x4_x8_00001.png"]
    assert (out / "SHA256SUMS").read_text().split()[1] == "test_x4_x8.h5"
    ds = LightFieldDataset(out, scale=2, angular=8, block=8, block_offset=0, views=range(8))
    for n in range(2):
        for i in range(8):
            assert torch.equal(ds.load_view(n, i, 3), views[n, i, 3])
    item = ds[1 * 8 + 5]
    assert item["views"].tolist() == [5, 5, 0, 0]
    torch.testing.assert_close(item["hr"], views[1, 5, 5].float() / 255)


def test_h5_errors(tmp_path, prepare, capsys):
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "bad.h5"
    with h5py.File(src, "w") as f:
        f["img_HR"] = torch.zeros(1, 14, 14, 3, 4, 4, dtype=torch.uint8).numpy()
    assert prepare.main(["h5", str(src), "--out", str(tmp_path / "o")]) == 2
    assert "expected N×8×8×3×H×W" in capsys.readouterr().err
    assert prepare.main(["h5", str(src), "--out", str(tmp_path / "o"), "--dataset", "/MDSR_4"]) == 2
    assert "no dataset '/MDSR_4'" in capsys.readouterr().err


def test_lenslet_pngs_are_split_into_list_files(tmp_path, prepare, capsys):
    src = tmp_path / "Flowers_8bit"
    for k in range(5):
        save_image(views_to_lenslet(torch.rand(14, 14, 3, 3, 4)), src / f"IMG_{k}.png")
    out = tmp_path / "flowers"
    assert prepare.main(["lenslet", str(src), "--out", str(out), "--test-count", "2", "--seed", "1"]) == 0
    train = (out / "train.txt").read_text().split()
    test = (out / "test.txt").read_text().split()
    assert len(train) == 3 and len(test) == 2 and not set(train) & set(test)
    assert [p.name for p in LightFieldDataset(out, split="test").files] == test
    assert len(LightFieldDataset(out, split="train", sampling="random")) == 3
    assert not (out / "val.txt").exists()
    # A validation split is drawn from the non-test light fields (the test set stays the same);
    # the three lists are disjoint.
    argv = ["lenslet", str(src), "--out", str(out), "--test-count", "2", "--seed", "1"]
    assert prepare.main([*argv, "--val-count", "1"]) == 0
    assert "2 training, 1 validation and 2 test" in capsys.readouterr().out
    lists = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert (out / "test.txt").read_text().split() == test and len(lists["val"]) == 1 and len(lists["train"]) == 2
    assert sorted(n for names in lists.values() for n in names) == sorted(f"IMG_{k}.png" for k in range(5))
    assert [p.name for p in LightFieldDataset(out, split="val").files] == lists["val"]
    assert prepare.main(["lenslet", str(src), "--out", str(out), "--test-count", "2", "--val-count", "3"]) == 2
    assert "val_count must be in 0..2" in capsys.readouterr().err
    (tmp_path / "mine.txt").write_text("# held out\nIMG_4.png\n")
    assert (
        prepare.main(
            ["lenslet", str(src), "--out", str(tmp_path / "b"), "--test-list", str(tmp_path / "mine.txt"), "--copy"]
        )
        == 0
    )
    assert (tmp_path / "b" / "test.txt").read_text() == "IMG_4.png\n"
    assert not (tmp_path / "b" / "IMG_4.png").is_symlink()
    save_image(torch.rand(3, 30, 30), src / "odd.png")
    assert prepare.main(["lenslet", str(src), "--out", str(out), "--test-count", "2"]) == 2
    assert "not a multiple of angular=14" in capsys.readouterr().err
