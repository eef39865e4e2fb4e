"""Property-based checks (hypothesis) of the layout and geometry rules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refsr_blocks.data import dihedral, lenslet_to_views, shift_reference, views_to_lenslet

_fixtures_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(a=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5))
def test_lenslet_roundtrip_and_layout(a, c, h, w):
    views = torch.randn(a, a, c, h, w)
    lenslet = views_to_lenslet(views)
    assert lenslet.shape == (c, h * a, w * a)
    torch.testing.assert_close(lenslet_to_views(lenslet, a), views)
    u, v, y, x = a - 1, a // 2, h - 1, w // 2
    assert lenslet[0, y * a + u, x * a + v] == views[u, v, 0, y, x]


def _smooth_flow(seed: int, h: int, w: int, amplitude: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = (torch.rand(1, 2, 3, 3, generator=g) * 2 - 1) * amplitude
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0]


@_fixtures_ok
@given(seed=st.integers(0, 2**16), index=st.integers(0, 7), amplitude=st.floats(0.0, 4.0), shift=st.integers(-3, 3))
def test_transforms_commute_with_warping(warp, seed, index, amplitude, shift):
    """T(warp(ref, flow)) == warp(T(ref), T(flow)) for every flip/rotation T, any flow."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(3, 12, 12, generator=g)
    flow = _smooth_flow(seed, 12, 12, amplitude)
    out = dihedral({"ref": ref, "flow": flow}, index)
    expected = dihedral({"img": warp(ref, flow)}, index)["img"]
    torch.testing.assert_close(warp(out["ref"], out["flow"]), expected, atol=1e-5, rtol=0)
    # shifting the reference by s and adding s to the flow changes nothing where samples stay inside
    shifted = shift_reference({"ref": ref, "flow": flow}, shift, -shift)
    pos_x = torch.arange(12.0) + shifted["flow"][0]
    pos_y = torch.arange(12.0).view(-1, 1) + shifted["flow"][1]
    orig_x, orig_y = pos_x - shift, pos_y + shift
    inside = (
        (pos_x >= 0)
        & (pos_x <= 11)
        & (pos_y >= 0)
        & (pos_y <= 11)
        & (orig_x >= 0)
        & (orig_x <= 11)
        & (orig_y >= 0)
        & (orig_y <= 11)
    )
    a, b = warp(shifted["ref"], shifted["flow"]), warp(ref, flow)
    torch.testing.assert_close(a[:, inside], b[:, inside], atol=1e-5, rtol=0)
