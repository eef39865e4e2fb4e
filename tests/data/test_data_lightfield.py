"""LightFieldDataset: lenslet decoding, view selection, sampling modes, crops, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from refsr_blocks.data import (
    DataError,
    DataNotFoundError,
    LightFieldDataset,
    RandomDihedral,
    downsample,
    lenslet_to_views,
    save_image,
    views_to_lenslet,
)
from refsr_blocks.data.lightfield import LightFieldPhotometric

A = 14  # angular samples, as in Flower / LFVideo
H, W = 16, 22  # view size: W not a multiple of 4, like 541


def _views(seed: int) -> torch.Tensor:
    """A×A×3×H×W views on the 8-bit grid, each distinct."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (A, A, 3, H, W), generator=g).float() / 255


@pytest.fixture
def lf_root(tmp_path):
    """A folder with two lenslet PNGs written from known views; returns (root, {stem: views})."""
    known = {}
    for k, stem in enumerate(("flower_a", "flower_b")):
        views = _views(k)
        save_image(views_to_lenslet(views), tmp_path / f"{stem}.png")
        known[stem] = views
    return tmp_path, known


def test_lenslet_layout_pixel_y_a_plus_u():
    views = torch.arange(A * A * 1 * 2 * 3, dtype=torch.float32).reshape(A, A, 1, 2, 3)
    lenslet = views_to_lenslet(views)
    assert lenslet.shape == (1, 2 * A, 3 * A)
    for u, v, y, x in ((0, 0, 0, 0), (3, 5, 1, 2), (13, 2, 0, 1)):
        assert lenslet[0, y * A + u, x * A + v] == views[u, v, 0, y, x]
    torch.testing.assert_close(lenslet_to_views(lenslet, A), views)


def test_views_come_back_exactly_from_a_png(lf_root):
    root, known = lf_root
    ds = LightFieldDataset(root, scale=2, views=range(0, 8))
    assert ds.files[0].stem == "flower_a"
    for i in range(8):
        got = ds.load_views(0)[i].float() / 255
        torch.testing.assert_close(got, known["flower_a"][3 + i, 3 + i])  # central block starts at 3


def test_item_contents_and_shapes(lf_root):
    root, known = lf_root
    ds = LightFieldDataset(root, scale=4)
    assert len(ds) == 2 * 7
    item = ds[7 + 4]  # second light field, fifth view of 1..7
    assert item["name"] == "flower_b" and item["view"] == 5
    hr_expected = known["flower_b"][3 + 5, 3 + 5][..., :, :20]  # cropped to a multiple of 4
    ref_expected = known["flower_b"][3, 3][..., :, :20]
    torch.testing.assert_close(item["hr"], hr_expected)
    torch.testing.assert_close(item["ref"], ref_expected)
    torch.testing.assert_close(item["lr"], downsample(hr_expected, 4))
    assert item["lr"].shape == (3, 4, 5) and item["hr"].shape == (3, 16, 20)
    for key in ("lr", "hr", "ref"):
        assert item[key].dtype == torch.float32 and item[key].min() >= 0 and item[key].max() <= 1


def test_block_offset_is_a_parameter(lf_root):
    root, known = lf_root
    ds = LightFieldDataset(root, scale=2, block_offset=0, views=[7])
    item = ds[0]
    torch.testing.assert_close(item["ref"], known["flower_a"][0, 0])
    torch.testing.assert_close(item["hr"], known["flower_a"][7, 7])
    with pytest.raises(DataError, match=r"block_offset must be an int in 0\.\.6"):
        LightFieldDataset(root, block_offset=7)


def test_all_sampling_enumerates_every_image_view_pair(lf_root):
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=2, sampling="all")
    pairs = [(ds[k]["name"], ds[k]["view"]) for k in range(len(ds))]
    assert pairs == [(n, v) for n in ("flower_a", "flower_b") for v in range(1, 8)]


def test_random_sampling_draws_every_angular_index_including_7(lf_root):
    """Diagonal training pairs draw i in 1..7 uniformly (index 7 included)."""
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=2, sampling="random", seed=0, pairs="diagonal")
    assert len(ds) == 2
    drawn = []
    for epoch in range(60):
        ds.set_epoch(epoch)
        drawn += [ds[0]["view"], ds[1]["view"]]
    assert set(drawn) == set(range(1, 8))
    counts = torch.bincount(torch.tensor(drawn), minlength=8)[1:]
    assert counts.min() >= 5  # 120 draws over 7 values: roughly uniform


