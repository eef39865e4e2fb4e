"""Flips, rotations, parallax shift and crops keep lr/ref/hr/flow consistent."""

from __future__ import annotations

import pytest
import torch

from refsr_blocks.data import (
    Compose,
    DataError,
    RandomCrop,
    RandomDihedral,
    RandomParallaxShift,
    center_crop,
    dihedral,
    downsample,
    hflip,
    make_parallax_pair,
    random_crop,
    random_dihedral,
    random_parallax_shift,
    rot90,
    shift_reference,
    synthesize_parallax,
    vflip,
)


@pytest.fixture(scope="module")
def sample(smooth):
    """A square synthetic sample with flow: hr 96×96, lr ×4."""
    hr = smooth[:, :96, :96].contiguous()
    pair = synthesize_parallax(hr, 6.0, torch.Generator().manual_seed(1), photometric=None)
    return {"lr": downsample(hr, 4), "ref": pair.ref, "hr": hr, "flow": pair.flow, "valid": pair.valid, "name": "x"}


def test_hflip_flips_width_not_colour_channels():
    """The authors' code flipped the channel axis; ours mirrors the width axis only."""
    img = torch.zeros(3, 2, 3)
    img[0, :, 0] = 1.0  # red in the left column
    img[2, :, 2] = 0.5  # half blue in the right column
    out = hflip({"hr": img})["hr"]
    assert torch.equal(out[0, :, 2], torch.ones(2)) and out[0, :, 0].sum() == 0  # red moved right
    assert torch.equal(out[2, :, 0], torch.full((2,), 0.5))  # blue moved left, still channel 2
    assert torch.equal(out.flip(0), img.flip(0).flip(-1))  # channel order intact
    assert not torch.equal(out, img.flip(0))  # not a colour flip
    assert torch.equal(vflip({"hr": img})["hr"], img.flip(-2))


@pytest.mark.parametrize("index", range(8))
def test_dihedral_keeps_flow_consistent_with_warping(sample, warp, psnr, index):
    """warp(T(ref), T(flow)) == T(warp(ref, flow)), and still matches T(hr)."""
    out = dihedral(sample, index)
    warped = warp(out["ref"], out["flow"])
    expected = dihedral({"img": warp(sample["ref"], sample["flow"])}, index)["img"]
    torch.testing.assert_close(warped, expected, atol=2e-5, rtol=0)
    inner = torch.zeros_like(out["valid"], dtype=torch.bool)
    inner[..., 8:-8, 8:-8] = True
    assert psnr(warped, out["hr"], out["valid"].bool() & inner) > 35
    # lr stays the degradation of hr (the bicubic kernel is symmetric)
    torch.testing.assert_close(out["lr"], downsample(out["hr"], 4), atol=1e-5, rtol=0)
    assert out["name"] == "x"


def test_rot90_vector_rule_and_shapes():
    flow = torch.zeros(2, 4, 6)
    flow[0] = 1.0  # pure +x displacement
    out = rot90({"hr": torch.rand(3, 4, 6), "lr": torch.rand(3, 2, 3), "flow": flow}, 1)
    assert out["hr"].shape == (3, 6, 4) and out["lr"].shape == (3, 3, 2)
    # +x turns into -y under a counter-clockwise quarter turn of the array
    assert torch.equal(out["flow"][0], torch.zeros(6, 4)) and torch.equal(out["flow"][1], -torch.ones(6, 4))
    torch.testing.assert_close(rot90(out, 3)["flow"], flow)
    with pytest.raises(DataError, match="quarter turns"):
        rot90({"hr": torch.rand(3, 4, 4)}, 1.0)


def test_hflip_negates_x_flow(sample):
    out = hflip(sample)
    torch.testing.assert_close(out["flow"][0], -sample["flow"][0].flip(-1))
    torch.testing.assert_close(out["flow"][1], sample["flow"][1].flip(-1))


def test_random_dihedral_reaches_all_eight_and_keeps_non_square_shapes(sample):
    g = torch.Generator().manual_seed(0)
    probe = {"hr": torch.arange(16.0).view(1, 4, 4)}
    seen = {tuple(random_dihedral(probe, g)["hr"].flatten().tolist()) for _ in range(200)}
    assert len(seen) == 8
    rect = {"hr": torch.rand(3, 4, 6), "lr": torch.rand(3, 2, 3)}
    for _ in range(20):
        assert random_dihedral(rect, g)["hr"].shape == (3, 4, 6)


