"""Flow utilities of ``refsr_blocks.ops.flow``: sizes, resizing, padding, error, colour."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchvision.utils import flow_to_image

from refsr_blocks.ops.flow import (
    crop_to,
    end_point_error,
    flow_pyramid,
    flow_to_color,
    level_size,
    pad_to_multiple,
    resize_flow,
)
from refsr_blocks.ops.warp import backward_warp, pixel_grid

sizes = st.integers(1, 40)


def _rand(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * scale


def _constant_flow(u: float, v: float, height: int, width: int, batch: int = 1) -> torch.Tensor:
    return torch.tensor([u, v]).view(1, 2, 1, 1).expand(batch, 2, height, width).contiguous()


def _affine_flow(height: int, width: int, seed: int) -> torch.Tensor:
    """``flow = a + B·p`` for random a, B: bilinear resampling reproduces it away from the border."""
    a = _rand(1, 2, 1, 1, seed=seed, scale=3.0)
    b = _rand(2, 2, seed=seed + 1, scale=0.5)
    grid = pixel_grid(height, width)
    return a + torch.einsum("ij,bjhw->bihw", b, grid)


# -- level sizes and pyramids -----------------------------------------------------------------


@given(height=st.integers(1, 5000), width=st.integers(1, 5000), level=st.integers(0, 8))
def test_level_size_is_ceil_of_halvings(height: int, width: int, level: int) -> None:
    assert level_size(height, width, level) == (-(-height // 2**level), -(-width // 2**level))


@pytest.mark.parametrize(("height", "width", "level"), [(0, 4, 0), (4, 4, -1)])
def test_level_size_rejects_bad_arguments(height: int, width: int, level: int) -> None:
    with pytest.raises(ValueError, match="level_size"):
        level_size(height, width, level)


@given(height=sizes, width=sizes, levels=st.integers(1, 6), batch=st.integers(1, 2))
def test_pyramid_sizes_follow_ceil_and_values_scale_by_2_to_the_minus_k(
    height: int, width: int, levels: int, batch: int
) -> None:
    """Level k is B×2×ceil(H/2^k)×ceil(W/2^k); a constant flow becomes exactly flow/2^k.

    Exactly 2^-k even for odd sizes: level-k pixels are 2^k level-0 pixels apart (stride-2
    encoders), whereas the size ratio ceil(H/2^k)/H is not 2^-k.
    """
    flow = _constant_flow(5.0, -3.0, height, width, batch)
    pyramid = flow_pyramid(flow, levels)
    assert len(pyramid) == levels
    for k, level in enumerate(pyramid):
        assert tuple(level.shape) == (batch, 2, *level_size(height, width, k))
        assert torch.equal(level, _constant_flow(5.0 / 2**k, -3.0 / 2**k, *level.shape[-2:], batch))


@given(seed=st.integers(0, 1000), multiple=st.sampled_from([1, 2, 4]))
def test_pyramid_equals_resize_flow_when_sizes_divide(seed: int, multiple: int) -> None:
    """For sizes divisible by 2^k the pyramid is plain ``resize_flow`` (no padding needed)."""
    flow = _rand(2, 2, 8 * multiple, 24 * multiple, seed=seed, scale=4.0)
    for k, level in enumerate(flow_pyramid(flow, 4)):
        torch.testing.assert_close(level, resize_flow(flow, level_size(*flow.shape[-2:], k)), atol=0, rtol=0)


def test_pyramid_rejects_zero_levels() -> None:
    with pytest.raises(ValueError, match="levels"):
        flow_pyramid(torch.zeros(1, 2, 4, 4), 0)


# -- resizing -----------------------------------------------------------------------------------


@given(height=sizes, width=sizes, new_height=sizes, new_width=sizes)
def test_resize_scales_values_by_the_size_ratio(height: int, width: int, new_height: int, new_width: int) -> None:
    """A constant flow (u, v) resized to h'×w' is (u·w'/w, v·h'/h) everywhere (1 float32 rounding)."""
    out = resize_flow(_constant_flow(3.0, -2.0, height, width), (new_height, new_width))
    expected = _constant_flow(3.0 * new_width / width, -2.0 * new_height / height, new_height, new_width)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)


@given(height=st.integers(3, 20), width=st.integers(3, 20), factor=st.sampled_from([2, 4]), seed=st.integers(0, 1000))
def test_resize_up_then_down_round_trips(height: int, width: int, factor: int, seed: int) -> None:
    """Up by 2 or 4 then back: constant flows exactly; affine flows in the interior to 1e-5.

    (The border row/column differs: upsampling clamps positions beyond the image, so it is
    not affine there. A non-smooth flow comes back blurred, not unchanged.)
    """
    constant = _constant_flow(1.25, -0.75, height, width)
    big = (height * factor, width * factor)
    assert torch.equal(resize_flow(resize_flow(constant, big), (height, width)), constant)
    affine = _affine_flow(height, width, seed)
    back = resize_flow(resize_flow(affine, big), (height, width))
    torch.testing.assert_close(back[..., 1:-1, 1:-1], affine[..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_resize_to_the_same_size_returns_the_flow() -> None:
    flow = torch.rand(1, 2, 5, 6)
    assert resize_flow(flow, (5, 6)) is flow


@pytest.mark.parametrize("bad", [torch.zeros(1, 3, 4, 4), torch.zeros(2, 4, 4)])
def test_resize_rejects_non_flows(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="B×2×H×W"):
        resize_flow(bad, (8, 8))


# -- padding and cropping -----------------------------------------------------------------------


@given(height=sizes, width=sizes, multiple=st.integers(1, 16), channels=st.integers(1, 3), seed=st.integers(0, 100))
def test_pad_crop_round_trip_keeps_coordinates(
    height: int, width: int, multiple: int, channels: int, seed: int
) -> None:
    """Bottom/right replicate padding: sizes become multiples, pixel (i, j) stays (i, j),
    padded rows/columns copy the last one, and cropping gives the input back exactly."""
    x = _rand(2, channels, height, width, seed=seed)
    padded, size = pad_to_multiple(x, multiple)
    assert size == (height, width)
    ph, pw = padded.shape[-2:]
    assert ph % multiple == 0 and pw % multiple == 0 and 0 <= ph - height < multiple and 0 <= pw - width < multiple
    assert torch.equal(padded[..., :height, :width], x)
    assert torch.equal(padded[..., height:, :width], x[..., -1:, :].expand(-1, -1, ph - height, -1))
    assert torch.equal(padded[..., :, width:], padded[..., :, width - 1 : width].expand(-1, -1, -1, pw - width))
    assert torch.equal(crop_to(padded, size), x)


@given(height=sizes, width=sizes, multiple=st.sampled_from([2, 8, 64]), seed=st.integers(0, 100))
def test_warping_commutes_with_replicate_padding(height: int, width: int, multiple: int, seed: int) -> None:
    """Warp the padded image by the padded flow and crop == warp the original, to 4 ulps of 1.

    Reads beyond the original border see replicated pixels, which is what the
    border-replicating warp reads anyway: padding at the bottom/right changes no coordinate.
    Not bit-exact: where the original clamps a position onto its last row or column (weight
    1 on one pixel), the padded image blends that pixel with its replicas, i.e. ``Σ w_i·c``,
    which is ``c`` up to the rounding of the weights' sum.
    """
    x = _rand(1, 3, height, width, seed=seed)
    flow = _rand(1, 2, height, width, seed=seed + 1, scale=6.0)
    (xp, size), (fp, _) = pad_to_multiple(x, multiple), pad_to_multiple(flow, multiple)
    torch.testing.assert_close(crop_to(backward_warp(xp, fp), size), backward_warp(x, flow), rtol=0, atol=2**-21)


def test_pad_rejects_non_positive_multiples() -> None:
    with pytest.raises(ValueError, match="multiple"):
        pad_to_multiple(torch.zeros(1, 1, 3, 3), 0)


# -- end-point error ----------------------------------------------------------------------------


def test_end_point_error_on_known_flows() -> None:
    zero = torch.zeros(2, 2, 3, 4)
    three_four = _constant_flow(3.0, 4.0, 3, 4, batch=2)
    assert end_point_error(three_four, zero).item() == 5.0
    assert end_point_error(zero, three_four).item() == 5.0  # symmetric
    assert end_point_error(three_four, three_four).item() == 0.0
    per_pixel = end_point_error(three_four, zero, reduction="none")
    assert per_pixel.shape == (2, 3, 4) and torch.equal(per_pixel, torch.full((2, 3, 4), 5.0))
    # half the pixels off by (1, 0), half by (0, -2): mean EPE 1.5
    target = zero.clone()
    target[:, 0, :, :2] = 1.0
    target[:, 1, :, 2:] = -2.0
    assert end_point_error(zero, target).item() == pytest.approx(1.5)


def test_end_point_error_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        end_point_error(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 4, 3))
    with pytest.raises(ValueError, match="reduction"):
        end_point_error(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), reduction="sum")


# -- colour -------------------------------------------------------------------------------------


def test_flow_to_color_shapes_and_dtype() -> None:
    flow = _rand(2, 2, 5, 7, scale=3.0)
    batched, single = flow_to_color(flow), flow_to_color(flow[0])
    assert batched.dtype == torch.uint8 and batched.shape == (2, 3, 5, 7)
    assert single.dtype == torch.uint8 and single.shape == (3, 5, 7)
    assert torch.equal(batched, flow_to_image(flow))  # a thin wrapper over torchvision
    for dtype in (torch.float64, torch.bfloat16):  # other float dtypes are accepted
        assert flow_to_color(flow.to(dtype)).dtype == torch.uint8


def test_flow_to_color_distinguishes_directions() -> None:
    """A pure +x flow and a pure -x flow get different (uniform) colours; zero flow is white."""
    right = flow_to_color(_constant_flow(2.0, 0.0, 4, 4)[0])
    left = flow_to_color(_constant_flow(-2.0, 0.0, 4, 4)[0])
    for image in (right, left):
        assert torch.equal(image, image[:, :1, :1].expand_as(image))
    assert (right[:, 0, 0].int() - left[:, 0, 0].int()).abs().max() > 100
    assert torch.equal(flow_to_color(torch.zeros(2, 3, 3)), torch.full((3, 3, 3), 255, dtype=torch.uint8))


def test_flow_to_color_max_flow_fixes_the_scale() -> None:
    """With ``max_flow`` a pixel's colour does not depend on the rest of the batch."""
    short = _constant_flow(1.0, 1.0, 2, 2)
    long = _constant_flow(8.0, 8.0, 2, 2)
    together = flow_to_color(torch.cat((short, long)), max_flow=10.0)
    assert torch.equal(together[:1], flow_to_color(short, max_flow=10.0))
    assert not torch.equal(flow_to_color(torch.cat((short, long)))[:1], flow_to_color(short))  # batch-relative
    # beyond max_flow colours saturate: 20 px and 40 px look the same
    assert torch.equal(flow_to_color(long * 2.5, max_flow=10.0), flow_to_color(long * 5.0, max_flow=10.0))
    with pytest.raises(ValueError, match="max_flow"):
        flow_to_color(short, max_flow=0.0)


def test_flow_to_color_marks_non_finite_pixels_black() -> None:
    """NaN/inf displacements are drawn black and do not disturb the other pixels' colours."""
    flow = _rand(1, 2, 3, 3, scale=2.0)
    bad = flow.clone()
    bad[0, 0, 1, 1] = math.nan
    bad[0, 1, 2, 2] = math.inf
    image, clean = flow_to_color(bad), flow_to_color(torch.where(bad.isfinite(), bad, 0.0))
    marked = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    marked[0, 0, 1, 1] = marked[0, 0, 2, 2] = True
    assert (image[marked.expand_as(image)] == 0).all()
    assert torch.equal(image[~marked.expand_as(image)], clean[~marked.expand_as(clean)])
