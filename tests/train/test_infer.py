"""Sliding-window inference: agrees with whole-image inference, covers borders, checks inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refsr_blocks import build_model
from refsr_blocks.components.upsamplers.bicubic import BicubicUpsampler
from refsr_blocks.core.errors import InputError
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.inference.tiling import blend_window, count_tiles, default_windowing, super_resolve, tile_starts


class PointwiseRefSR(nn.Module):
    """Nearest upsampling blended with the reference: every output pixel depends on one
    LR pixel and one reference pixel, so tiling cannot change anything."""

    upscale = 2

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return 0.7 * F.interpolate(lr, scale_factor=2, mode="nearest") + 0.3 * ref


class BicubicRefSR(nn.Module):
    """Bicubic upsampling plus a 3×3 convolution of the reference: a small receptive field."""

    upscale = 2

    def __init__(self) -> None:
        super().__init__()
        self.up = BicubicUpsampler(2, clamp=False)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.up(lr) + 0.1 * self.conv(ref)


class Ones(nn.Module):
    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return torch.ones_like(ref)


def _pair(h: int, w: int, scale: int = 2, batch: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(h * 1000 + w)
    return torch.rand(batch, 3, h, w, generator=g), torch.rand(batch, 3, h * scale, w * scale, generator=g)


@pytest.mark.parametrize("blend", ["linear", "mean"])
def test_pointwise_model_tiles_exactly(blend) -> None:
    lr, ref = _pair(37, 53, batch=2)  # 74×106: not multiples of the stride
    whole = PointwiseRefSR()(lr, ref)
    tiled = super_resolve(PointwiseRefSR(), lr, ref, window=32, stride=16, blend=blend, progress=False)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


def test_small_receptive_field_agrees_closely() -> None:
    torch.manual_seed(0)
    model = BicubicRefSR()
    lr, ref = _pair(40, 56)
    with torch.no_grad():
        whole = model(lr, ref)
    tiled = super_resolve(model, lr, ref, window=48, stride=24, progress=False)
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)).item() > 45
    # away from window seams (distance > receptive field), the values are identical
    torch.testing.assert_close(tiled[..., :20, :20], whole[..., :20, :20], rtol=0, atol=1e-6)


def test_tiny_crossnet_psnr_within_005_db_of_whole_image() -> None:
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=2, scales=3, channels=8, **{"flow.width": 0.125}).eval()
    hr = torch.rand(1, 3, 1, 1) * 0.2 + 0.4 + 0.2 * torch.rand(1, 3, 96, 160)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bilinear", antialias=True)
    ref = torch.roll(hr, shifts=3, dims=-1)
    with torch.no_grad():
        whole = model(lr, ref)
    tiled = super_resolve(model, lr, ref, window=64, stride=32, progress=False)
    assert abs(psnr(tiled, hr).item() - psnr(whole, hr).item()) < 0.05


def test_image_smaller_than_the_window_is_one_call() -> None:
    torch.manual_seed(0)
    model = BicubicRefSR()
    lr, ref = _pair(10, 14)
    with torch.no_grad():
        whole = model(lr, ref)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    tiled = super_resolve(model, lr, ref, window=512, stride=256, progress=False)
    assert calls == [torch.Size([1, 3, 10, 14])]
    assert torch.equal(tiled, whole)


def test_every_pixel_is_covered_at_odd_sizes() -> None:
    for h, w in [(7, 9), (33, 17), (50, 64)]:
        lr, ref = _pair(h, w)
        out = super_resolve(Ones(), lr, ref, window=24, stride=10, progress=False)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, torch.ones_like(out))


def test_tile_layout() -> None:
    assert tile_starts(1000, 512, 256) == [0, 256, 488]
    assert tile_starts(512, 512, 256) == [0]
    assert tile_starts(100, 512, 256) == [0]
    assert count_tiles(1000, 1000) == 9
    weights = blend_window(96, 32)  # ramps over 32 pixels at each end, flat in the middle
    assert weights.min() > 0 and weights.max() == 1 and torch.equal(weights, weights.flip(0))
    # two windows overlapping by 32 pixels cross-fade: their weights sum to 1 in the overlap
    torch.testing.assert_close(weights[64:] + weights[:32], torch.ones(32))
    assert torch.equal(blend_window(16, 8, "mean"), torch.ones(16))


@pytest.mark.parametrize(
    ("window", "stride", "message"),
    [
        (33, 16, "window=33 must be a multiple of the upscale factor 2"),
        (32, 15, "stride=15 must be a multiple"),
        (32, 64, "must not exceed window"),
        (0, 16, "positive"),
    ],
)
def test_bad_windows_are_rejected(window, stride, message) -> None:
    lr, ref = _pair(8, 8)
    with pytest.raises(InputError, match=message):
        super_resolve(PointwiseRefSR(), lr, ref, window=window, stride=stride, progress=False)


def test_bad_inputs_are_rejected() -> None:
    """Library errors (InputError, still a ValueError) that say what was expected."""
    lr, ref = _pair(8, 8)
    with pytest.raises(InputError, match="integer multiple"):
        super_resolve(PointwiseRefSR(), lr, ref[..., :15, :], progress=False)
    lr4, ref4 = _pair(8, 8, scale=4)
    with pytest.raises(InputError, match="upscales by 2: for a 8×8 LR image the reference must be 16×16, got 32×32"):
        super_resolve(PointwiseRefSR(), lr4, ref4, progress=False)
    with pytest.raises(InputError, match="blend"):
        super_resolve(PointwiseRefSR(), lr, ref, blend="max", progress=False)
    with pytest.raises(ValueError):
        super_resolve(PointwiseRefSR(), lr, ref[..., :15, :], progress=False)


class PointwiseRefSR3(PointwiseRefSR):
    upscale = 3

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return 0.7 * F.interpolate(lr, scale_factor=3, mode="nearest") + 0.3 * ref


def test_default_windows_are_crossnets_rounded_to_the_scale() -> None:
    assert default_windowing(2) == default_windowing(4) == default_windowing(8) == (512, 256)
    assert default_windowing(3) == (510, 255)
    # ×3 with the defaults: 600×630 outputs need several windows, which must be multiples of 3
    model = PointwiseRefSR3()
    lr, ref = _pair(200, 210, scale=3)
    whole = model(lr, ref)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape[-2:])))
    out = super_resolve(model, lr, ref, progress=False)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)
    assert set(calls) == {(170, 170)} and len(calls) == count_tiles(600, 630, 510, 255) == 4


def test_mode_is_restored_and_output_is_a_normal_tensor() -> None:
    model = BicubicRefSR().train()
    lr, ref = _pair(8, 8)
    out = super_resolve(model, lr, ref, window=8, stride=4, progress=False)
    assert model.training
    out += 1  # not an inference-mode tensor
