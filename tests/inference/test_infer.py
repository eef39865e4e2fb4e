"""Sliding-window inference: agrees with whole-image inference, covers borders, checks inputs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refsr_blocks import build_model
from refsr_blocks.components.upsamplers.bicubic import BicubicUpsampler
from refsr_blocks.core.errors import InputError
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.inference.tiling import (
    SeamWarning,
    blend_window,
    count_tiles,
    default_windowing,
    plan_tiles,
    super_resolve,
    tile_starts,
    upsample_whole,
)


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


def _whole_and_tiled(model: torch.nn.Module, lr: torch.Tensor, ref: torch.Tensor, **tiling) -> tuple[torch.Tensor, ...]:
    """The model's output on the whole image, then through :func:`super_resolve` with ``tiling``."""
    with torch.no_grad():
        whole = model(lr, ref)
    return whole, super_resolve(model, lr, ref, progress=False, **tiling)


def test_small_receptive_field_agrees_closely() -> None:
    torch.manual_seed(0)
    whole, tiled = _whole_and_tiled(BicubicRefSR(), *_pair(40, 56), window=48, stride=24)
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)).item() > 45
    # away from window seams (distance > receptive field), the values are identical
    torch.testing.assert_close(tiled[..., :16, :16], whole[..., :16, :16], rtol=0, atol=1e-6)


def test_tiny_crossnet_psnr_within_005_db_of_whole_image() -> None:
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=2, scales=3, channels=8, **{"flow.width": 0.125}).eval()
    hr = torch.rand(1, 3, 1, 1) * 0.2 + 0.4 + 0.2 * torch.rand(1, 3, 96, 160)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bilinear", antialias=True)
    whole, tiled = _whole_and_tiled(model, lr, torch.roll(hr, shifts=3, dims=-1), window=64, stride=32)
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
    assert tile_starts(1000, 512, 256) == [0, 256, 488]  # the classic layout, still available
    assert tile_starts(512, 512, 256) == [0]
    # evenly spaced windows of equal length, overlapping by at least window - stride
    for size, window, stride, multiple, align in [
        (1000, 512, 448, 1, 1),
        (3840, 768, 704, 64, 4),
        (2160, 768, 704, 64, 4),
        (1081, 64, 48, 8, 1),
    ]:
        tiles = plan_tiles(size, window, stride, multiple=multiple, align=align)
        starts, lengths = [t[0] for t in tiles], {t[1] for t in tiles}
        assert len(lengths) == 1 and max(lengths) <= window and starts[0] == 0 and starts[-1] + max(lengths) == size
        assert all(start % align == 0 for start in starts)
        assert all(b - a <= stride for a, b in itertools.pairwise(starts)), "overlap below window - stride"
    assert plan_tiles(3840, 768, 704, multiple=64, align=4)[0][1] == 704  # a multiple of 64: no padding inside
    assert plan_tiles(100, 512, 256) == [(0, 100)]
    assert count_tiles(1000, 1000) == 4  # 2×2 windows of 532 (768 max, 64 overlap), not 3×3 of 512
    weights = blend_window(96, 32)  # ramps over 32 pixels at each end, flat in the middle
    assert weights.min() > 0 and weights.max() == 1 and torch.equal(weights, weights.flip(0))
    # two windows overlapping by 32 pixels cross-fade: their weights sum to 1 in the overlap
    torch.testing.assert_close(weights[64:] + weights[:32], torch.ones(32))
    assert torch.equal(blend_window(16, 8, "mean"), torch.ones(16))
    assert blend_window(10, 4, before=0)[0] == 1  # no ramp at an image border


def test_no_overlap_warns_about_seams() -> None:
    lr, ref = _pair(16, 16)
    with pytest.warns(SeamWarning, match="seams"):
        super_resolve(PointwiseRefSR(), lr, ref, window=16, stride=16, progress=False)


def test_the_upsampler_runs_once_and_its_strips_are_exact() -> None:
    """CrossNet-like models: the upsampler runs on the whole LR image (an MDSR's tail in strips
    with a halo, which must equal one call), and only fuse is tiled."""
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=2, scales=3, channels=8, **{"flow.width": 0.125}).eval()
    lr, ref = _pair(24, 32)
    with torch.no_grad():
        whole_up = model.upsampler(lr)
        strips = upsample_whole(model.upsampler, lr, strip_pixels=16 * 64)  # 8 LR rows per strip
    torch.testing.assert_close(strips, whole_up, rtol=0, atol=1e-6)
    calls = []
    model.upsampler.register_forward_hook(lambda m, i, o: calls.append("upsampler"))
    model.register_forward_hook(lambda m, i, o: calls.append("model"))
    super_resolve(model, lr, ref, window=32, stride=24, progress=False)
    assert calls == [], "the staged path calls neither the upsampler's forward nor the model's per window"


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
    with pytest.raises(InputError, match="upscales by 2: for a 8×8 LR image the reference must be 16×16, got 15×16"):
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


def test_default_windows_are_rounded_to_the_scale() -> None:
    assert default_windowing(2) == default_windowing(4) == default_windowing(8) == (768, 704)
    assert default_windowing(3) == (768, 702)
    # ×3 with the defaults: 1200×1260 outputs need several windows, which must be multiples of 3
    model = PointwiseRefSR3()
    lr, ref = _pair(400, 420, scale=3)
    whole = model(lr, ref)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape[-2:])))
    out = super_resolve(model, lr, ref, progress=False)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)
    assert len(calls) == count_tiles(1200, 1260, 768, 702) == 4
    assert all(h * 3 <= 768 and w * 3 <= 768 for h, w in calls)


def test_mode_is_restored_and_output_is_a_normal_tensor() -> None:
    model = BicubicRefSR().train()
    lr, ref = _pair(8, 8)
    out = super_resolve(model, lr, ref, window=8, stride=4, progress=False)
    assert model.training
    out += 1  # not an inference-mode tensor


def test_a_reference_of_another_size_reaches_every_window_whole_or_follows_the_policy() -> None:
    """An aligner that matches anywhere gets the whole reference in every window; a grid-bound
    model's reference is brought onto the output grid by its ref_policy, as its forward would."""
    from small import TINY_CROSSNET

    from refsr_blocks import build_model

    torch.manual_seed(0)
    lr, ref = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 60, 70)  # output 80×96, reference 60×70
    seen: list[tuple[int, ...]] = []
    matching = build_model(TINY_CROSSNET, aligner={"name": "attention", "params": {"match_level": 1}}).eval()
    matching.aligner.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(tuple(kwargs["refs"][0].shape)), with_kwargs=True
    )
    tiled = super_resolve(matching, lr, ref, window=48, stride=32, progress=False)
    assert tiled.shape == (1, 3, 80, 96) and len(seen) > 1
    assert set(seen) == {(1, 3, 60, 72)}  # the whole reference (padded to the pyramid's multiple) each time

    flow = build_model(TINY_CROSSNET).eval()  # flow_warp: ref_policy "resize" by default
    with torch.no_grad():
        whole = flow(lr, ref)
    torch.testing.assert_close(super_resolve(flow, lr, ref, window=96, progress=False), whole)
