"""The synthetic-data generator warps with the library's one warp (refsr_blocks.ops.warp).

Its bicubic mode (the reference views) and ``inside_frame`` (the validity masks) are checked
here against ``grid_sample`` and brute force; the bilinear mode has its own property tests.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import refsr_blocks.data.disparity as disparity_module
import refsr_blocks.data.synthetic as synthetic_module
from refsr_blocks.data import invert_displacement, random_layered_disparity
from refsr_blocks.ops.warp import backward_warp, inside_frame, pixel_grid, sample


def _grid_sample_bicubic(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """PyTorch's bicubic sampling at p + flow (float64, border padding, align_corners=True)."""
    h, w = x.shape[-2:]
    pos = pixel_grid(h, w, dtype=torch.float64) + flow
    grid = torch.stack((2 * pos[:, 0] / (w - 1) - 1, 2 * pos[:, 1] / (h - 1) - 1), dim=-1)
    return F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)


def test_bicubic_matches_grid_sample_inside_the_frame() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 19, 27, generator=g, dtype=torch.float64)
    flow = (torch.rand(2, 2, 19, 27, generator=g, dtype=torch.float64) - 0.5) * 8
    ours, theirs = backward_warp(x, flow, "bicubic"), _grid_sample_bicubic(x, flow)
    inside = inside_frame(flow).expand_as(x)
    assert inside.float().mean() > 0.5
    torch.testing.assert_close(ours[inside], theirs[inside], atol=1e-12, rtol=0)
    # outside the frame the position is clamped first: the border pixel itself, exactly
    edge = torch.zeros_like(flow)
    edge[:, 0] = 100.0
    assert torch.equal(backward_warp(x, edge, "bicubic"), x[..., -1:].expand_as(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bicubic_is_exact_at_integer_positions(dtype: torch.dtype) -> None:
    x = torch.rand(1, 3, 12, 17, dtype=dtype)
    assert torch.equal(backward_warp(x, torch.zeros(1, 2, 12, 17, dtype=dtype), "bicubic"), x)
    shift = torch.zeros(1, 2, 12, 17, dtype=dtype)
    shift[:, 0], shift[:, 1] = 2.0, -1.0  # out[y, x] = x[y - 1, x + 2]
    assert torch.equal(backward_warp(x, shift, "bicubic")[..., 1:, :-2], x[..., :-1, 2:])


def test_bicubic_gradients() -> None:
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    flow = ((torch.rand(1, 2, 5, 6, dtype=torch.float64) - 0.5) * 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, f: backward_warp(a, f, "bicubic"), (x, flow))


def test_inside_frame_by_brute_force() -> None:
    flow = torch.randn(2, 2, 6, 9) * 4
    mask = inside_frame(flow)
    assert mask.shape == (2, 1, 6, 9) and mask.dtype == torch.bool
    for b, y, x in ((0, 0, 0), (1, 5, 8), (0, 3, 4), (1, 2, 7)):
        px, py = x + flow[b, 0, y, x].item(), y + flow[b, 1, y, x].item()
        assert mask[b, 0, y, x].item() == (0 <= px <= 8 and 0 <= py <= 5)
    assert torch.equal(inside_frame(flow[0]), mask[0])
    with pytest.raises(ValueError, match="B×2×H×W"):
        inside_frame(torch.zeros(3, 4, 4))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sample_reads_what_the_warp_reads(mode: str, dtype: torch.dtype) -> None:
    """``sample`` at some pixels' positions gives bit for bit the warp's values there."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 11, 14, generator=g).to(dtype)
    flow = torch.randn(2, 2, 11, 14, generator=g) * 5
    flow[0, 0, 1, 2] = float("nan")
    coords = torch.float64 if dtype == torch.float64 else torch.float32  # the warp's coordinate dtype
    warped = backward_warp(x, flow.to(coords), mode)
    picked = torch.tensor([0, 5, 16, 29, 153])  # flat pixel indices, 16 = (1, 2) holds the NaN
    points = (pixel_grid(11, 14, dtype=coords) + flow.to(coords)).flatten(2)[:, :, picked]
    out = sample(x, points, mode)
    assert out.shape == (2, 3, 5) and out.dtype == dtype
    expected = warped.flatten(2)[:, :, picked]
    assert torch.equal(out.isnan(), expected.isnan()) and out[0, :, 2].isnan().all()
    assert torch.equal(out.nan_to_num(0.0), expected.nan_to_num(0.0))
    with pytest.raises(ValueError, match="B×2×N"):
        sample(x, points[:1], mode)


def _full_fixed_point(d: torch.Tensor, iterations: int = 100, tol: float = 1e-3) -> torch.Tensor:
    """The plain iteration flow ← d(p + flow) on the whole field (what the solver must equal)."""
    flow = d
    for k in range(iterations):
        new = backward_warp(d, flow)
        if k % 4 == 3 and float((new - flow).abs().amax()) < tol * 0.1:
            return new
        flow = new
    return flow


@pytest.mark.parametrize("boundary_sigma", [None, 2.0])
def test_invert_displacement_equals_the_whole_field_iteration(boundary_sigma) -> None:
    """Iterating only the pixels still moving changes nothing, bit for bit (sharp boundaries
    leave pixels that never settle, so all 100 iterations run there)."""
    d = random_layered_disparity(40, 56, 12.0, torch.Generator().manual_seed(3), boundary_sigma=boundary_sigma)
    d = torch.stack([d, d.flip(-1)])
    flow, converged = invert_displacement(d)
    assert torch.equal(flow, _full_fixed_point(d))
    assert converged.shape == (2, 1, 40, 56) and flow.is_contiguous()
    assert torch.equal(converged, (backward_warp(d, flow) - flow).abs().amax(1, keepdim=True) < 1e-3)


def test_the_data_layer_has_no_warp_of_its_own() -> None:
    """One backward warp: the generator calls ops.warp (grid_sample appears nowhere in it)."""
    import inspect

    for module in (synthetic_module, disparity_module):
        source = inspect.getsource(module)
        assert "grid_sample" not in source and "backward_warp" in source, module.__name__
    with pytest.raises(ImportError):
        __import__("refsr_blocks.data._warp")


def test_mirrored_warp_reads_a_mirror_image_beyond_the_border() -> None:
    """A reference view shows mirrored content where the target has none (as grid_sample's
    reflection padding did), not streaks of the edge pixel."""
    img = torch.arange(10.0).view(1, 1, 10).expand(3, 4, 10).contiguous()
    flow = torch.zeros(2, 4, 10)
    flow[0] = -3.0  # read 3 px to the left: columns 0..2 fall outside
    out = synthetic_module._warp_mirrored(img, flow)
    assert out[0, 0].tolist() == [3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
