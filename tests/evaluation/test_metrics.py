"""PSNR and SSIM against known values."""

from __future__ import annotations

import math

import pytest
import torch

from refsr_blocks.evaluation.metrics import crop_border, psnr, ssim, to_y


def test_psnr_of_a_known_mse() -> None:
    target = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.5 + 0.25
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1] += 0.01  # MSE 1e-4 -> 40 dB
    torch.testing.assert_close(psnr(pred, target), torch.tensor([20.0, 40.0], dtype=torch.float64))


def test_psnr_per_image_and_on_y() -> None:
    target = torch.full((1, 3, 8, 8), 0.5)
    pred = target + torch.tensor([0.1, 0.0, 0.0]).view(1, 3, 1, 1)  # R only
    # RGB: MSE = 0.01 / 3; Y: error 0.299 * 0.1
    assert psnr(pred, target).item() == pytest.approx(10 * math.log10(3 / 0.01))
    assert psnr(pred, target, y_channel=True).item() == pytest.approx(-20 * math.log10(0.0299), rel=1e-5)
    assert psnr(target, target).item() == math.inf


def test_prediction_is_clamped_before_measuring() -> None:
    target = torch.ones(1, 3, 8, 8)
    assert psnr(target + 5.0, target).item() == math.inf


def test_border_crop() -> None:
    target = torch.zeros(1, 3, 12, 12)
    pred = target.clone()
    pred[..., :2, :] = 1.0  # errors only in the top two rows
    assert psnr(pred, target, border=2).item() == math.inf
    assert psnr(pred, target, border=1).item() < 20
    assert crop_border(pred, 3).shape == (1, 3, 6, 6)
    with pytest.raises(ValueError, match="leaves nothing"):
        crop_border(pred, 6)


def test_ssim_known_values() -> None:
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(ssim(x, x, y_channel=True), torch.ones(2, dtype=torch.float64))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    s = ssim(noisy, x)
    assert (s < 0.9).all() and (s > 0).all()
    assert (ssim((x + 0.05 * torch.randn_like(x)).clamp(0, 1), x) > s).all()


def test_metric_input_checks() -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="B×C×H×W"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        to_y(torch.rand(1, 1, 8, 8))
