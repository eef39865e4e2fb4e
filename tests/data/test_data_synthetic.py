"""Synthetic parallax pairs: flow convention, disparity properties, dataset behaviour."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from refsr_blocks.data import (
    DataError,
    PhotometricJitter,
    SyntheticParallaxDataset,
    downsample,
    invert_displacement,
    make_parallax_pair,
    random_layered_disparity,
    save_image,
    synthesize_parallax,
)


def _interior(shape, margin: int = 16) -> torch.Tensor:
    m = torch.zeros(shape[-2:], dtype=torch.bool)
    m[margin:-margin, margin:-margin] = True
    return m


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_flow_aligns_ref_to_target(smooth, warp, psnr, seed):
    """out[p] = ref[p + flow[p]] reproduces the target: > 30 dB, far better than no warp."""
    ref, flow = make_parallax_pair(smooth, 15.0, torch.Generator().manual_seed(seed), photometric=None)
    assert ref.shape == smooth.shape and flow.shape == (2, *smooth.shape[-2:])
    mask = _interior(smooth.shape)
    aligned = psnr(warp(ref, flow), smooth, mask)
    unaligned = psnr(ref, smooth, mask)
    assert aligned > 30
    assert aligned > unaligned + 10


def test_flow_convention_sign_on_a_constant_shift(smooth, warp, psnr):
    """Sign check with a single depth layer (a near-constant shift): content seen at p in the
    target is seen at p + flow[p] in the reference."""
    pair = synthesize_parallax(smooth, 6.0, torch.Generator().manual_seed(5), layers=(1, 1), photometric=None)
    fx = pair.flow[0]
    mask = _interior(smooth.shape)
    shift = int(fx[mask].mean().round())
    if shift == 0:
        pytest.skip("drew a near-zero disparity")
    # ref[y, x + shift] ≈ target[y, x]
    a = pair.ref[:, 16:-16, 16 + shift : smooth.shape[-1] - 16 + shift]
    b = smooth[:, 16:-16, 16:-16]
    assert psnr(a, b) > psnr(pair.ref[:, 16:-16, 16:-16], b) + 3


def test_valid_mask_marks_pixels_sampled_inside_the_reference(smooth):
    pair = synthesize_parallax(smooth, 15.0, torch.Generator().manual_seed(0), photometric=None)
    assert pair.valid.shape == (1, *smooth.shape[-2:]) and pair.valid.dtype == torch.float32
    x = torch.arange(smooth.shape[-1]) + pair.flow[0]
    y = torch.arange(smooth.shape[-2]).view(-1, 1) + pair.flow[1]
    inside = (x >= 0) & (x <= smooth.shape[-1] - 1) & (y >= 0) & (y <= smooth.shape[-2] - 1)
    assert torch.equal(pair.valid[0].bool(), inside)  # the default warp is one-to-one: all solved


def test_disparity_is_bounded_layered_and_mostly_horizontal():
    for seed in range(6):
        d = random_layered_disparity(96, 128, 15.0, torch.Generator().manual_seed(seed))
        assert d.shape == (2, 96, 128) and d.dtype == torch.float32
        assert d.abs().max() <= 15.0 + 1e-5
        assert d[1].abs().max() <= 0.1 * d[0].abs().max() + 0.75 + 1e-5
        grad = max((d[0, :, 1:] - d[0, :, :-1]).abs().max(), (d[0, 1:] - d[0, :-1]).abs().max())
        assert grad < 1.0  # one-to-one warp, solvable flow
    spread = torch.stack(
        [random_layered_disparity(32, 32, 15.0, torch.Generator().manual_seed(s))[0].mean() for s in range(40)]
    )
    assert spread.min() < -4 and spread.max() > 4  # both signs, up to ±15 px


def test_invert_displacement_solves_the_fixed_point(warp):
    d = random_layered_disparity(64, 80, 10.0, torch.Generator().manual_seed(0))
    flow, converged = invert_displacement(d)
    assert converged.all()
    torch.testing.assert_close(warp(d, flow), flow, atol=2e-3, rtol=0)
    with pytest.raises(DataError, match=r"2×H×W or B×2×H×W"):
        invert_displacement(torch.zeros(3, 4, 4))


def test_generator_determinism(textured):
    a = make_parallax_pair(textured, 10.0, torch.Generator().manual_seed(42))
    b = make_parallax_pair(textured, 10.0, torch.Generator().manual_seed(42))
    c = make_parallax_pair(textured, 10.0, torch.Generator().manual_seed(43))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_photometric_jitter_is_small_and_bounded(textured, psnr):
    g = torch.Generator().manual_seed(0)
    out = PhotometricJitter()(textured, generator=g)
    assert out.shape == textured.shape and out.min() >= 0 and out.max() <= 1
    assert 20 < psnr(out, textured) < 60
    torch.testing.assert_close(PhotometricJitter(0, 0, 0, 0, 0)(textured), textured)
    with pytest.raises(DataError, match=r"PhotometricJitter.noise must be a number in \[0, 1\)"):
        PhotometricJitter(noise=2)


def test_dataset_items(textured, warp, psnr):
    ds = SyntheticParallaxDataset([textured], scale=4, crop=(48, 64), max_disparity=8.0, seed=0, length=3)
    assert len(ds) == 3
    item = ds[1]
    assert set(item) == {"lr", "ref", "hr", "flow", "valid", "name"}
    assert item["lr"].shape == (3, 12, 16) and item["hr"].shape == (3, 48, 64) and item["ref"].shape == (3, 48, 64)
    assert item["flow"].shape == (2, 48, 64) and item["valid"].shape == (1, 48, 64)
    assert item["name"] == "image0#1"
    for key in ("lr", "ref", "hr"):
        assert item[key].dtype == torch.float32 and item[key].min() >= 0 and item[key].max() <= 1
    # hr is an aligned crop of the image, lr the same crop of the whole image's LR
    full_lr = downsample(textured, 4)
    hits = [
        (t, x)
        for t in range(0, 96 - 48 + 1, 4)
        for x in range(0, 128 - 64 + 1, 4)
        if torch.equal(textured[:, t : t + 48, x : x + 64], item["hr"])
    ]
    assert len(hits) == 1
    t, x = hits[0]
    torch.testing.assert_close(item["lr"], full_lr[:, t // 4 : t // 4 + 12, x // 4 : x // 4 + 16])
    # the flow aligns the reference (photometric jitter included, textured image: lower bar)
    mask = item["valid"][0].bool() & _interior(item["hr"].shape, 4)
    assert psnr(warp(item["ref"], item["flow"]), item["hr"], mask) > psnr(item["ref"], item["hr"], mask) + 3


def test_dataset_determinism_and_epochs(textured):
    kwargs = {"scale": 4, "crop": 32, "max_disparity": 6.0, "length": 2}
    a = SyntheticParallaxDataset([textured], seed=1, **kwargs)
    b = SyntheticParallaxDataset([textured], seed=1, **kwargs)
    for key in ("ref", "hr", "flow"):
        assert torch.equal(a[0][key], b[0][key])
    assert not torch.equal(a[0]["flow"], a[1]["flow"])
    before = a[0]["flow"]
    a.set_epoch(1)
    assert not torch.equal(a[0]["flow"], before)


def test_dataset_from_folder_full_images_and_collate(tmp_path, textured):
    for k in range(2):
        save_image(textured[:, : 40 + 4 * k, :50], tmp_path / f"img{k}.png")
    ds = SyntheticParallaxDataset(tmp_path, scale=2, max_disparity=4.0, seed=0)
    assert ds[0]["hr"].shape == (3, 40, 50) and ds[1]["hr"].shape == (3, 44, 50)
    assert ds[0]["name"] == "img0#0"
    ds = SyntheticParallaxDataset(tmp_path, scale=2, crop=(16, 16), max_disparity=4.0, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["flow"].shape == (2, 2, 16, 16) and batch["lr"].shape == (2, 3, 8, 8)


def test_dataset_errors(tmp_path, textured):
    with pytest.raises(DataError, match=r"smaller than the crop 128×128"):
        SyntheticParallaxDataset([textured], crop=128)
    with pytest.raises(DataError, match="3 channels"):
        SyntheticParallaxDataset([textured[:1]])
    with pytest.raises(DataError, match="length must be"):
        SyntheticParallaxDataset([textured], length=0)
    with pytest.raises(DataError, match="max_disparity must be"):
        SyntheticParallaxDataset([textured], max_disparity=-1)
    with pytest.raises(DataError, match="layers must be"):
        SyntheticParallaxDataset([textured], layers=(3, 2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SyntheticParallaxDataset(tmp_path / "missing")
    with pytest.raises(DataError, match="no images"):
        SyntheticParallaxDataset(tmp_path)
    with pytest.raises(DataError, match="scale must be one of"):
        SyntheticParallaxDataset([textured], scale=16)


def test_global_shift_reaches_wide_baselines_and_stays_aligned(textured, warp, psnr):
    """A global offset moves the whole field beyond max_disparity; the flow still aligns the pair."""
    ds = SyntheticParallaxDataset(
        [textured], scale=4, crop=(48, 64), max_disparity=2.0, global_shift=20.0, photometric=None, seed=3, length=8
    )
    means = [float(ds[i]["flow"][0].mean()) for i in range(8)]
    assert max(abs(m) for m in means) > 6.0, "the offset must take the flow well past max_disparity"
    assert all(abs(m) <= 22.0 + 1e-3 for m in means)
    item = ds[int(torch.tensor(means).abs().argmax())]
    mask = item["valid"][0].bool() & _interior(item["hr"].shape, 4)
    assert mask.float().mean() > 0.3
    assert psnr(warp(item["ref"], item["flow"]), item["hr"], mask) > psnr(item["ref"], item["hr"], mask) + 3
    with pytest.raises(DataError, match="global_shift"):
        SyntheticParallaxDataset([textured], scale=4, global_shift=-1)


def test_photometric_amounts_as_plain_data(textured):
    """The dataset takes its jitter as a mapping of amounts (what a configuration holds); the
    default is PhotometricJitter's own default, written as plain data."""
    from refsr_blocks.data.photometric import DEFAULT_PHOTOMETRIC, photometric_jitter

    assert photometric_jitter(dict(DEFAULT_PHOTOMETRIC)) == PhotometricJitter()
    assert photometric_jitter({"noise": 0.0}) == PhotometricJitter(noise=0.0)
    assert photometric_jitter(None) is None
    kwargs = {"scale": 4, "crop": 32, "max_disparity": 4.0, "seed": 3}
    default = SyntheticParallaxDataset([textured], **kwargs)
    explicit = SyntheticParallaxDataset([textured], photometric=PhotometricJitter(), **kwargs)
    assert default.photometric == PhotometricJitter()
    assert torch.equal(default[0]["ref"], explicit[0]["ref"])
    off = SyntheticParallaxDataset(
        [textured], photometric={"gamma": 0, "contrast": 0, "brightness": 0, "color": 0, "noise": 0}, **kwargs
    )
    assert off.photometric == PhotometricJitter(0, 0, 0, 0, 0)
    with pytest.raises(DataError, match=r"unknown amount 'gama'. Did you mean 'gamma'\?"):
        SyntheticParallaxDataset([textured], photometric={"gama": 0.1}, **kwargs)
    with pytest.raises(DataError, match=r"noise must be a number in \[0, 1\)"):
        SyntheticParallaxDataset([textured], photometric={"noise": 3}, **kwargs)