def test_random_sampling_with_global_rng_also_reaches_7(lf_root):
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=2, sampling="random", pairs="diagonal")
    torch.manual_seed(0)
    assert {ds[0]["view"] for _ in range(100)} == set(range(1, 8))


def test_seeded_items_are_reproducible(lf_root):
    root, _ = lf_root
    kwargs = {"scale": 4, "sampling": "random", "crop": (8, 12), "seed": 123}
    a, b = LightFieldDataset(root, **kwargs), LightFieldDataset(root, **kwargs)
    for k in range(2):
        ia, ib = a[k], b[k]
        assert ia["view"] == ib["view"]
        torch.testing.assert_close(ia["hr"], ib["hr"])
    c = LightFieldDataset(root, **{**kwargs, "seed": 124})
    assert any(c[k]["view"] != a[k]["view"] or not torch.equal(c[k]["hr"], a[k]["hr"]) for k in range(2))


def test_crop_is_aligned_and_consistent(lf_root):
    root, known = lf_root
    ds = LightFieldDataset(root, scale=4, views=[2], crop=(8, 12), sampling="random", seed=5, pairs="diagonal")
    for epoch in range(5):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["hr"].shape == (3, 8, 12) and item["lr"].shape == (3, 2, 3)
        full_hr = known["flower_a"][5, 5][..., :20]
        full_lr = downsample(full_hr, 4)
        # find the crop window: it must lie on the scale grid, lr must be the same window of the full lr
        hits = [
            (t, x)
            for t in range(0, 16 - 8 + 1)
            for x in range(0, 20 - 12 + 1)
            if torch.equal(full_hr[:, t : t + 8, x : x + 12], item["hr"])
        ]
        assert len(hits) == 1
        t, x = hits[0]
        assert t % 4 == 0 and x % 4 == 0
        torch.testing.assert_close(item["ref"], known["flower_a"][3, 3][:, t : t + 8, x : x + 12])
        torch.testing.assert_close(item["lr"], full_lr[:, t // 4 : t // 4 + 2, x // 4 : x // 4 + 3])


def test_center_crop_in_evaluation_mode(lf_root):
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=4, crop=8)
    assert ds.crop_mode == "center"
    torch.testing.assert_close(ds[0]["hr"], ds[0]["hr"])
    assert ds[0]["hr"].shape == (3, 8, 8)


def test_split_folder_and_list_file(lf_root):
    root, _ = lf_root
    (root / "test").mkdir()
    (root / "flower_b.png").rename(root / "test" / "flower_b.png")
    assert [p.stem for p in LightFieldDataset(root, split="test").files] == ["flower_b"]
    (root / "train.txt").write_text("# training light fields\nflower_a.png\n\n")
    assert [p.stem for p in LightFieldDataset(root, split="train").files] == ["flower_a"]
    with pytest.raises(DataNotFoundError, match="split 'val' not found"):
        LightFieldDataset(root, split="val")
    assert [p.stem for p in LightFieldDataset(root, files=["test/flower_b.png"]).files] == ["flower_b"]


def test_collate_and_transform(lf_root):
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=4, crop=(8, 12), sampling="random", seed=0, transform=RandomDihedral())
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["lr"].shape[0] == 2 and batch["hr"].shape[1:] in ((3, 8, 12), (3, 12, 8))
    assert batch["view"].dtype == torch.int64 and len(batch["name"]) == 2


def test_errors(tmp_path, lf_root):
    root, _ = lf_root
    with pytest.raises(DataNotFoundError, match="does not exist"):
        LightFieldDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no light-field images"):
        LightFieldDataset(tmp_path / "empty")
    with pytest.raises(DataError, match="scale must be one of"):
        LightFieldDataset(root, scale=5)
    with pytest.raises(DataError, match=r"views must be .* ints in 0\.\.7"):
        LightFieldDataset(root, views=[1, 8])
    with pytest.raises(DataError, match="sampling must be"):
        LightFieldDataset(root, sampling="train")
    with pytest.raises(DataError, match="multiples of scale 4"):
        LightFieldDataset(root, crop=(10, 12))
    with pytest.raises(DataError, match="smaller than the crop 32×32"):
        LightFieldDataset(root, crop=32)[0]
    with pytest.raises(IndexError):
        LightFieldDataset(root)[14]
    bad = tmp_path / "bad"
    bad.mkdir()
    save_image(torch.rand(3, 30, 30), bad / "odd.png")
    with pytest.raises(DataError, match="not a multiple of angular=14"):
        LightFieldDataset(bad)[0]


