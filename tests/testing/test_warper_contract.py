"""The warper contract for every registered warper, plus checks that its properties can fail.

One ``TestWarper_<name>`` class per name in ``REGISTRY.list("warper")`` (plugins included)
inherits :class:`~refsr_blocks.testing.WarperContract`: the generic rules and the hypothesis
properties (``tests/testing/test_contracts.py`` leaves warpers to this file). ``WARPER_SETTINGS``
declares what each built-in warper promises beyond the strict bilinear defaults. A warper
with no entry is held to those defaults.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refsr_blocks.core.registry import REGISTRY
from refsr_blocks.ops.warp import backward_warp, pixel_grid
from refsr_blocks.testing import WarpCase, WarperContract, bilinear_reference, check_component

#: What each built-in warper declares (see the WarperContract attributes).
WARPER_SETTINGS: dict[str, dict[str, Any]] = {
    "bilinear": {},
    # Reads one pixel: exact wherever it is defined, no flow gradient.
    "nearest": {"interpolation": "nearest", "differentiable_flow": False, "formula_atol": 0.0, "flip_atol": 0.0},
    # float64 grid_sample: ~1e-7 from the lerp-based bilinear; float64 inputs go through the
    # [-1, 1] normalisation round trip (a few float64 ulps of positions < 24 px); NaN positions read a pixel (grid_sample's
    # behaviour) instead of giving NaN.
    "kornia": {
        "reference": "bilinear",
        "reference_atol": 1e-5,
        "identity_float64_atol": 1e-14,
        "nan_propagates": False,
    },
}

for _name in REGISTRY.list("warper"):
    _cls = type(f"TestWarper_{_name}", (WarperContract,), {"name": _name, **WARPER_SETTINGS.get(_name, {})})
    _cls.__module__ = __name__
    globals()[_cls.__name__] = _cls


# -- warpers against each other where their definitions coincide ----------------------------


@pytest.mark.parametrize("seed", range(5))
def test_nearest_equals_bilinear_at_integer_flows(seed: int) -> None:
    """At integer flows nearest and bilinear both read one pixel: equal, exactly."""
    case = WarpCase(2, 4, 11, 17, seed=seed, magnitude=20.0)
    x, flow = case.image(), case.integer_flow()
    assert torch.equal(backward_warp(x, flow, "nearest"), backward_warp(x, flow, "bilinear"))


@pytest.mark.parametrize("seed", range(5))
def test_kornia_matches_bilinear_everywhere(seed: int) -> None:
    """kornia (float64 grid_sample) and the lerp warp agree to 1e-5 on arbitrary flows."""
    case = WarpCase(2, 4, 23, 19, seed=seed, magnitude=30.0)
    x, flow = case.image(), case.flow()
    kornia, bilinear = (REGISTRY.get("warper", n).factory() for n in ("kornia", "bilinear"))
    torch.testing.assert_close(kornia(x, flow), bilinear(x, flow), atol=1e-5, rtol=0)


# -- regressions of bugs fixed in ops/warp.py -----------------------------------------------


def test_nearest_rounds_the_exact_fraction() -> None:
    """0.5 - 2^-25 is nearer to 0 than to 1; ``floor(c + 0.5)`` in float32 rounded it to 1."""
    x = torch.arange(4.0).view(1, 1, 1, 4)
    flow = torch.zeros(1, 2, 1, 4)
    flow[0, 0, 0, 0] = 0.5 - 2**-25
    flow[0, 0, 0, 1] = 0.5  # a true tie rounds up
    assert backward_warp(x, flow, "nearest")[0, 0, 0].tolist() == [0.0, 2.0, 2.0, 3.0]


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_nan_flow_does_not_index_out_of_bounds(mode: str) -> None:
    """A NaN flow must not become index -2^63 (an IndexError on CPU, a device assert on CUDA)."""
    x = torch.rand(1, 2, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[0, 1, 2, 3] = math.nan
    out = backward_warp(x, flow, mode)
    assert out[0, :, 2, 3].isnan().all()
    assert torch.equal(out.isnan(), flow[:, 1:].isnan().expand_as(out))


def test_infinite_flow_reads_the_border() -> None:
    x = torch.rand(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4)
    flow[:, 0] = math.inf
    assert torch.equal(backward_warp(x, flow), x[..., -1:].expand_as(x))


def test_float64_positions_for_float64_inputs() -> None:
    """A float64 flow is not rounded to float32 (2e-7 below must move the sample)."""
    x = torch.arange(8, dtype=torch.float64).view(1, 1, 1, 8) * 1e3
    flow = torch.full((1, 2, 1, 8), 0.25 + 2e-10, dtype=torch.float64)
    flow[:, 1] = 0
    expected = (torch.arange(8, dtype=torch.float64) + 0.25 + 2e-10).clamp(max=7) * 1e3
    torch.testing.assert_close(backward_warp(x, flow)[0, 0, 0], expected, atol=1e-9, rtol=0)


def test_grid_sample_is_not_exact_but_backward_warp_is() -> None:
    """Why ``backward_warp`` avoids grid_sample: its float32 normalised round trip is inexact."""
    x = torch.rand(1, 1, 64, 600, generator=torch.Generator().manual_seed(0))
    grid = pixel_grid(64, 600)
    scale = grid.new_tensor([2.0 / 599, 2.0 / 63]).view(1, 2, 1, 1)
    sampled = F.grid_sample(x, (grid * scale - 1).permute(0, 2, 3, 1), align_corners=True, padding_mode="border")
    assert not torch.equal(sampled, x)
    assert torch.equal(backward_warp(x, torch.zeros(1, 2, 64, 600)), x)


# -- the kit catches broken warpers ---------------------------------------------------------


class _GridSampleHalfPixel(nn.Module):
    """grid_sample with align_corners=False and pixel → [-1, 1] as if align_corners=True: off by a fraction."""

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pos = pixel_grid(h, w, dtype=x.dtype) + flow.to(x.dtype)
        scale = pos.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)]).view(1, 2, 1, 1)
        grid = (pos * scale - 1).permute(0, 2, 3, 1)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="border")


class _HalfPositions(nn.Module):
    """Exact lerp warp, but positions computed in the flow's dtype (fp16/bf16 under autocast)."""

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pos = pixel_grid(h, w).to(flow.dtype) + flow  # the bug: low-precision positions
        return backward_warp(x, (pos - pixel_grid(h, w).to(flow.dtype)).float())


