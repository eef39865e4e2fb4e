"""downsample / crop_to_multiple: sizes, antialiasing, kernel, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from refsr_blocks.data import DataError, crop_to_multiple, downsample


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_output_size_unbatched_and_batched(scale):
    hr = torch.rand(3, 24 * scale // 2, 40 * scale // 2)
    lr = downsample(hr, scale)
    assert lr.shape == (3, hr.shape[1] // scale, hr.shape[2] // scale)
    assert lr.dtype == torch.float32
    batch = downsample(torch.stack([hr, hr.flip(-1)]), scale)
    assert batch.shape == (2, *lr.shape)
    torch.testing.assert_close(batch[0], lr)


def test_values_stay_in_unit_range_and_constants_are_kept():
    hr = (torch.rand(3, 64, 64) > 0.5).float()  # worst case for overshoot
    lr = downsample(hr, 4)
    assert lr.min() >= 0 and lr.max() <= 1
    torch.testing.assert_close(downsample(torch.full((3, 32, 32), 0.3), 4), torch.full((3, 8, 8), 0.3))


@pytest.mark.parametrize("period", [2.5, 3.0, 5.0])
def test_antialiasing_attenuates_stripes_above_nyquist(period):
    x = torch.arange(96, dtype=torch.float32)
    stripes = (0.5 + 0.5 * torch.cos(2 * torch.pi * x / period)).expand(3, 96, 96).contiguous()
    lr = downsample(stripes, 4)
    aliased = F.interpolate(stripes[None], size=(24, 24), mode="bicubic", antialias=False, align_corners=False)[0]
    # Inside (away from the border) the antialiased result is nearly flat, the naive one is not.
    assert lr[:, 2:-2, 2:-2].std() < 0.02
    assert aliased[:, 2:-2, 2:-2].std() > 5 * lr[:, 2:-2, 2:-2].std()
    assert aliased[:, 2:-2, 2:-2].std() > 0.1


def test_kernel_is_pil_bicubic():
    """antialias=True uses PIL's resampling (Keys cubic a=-0.5, stretched by the scale)."""
    rng = np.random.default_rng(0)
    img = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    pil = np.asarray(Image.fromarray(img).resize((24, 16), Image.BICUBIC)).astype(np.float64)
    ours = downsample(torch.from_numpy(img).permute(2, 0, 1).double() / 255, 4)
    ours = (ours.permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(ours - pil).max() <= 1


def test_kernel_weights_are_keys_a_minus_half():
    impulse = torch.zeros(1, 1, 1, 64, dtype=torch.float64)
    impulse[..., 32] = 1.0
    weights = F.interpolate(impulse, size=(1, 32), mode="bicubic", antialias=True, align_corners=False)[0, 0, 0]
    w = weights[14:18]  # outputs whose support contains input 32

    def keys(t, a):
        t = np.abs(t)
        return np.where(
            t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1, np.where(t < 2, a * (t**3 - 5 * t**2 + 8 * t - 4), 0)
        )

    centres = (np.arange(14, 18) + 0.5) * 2 - 0.5
    for a, expect_match in ((-0.5, True), (-0.75, False)):
        k = keys((32 - centres) / 2, a)
        ratio = k / k[2]
        assert np.allclose(w.numpy() / w[2].item(), ratio, atol=1e-4) == expect_match
    assert downsample(impulse.float().expand(1, 3, 4, 64).contiguous(), 2).shape == (1, 3, 2, 32)


def test_downsample_rejects_bad_input():
    with pytest.raises(DataError, match="multiples of scale 4"):
        downsample(torch.rand(3, 30, 32), 4)
    for bad in (5, 4.0, True, "4", 1):
        with pytest.raises(DataError, match=r"scale must be one of \[2, 3, 4, 8\]"):
            downsample(torch.rand(3, 32, 32), bad)
    with pytest.raises(DataError, match="C×H×W or B×C×H×W"):
        downsample(torch.rand(32, 32), 4)
    with pytest.raises(DataError, match="floating-point"):
        downsample(torch.zeros(3, 32, 32, dtype=torch.uint8), 4)
    with pytest.raises(DataError, match=r"torch\.Tensor"):
        downsample(np.zeros((3, 32, 32)), 4)
    assert issubclass(DataError, ValueError)


def test_crop_to_multiple():
    img = torch.rand(2, 3, 10, 13)
    out = crop_to_multiple(img, 4)
    assert out.shape == (2, 3, 8, 12)
    torch.testing.assert_close(out, img[..., :8, :12])  # top-left stays put
    assert crop_to_multiple(torch.rand(3, 376, 541), 4).shape == (3, 376, 540)
    assert crop_to_multiple(torch.rand(3, 376, 541), 8).shape == (3, 376, 536)
    with pytest.raises(DataError, match="nothing would be left"):
        crop_to_multiple(torch.rand(3, 3, 13), 4)
    with pytest.raises(DataError, match="int >= 1"):
        crop_to_multiple(img, 0)
    with pytest.raises(DataError, match="C×H×W or B×C×H×W"):
        crop_to_multiple(torch.rand(10, 13), 4)