def test_parallax_shift_moves_ref_and_updates_flow(sample, warp):
    out = shift_reference(sample, 5, -3)
    torch.testing.assert_close(out["ref"][:, 3:-3, 5:], sample["ref"][:, 6:, :-5])  # ref'[y, x] = ref[y + 3, x - 5]
    torch.testing.assert_close(out["flow"], sample["flow"] + torch.tensor([5.0, -3.0]).view(2, 1, 1))
    torch.testing.assert_close(out["hr"], sample["hr"])
    mask = out["valid"].bool() & sample["valid"].bool()
    assert out["valid"].sum() < sample["valid"].sum()  # some samples now fall off the frame
    a, b = warp(out["ref"], out["flow"]), warp(sample["ref"], sample["flow"])
    torch.testing.assert_close(a[:, mask[0]], b[:, mask[0]], atol=1e-5, rtol=0)


def test_parallax_shift_padding_and_range():
    ref = torch.arange(5.0).view(1, 1, 5).expand(1, 3, 5)
    assert shift_reference({"ref": ref}, 2, 0)["ref"][0, 0].tolist() == [0, 0, 0, 1, 2]
    assert shift_reference({"ref": ref}, 2, 0, padding="reflect")["ref"][0, 0].tolist() == [2, 1, 0, 1, 2]
    g = torch.Generator().manual_seed(0)
    shifts = set()
    for _ in range(400):
        out = random_parallax_shift({"ref": torch.zeros(1, 8, 8), "flow": torch.zeros(2, 8, 8)}, 15, g)
        shifts.add(tuple(out["flow"][:, 0, 0].int().tolist()))
    xs, ys = {s[0] for s in shifts}, {s[1] for s in shifts}
    assert min(xs) == -15 and max(xs) == 15 and min(ys) == -15 and max(ys) == 15
    with pytest.raises(DataError, match="padding must be one of"):
        shift_reference({"ref": ref}, 1, 1, padding="zeros")
    with pytest.raises(DataError, match="no 'ref'"):
        shift_reference({"hr": ref}, 1, 1)


def test_random_crop_is_aligned_and_exact(textured):
    hr = textured  # 96×128
    ref, flow = make_parallax_pair(hr, 4.0, torch.Generator().manual_seed(0))
    full = {"lr": downsample(hr, 4), "ref": ref, "hr": hr, "flow": flow}
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        out = random_crop(full, (32, 48), 4, g)
        assert out["hr"].shape == (3, 32, 48) and out["lr"].shape == (3, 8, 12) and out["flow"].shape == (2, 32, 48)
        matches = [
            (t, x)
            for t in range(0, 96 - 32 + 1)
            for x in range(0, 128 - 48 + 1)
            if torch.equal(hr[:, t : t + 32, x : x + 48], out["hr"])
        ]
        (t, x) = matches[0]
        assert t % 4 == 0 and x % 4 == 0
        assert torch.equal(out["lr"], full["lr"][:, t // 4 : t // 4 + 8, x // 4 : x // 4 + 12])
        assert torch.equal(out["ref"], ref[:, t : t + 32, x : x + 48])
    c = center_crop(full, 32, 4)
    assert torch.equal(c["hr"], hr[:, 32:64, 48:80])


def test_crop_errors(textured):
    full = {"lr": downsample(textured, 4), "hr": textured}
    with pytest.raises(DataError, match="smaller than the crop 128×128"):
        random_crop(full, 128, 4)
    with pytest.raises(DataError, match="multiples of scale 4"):
        random_crop(full, (30, 30), 4)
    with pytest.raises(DataError, match="lr must be 24×32"):
        random_crop({"lr": torch.rand(3, 10, 10), "hr": textured}, 16, 4)


def test_compose_is_deterministic_with_a_generator_and_works_on_batches(sample):
    t = Compose([RandomCrop(48, 4), RandomDihedral(), RandomParallaxShift(15)])
    a = t(sample, generator=torch.Generator().manual_seed(7))
    b = t(sample, generator=torch.Generator().manual_seed(7))
    for k in ("lr", "ref", "hr", "flow", "valid"):
        assert torch.equal(a[k], b[k])
    batch = {k: v.unsqueeze(0).expand(2, *v.shape) for k, v in sample.items() if isinstance(v, torch.Tensor)}
    out = t(batch, generator=torch.Generator().manual_seed(7))
    assert out["hr"].shape == (2, 3, 48, 48) and out["flow"].shape == (2, 2, 48, 48)
    torch.testing.assert_close(out["flow"][0], a["flow"])
    assert "RandomParallaxShift(max_shift=15" in repr(t)