def test_grid_pairs_draw_two_different_views_from_the_whole_block(lf_root):
    """Training pairs as in the paper: target and reference uniform over the 8×8 block, never equal."""
    root, known = lf_root
    ds = LightFieldDataset(root, scale=2, sampling="random", seed=0)
    assert ds.pairs == "grid"
    targets, refs = set(), set()
    for epoch in range(150):
        ds.set_epoch(epoch)
        item = ds[0]
        u, v, ur, vr = item["views"].tolist()
        assert (u, v) != (ur, vr)
        assert item["view"] == max(abs(u - ur), abs(v - vr))
        torch.testing.assert_close(item["hr"], known["flower_a"][3 + u, 3 + v])
        torch.testing.assert_close(item["ref"], known["flower_a"][3 + ur, 3 + vr])
        torch.testing.assert_close(item["lr"], downsample(item["hr"], 2))
        targets.add((u, v))
        refs.add((ur, vr))
    # 150 draws over 64 views: most are reached, including the last row/column (index 7).
    assert len(targets) > 40 and len(refs) > 40
    assert any(7 in t for t in targets) and any(7 in r for r in refs)


def test_evaluation_keeps_diagonal_pairs(lf_root):
    root, _ = lf_root
    ds = LightFieldDataset(root, scale=2)
    assert ds.pairs == "diagonal"
    assert [ds[k]["views"].tolist() for k in range(7)] == [[i, i, 0, 0] for i in range(1, 8)]
    with pytest.raises(DataError, match="use it with sampling='random'"):
        LightFieldDataset(root, pairs="grid")
    with pytest.raises(DataError, match="pairs must be"):
        LightFieldDataset(root, sampling="random", pairs="any")


def test_photometric_augmentation_changes_target_and_reference_alike(lf_root):
    root, known = lf_root
    aug = LightFieldPhotometric(brightness=0.0, gain=0.1, saturation=0.0)
    ds = LightFieldDataset(root, scale=2, sampling="random", pairs="diagonal", seed=3, photometric=aug)
    item = ds[0]
    i = item["view"]
    hr0, ref0 = known["flower_a"][3 + i, 3 + i], known["flower_a"][3, 3]
    # One gain for both views (the pixels not clipped give the same ratio).
    mask = (item["hr"] < 1) & (hr0 > 0.05)
    gain = (item["hr"][mask] / hr0[mask]).mean()
    assert abs(gain - 1) > 1e-4 and abs(gain - 1) <= 0.1 + 1e-6
    torch.testing.assert_close(item["hr"], (hr0 * gain).clamp(0, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(item["ref"], (ref0 * gain).clamp(0, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(item["lr"], downsample(item["hr"], 2))
    # Saturation: alpha = 1 would be the luma; here a blend towards it, identical in the three channels' luma.
    sat = LightFieldPhotometric(brightness=0.0, gain=0.0, saturation=0.3)
    img = torch.rand(3, 4, 5)
    (out,) = sat(img, generator=torch.Generator().manual_seed(0))
    luma = (torch.tensor([0.299, 0.587, 0.114])[:, None, None] * img).sum(0)
    torch.testing.assert_close(
        (torch.tensor([0.299, 0.587, 0.114])[:, None, None] * out).sum(0), luma, atol=1e-5, rtol=0
    )
    assert not torch.allclose(out, img)
    assert LightFieldDataset(root, sampling="random", photometric=True).photometric == LightFieldPhotometric()
    with pytest.raises(DataError, match="unknown amount"):
        LightFieldDataset(root, sampling="random", photometric={"contrast": 0.1})
    with pytest.raises(DataError, match="must be a number in"):
        LightFieldPhotometric(gain=1.5)