class _NoBorderReplication(nn.Module):
    """Zero padding outside the image instead of replicating the border."""

    def forward(self, x: Tensor, flow: Tensor) -> Tensor:
        out = backward_warp(x, flow)
        h, w = x.shape[-2:]
        pos = pixel_grid(h, w) + flow.float()
        inside = (pos[:, :1] >= 0) & (pos[:, :1] <= w - 1) & (pos[:, 1:] >= 0) & (pos[:, 1:] <= h - 1)
        return out * inside


@pytest.mark.parametrize(
    ("factory", "rule"),
    [
        (_GridSampleHalfPixel, "test_zero_flow_is_identity"),
        (_NoBorderReplication, "test_integer_shift_is_exact_with_replicated_border"),
        (_HalfPositions, "test_autocast_cpu_bfloat16"),
    ],
)
def test_the_kit_catches_broken_warpers(fresh_registry, factory: type[nn.Module], rule: str) -> None:
    """Each rule fails for a warper with the bug it is written against."""
    fresh_registry.register("warper", "broken_for_test", factory)

    class Broken(WarperContract):
        name: ClassVar[str] = "broken_for_test"

    with pytest.raises(Exception) as info:
        getattr(Broken(), rule)()
    # hypothesis reports several distinct failures as an exception group
    errors = getattr(info.value, "exceptions", (info.value,))
    assert all(isinstance(e, AssertionError) for e in errors), errors


def test_check_component_runs_the_zero_flow_property(fresh_registry) -> None:
    """Outside pytest the quick rules run: the zero-flow property catches the half-pixel bug."""
    fresh_registry.register("warper", "half_pixel_for_test", _GridSampleHalfPixel)
    with pytest.raises(AssertionError, match=r"^\[test_zero_flow_is_identity\] zero flow, torch.float32"):
        check_component("warper", "half_pixel_for_test")


def test_bilinear_reference_is_the_textbook_formula() -> None:
    """The kit's oracle itself: a quarter pixel right of a 0/1 step is 0.25... of the way."""
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    flow = torch.tensor([0.25, 0.5]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    # at p = (0, 0): position (0.25, 0.5): 0.25 + 0.5 * 2 = 1.25
    assert bilinear_reference(x, flow)[0, 0, 0, 0].item() == 1.25
