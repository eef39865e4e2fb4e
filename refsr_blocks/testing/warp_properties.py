"""Hypothesis property tests that every warper must pass; subclass to test your own.

A warper backward-warps ``x`` (B×C×H×W) by ``flow`` (B×2×H×W, x then y, in pixels):
``out[p] = x[p + flow[p]]``, reading the border outside the image. The properties below pin
that definition down over random sizes (1-pixel rows and columns included), channel counts,
batch sizes and flows, with the tolerance of each stated next to it.

A plugin's warper gets the whole suite in a few lines::

    from refsr_blocks.testing.warp_properties import WarperProperties

    class TestMyWarper(WarperProperties):
        name = "my_warper"           # its registered name
        params = {}                  # constructor parameters
        reference = "bilinear"       # optional: a registered warper it should match

The number of examples per property follows the active hypothesis profile (read when the
test runs, not when this module is imported). Each test method builds its hypothesis test
when called, so subclasses sharing the inherited methods never trip hypothesis'
``differing_executors`` health check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from ..core.registry import REGISTRY

__all__ = [
    "WarpCase",
    "WarperProperties",
    "bilinear_reference",
    "nearest_reference",
    "property_test",
    "read_pixels",
    "sample_positions",
    "warp_cases",
]

# ---------------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarpCase:
    """One random warping problem; every tensor is derived from ``seed``.

    Attributes:
        batch, channels, height, width: the shape of ``x``.
        seed: seeds the image and flow generators.
        magnitude: flows are drawn in ``[-magnitude, magnitude]`` pixels.
    """

    batch: int
    channels: int
    height: int
    width: int
    seed: int
    magnitude: float = 4.0

    def _generator(self, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 16 + stream)

    @property
    def flow_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 2, self.height, self.width)

    def image(self, dtype: torch.dtype = torch.float32, stream: int = 0) -> Tensor:
        """A B×C×H×W image, uniform in [0, 1) (``stream`` picks an independent one)."""
        shape = (self.batch, self.channels, self.height, self.width)
        return torch.rand(shape, generator=self._generator(stream), dtype=torch.float64).to(dtype)

    def flow(self, dtype: torch.dtype = torch.float32, tie_free: bool = False) -> Tensor:
        """A random flow in ``[-magnitude, magnitude]``, with special values mixed in.

        About a quarter of the displacements are integers and, unless ``tie_free``, an
        eighth are half-integers (the ties of nearest-neighbour rounding). With
        ``tie_free`` every fractional part is kept at least 0.1 away from 0.5.
        """
        g = self._generator(1)
        flow = (torch.rand(self.flow_shape, generator=g, dtype=torch.float64) * 2 - 1) * self.magnitude
        pick = torch.rand(self.flow_shape, generator=g, dtype=torch.float64)
        flow = torch.where(pick < 0.25, flow.round(), flow)
        if tie_free:
            whole = flow.round()  # fractional part in [-0.5, 0.5] -> keep it in [-0.4, 0.4]
            flow = whole + (flow - whole).clamp(-0.4, 0.4)
        else:
            flow = torch.where((pick >= 0.25) & (pick < 0.375), flow.floor() + 0.5, flow)
        return flow.to(dtype)

    def integer_flow(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """A random per-pixel integer flow in ``[-magnitude - 1, magnitude + 1]``."""
        bound = int(self.magnitude) + 1
        return torch.randint(-bound, bound + 1, self.flow_shape, generator=self._generator(2)).to(dtype)

    def shifts(self) -> Tensor:
        """One integer shift ``(dx, dy)`` per batch item, B×2, up to one image size past the border."""
        g = self._generator(3)
        dx = torch.randint(-self.width - 1, self.width + 2, (self.batch,), generator=g)
        dy = torch.randint(-self.height - 1, self.height + 2, (self.batch,), generator=g)
        return torch.stack((dx, dy), 1)

    def interior_flow(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """A flow whose sample positions are inside the image and 0.1 px or more from any integer.

        Needs ``height, width >= 2``. Used for gradient checks: there every warper is smooth
        in the flow (no pixel boundary, no border clamp nearby).
        """
        g = self._generator(4)
        positions = []
        for size in (self.width, self.height):
            whole = torch.randint(0, size - 1, (self.batch, self.height, self.width), generator=g)
            frac = 0.1 + 0.8 * torch.rand(self.batch, self.height, self.width, generator=g, dtype=torch.float64)
            positions.append(whole + frac)
        grid = _pixel_positions(self.height, self.width)
        return (torch.stack(positions, 1) - grid).to(dtype)


def warp_cases(
    *,
    min_size: int = 1,
    max_size: int = 24,
    max_batch: int = 3,
    max_channels: int = 4,
    magnitudes: Sequence[float] = (0.5, 2.0, 6.0, 30.0),
) -> st.SearchStrategy[WarpCase]:
    """Hypothesis strategy for :class:`WarpCase`; the default magnitudes reach past the border."""
    return st.builds(
        WarpCase,
        batch=st.integers(1, max_batch),
        channels=st.integers(1, max_channels),
        height=st.integers(min_size, max_size),
        width=st.integers(min_size, max_size),
        seed=st.integers(0, 2**20),
        magnitude=st.sampled_from(tuple(magnitudes)),
    )


#: Explicit examples run first by the main properties: a single row, a single column, a pixel.
THIN_CASES: tuple[WarpCase, ...] = (
    WarpCase(2, 3, 1, 9, seed=1, magnitude=6.0),
    WarpCase(2, 3, 9, 1, seed=2, magnitude=6.0),
    WarpCase(1, 2, 1, 1, seed=3, magnitude=2.0),
)


def property_test(
    *, examples: Sequence[dict[str, Any]] = (), max_examples: int | None = None, **strategies: st.SearchStrategy[Any]
) -> Callable[[Callable[..., None]], Callable[[Any], None]]:
    """Turn ``method(self, **drawn)`` into a pytest test ``test(self)`` that runs it under hypothesis.

    The hypothesis test is built when the test runs, so it uses the hypothesis profile
    active then, and every subclass gets its own hypothesis test (and database key).

    Args:
        examples: keyword dicts always tried first (``hypothesis.example``).
        max_examples: a cap on the profile's example count (for expensive properties).
        strategies: one strategy per keyword argument of the method.
    """

    def decorate(method: Callable[..., None]) -> Callable[[Any], None]:
        def test(self: Any) -> None:
            def check(**drawn: Any) -> None:
                method(self, **drawn)

            check.__qualname__ = f"{type(self).__qualname__}.{method.__name__}"
            check._hypothesis_internal_add_digest = check.__qualname__.encode()  # type: ignore[attr-defined]
            runner = given(**strategies)(check)
            for kwargs in reversed(examples):
                runner = example(**kwargs)(runner)
            count = settings.default.max_examples
            runner = settings(settings.default, max_examples=min(count, max_examples or count))(runner)
            runner()

        test.__name__ = method.__name__
        test.__qualname__ = method.__qualname__
        test.__doc__ = method.__doc__
        test.__module__ = method.__module__
        return test

    return decorate


# ---------------------------------------------------------------------------------------
# Independent references (float64, advanced indexing: no code shared with the warpers)
# ---------------------------------------------------------------------------------------


def _pixel_positions(height: int, width: int) -> Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack((xs, ys)).unsqueeze(0)


def sample_positions(flow: Tensor) -> tuple[Tensor, Tensor]:
    """Exact positions ``p + flow[p]`` in float64 (a float32 flow plus an integer is exact): B×H×W each."""
    h, w = flow.shape[-2:]
    pos = _pixel_positions(h, w).to(flow.device) + flow.double()
    return pos[:, 0], pos[:, 1]


def read_pixels(x: Tensor, ix: Tensor, iy: Tensor) -> Tensor:
    """``x[b, :, iy, ix]`` with the indices clamped to the image: B×C×H×W for B×H×W index maps."""
    b, _, h, w = x.shape
    ix, iy = ix.long().clamp(0, w - 1), iy.long().clamp(0, h - 1)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand_as(ix)
    return x[batch, :, iy, ix].permute(0, 3, 1, 2)


def _clamped_positions(x: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    h, w = x.shape[-2:]
    px, py = sample_positions(flow)
    return px.clamp(0, w - 1), py.clamp(0, h - 1)


def bilinear_reference(x: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warp with border replication, straight from the definition, in float64."""
    px, py = _clamped_positions(x, flow)
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0).unsqueeze(1), (py - y0).unsqueeze(1)
    xd = x.double()
    return (
        read_pixels(xd, x0, y0) * (1 - fx) * (1 - fy)
        + read_pixels(xd, x0 + 1, y0) * fx * (1 - fy)
        + read_pixels(xd, x0, y0 + 1) * (1 - fx) * fy
        + read_pixels(xd, x0 + 1, y0 + 1) * fx * fy
    )


def nearest_reference(x: Tensor, flow: Tensor) -> Tensor:
    """Nearest-neighbour backward warp (half-way positions round up), in float64."""
    px, py = _clamped_positions(x, flow)
    return read_pixels(x.double(), (px + 0.5).floor(), (py + 0.5).floor())


def _neighbourhood(x: Tensor, flow: Tensor) -> Tensor:
    """The 2×2 pixels around each clamped sample position: B×C×H×W×4, float64."""
    px, py = _clamped_positions(x, flow)
    xd = x.double()
    corners = [(px.floor(), py.floor()), (px.ceil(), py.floor()), (px.floor(), py.ceil()), (px.ceil(), py.ceil())]
    return torch.stack([read_pixels(xd, cx, cy) for cx, cy in corners], dim=-1)


def _shift_flow(shifts: Tensor, height: int, width: int) -> Tensor:
    return shifts.to(torch.float32).view(-1, 2, 1, 1).expand(-1, 2, height, width).contiguous()


def _mismatch(out: Tensor, expected: Tensor) -> str:
    diff = (out.double() - expected.double()).abs()
    worst = int(torch.nan_to_num(diff, nan=math.inf).flatten().argmax())
    return f"max abs difference {diff.flatten()[worst].item():.3g} at flat index {worst} of shape {tuple(out.shape)}"


def _assert_equal(out: Tensor, expected: Tensor, what: str) -> None:
    assert out.shape == expected.shape, f"{what}: shape {tuple(out.shape)} != {tuple(expected.shape)}"
    assert torch.equal(out, expected.to(out.dtype)), f"{what} is not exact: {_mismatch(out, expected)}"


def _assert_close(out: Tensor, expected: Tensor, atol: float, what: str, rtol: float = 0.0) -> None:
    if atol == 0 and rtol == 0:
        _assert_equal(out, expected, what)
        return
    diff = (out.double() - expected.double()).abs()
    bound = atol + rtol * expected.double().abs()
    assert bool((diff <= bound).all()), f"{what}: {_mismatch(out, expected)} > atol {atol:g} + rtol {rtol:g}·|expected|"


# ---------------------------------------------------------------------------------------
# The property suite
# ---------------------------------------------------------------------------------------


class WarperProperties:
    """Property tests for one registered warper; subclass with a ``Test`` prefix and set ``name``.

    Attributes (override in subclasses; every tolerance is an absolute error on images in
    [0, 1] unless stated):
        name: the registered warper name.
        params: constructor parameters.
        interpolation: ``"bilinear"`` or ``"nearest"``: which reference formula it follows.
        differentiable_flow: gradients w.r.t. the flow exist (gradcheck'ed) when true.
        formula_atol: distance to the float64 reference formula, float32 inputs. 1e-5:
            float32 positions up to 64 px carry ≤ 2e-6 px of rounding, blends a few ulps.
        identity_float64_atol: zero-flow error for float64 inputs (float32 must be exact).
        constant_atol: deviation of a constant image from its constant. 4 float32 ulps of 1:
            a weighted sum ``Σ w_i·c`` is ``c`` up to the rounding of the weights' sum.
        linearity_atol: ``warp(a·x + b·y) - (a·warp(x) + b·warp(y))`` with |a|, |b| ≤ 2,
            float32: a few ulps of values up to 4.
        flip_atol: mirrored problem vs mirrored result, float32: positions ``(W-1-p) - f``
            and ``W-1-(p+f)`` round differently, ≤ 4e-6 px (0 for nearest: no blend).
        independence_atol: one batch item or channel alone vs inside the batch.
        channels_last_atol: channels_last input vs contiguous input.
        reference, reference_atol: another registered warper this one must match on any
            flow, and the tolerance.
        autocast_fp32_atol: float32 inputs under autocast vs outside it (0: the warp ignores
            autocast).
        large_atol: float64-definition error allowed at ~1100 px besides one ulp of the
            output dtype: float32 positions there are 2^-13 px apart.
        nan_propagates: a NaN displacement gives NaN at that output pixel.
        gradcheck_atol: ``torch.autograd.gradcheck`` tolerance (float64).
    """

    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    interpolation: ClassVar[str] = "bilinear"
    differentiable_flow: ClassVar[bool] = True
    formula_atol: ClassVar[float] = 1e-5
    identity_float64_atol: ClassVar[float] = 0.0
    constant_atol: ClassVar[float] = 4 * 2.0**-23
    linearity_atol: ClassVar[float] = 1e-5
    flip_atol: ClassVar[float] = 1e-5
    independence_atol: ClassVar[float] = 0.0
    channels_last_atol: ClassVar[float] = 0.0
    reference: ClassVar[str | None] = None
    reference_atol: ClassVar[float] = 1e-5
    autocast_fp32_atol: ClassVar[float] = 0.0
    large_atol: ClassVar[float] = 2.0**-13
    nan_propagates: ClassVar[bool] = True
    gradcheck_atol: ClassVar[float] = 1e-5

    # -- helpers --------------------------------------------------------------------------
    def build(self, name: str | None = None) -> nn.Module:
        """The warper under test (or another registered one), built with ``params``."""
        assert self.name, f"{type(self).__name__} must set `name` to a registered warper"
        factory = REGISTRY.get("warper", name or self.name).factory
        return factory(**(self.params if name in (None, self.name) else {}))

    def warp(self, x: Tensor, flow: Tensor) -> Tensor:
        """Run the warper (without autograd unless the inputs require it)."""
        out = self.build().to(x.device)(x, flow)
        assert out.shape == x.shape, f"warper {self.name!r}: output {tuple(out.shape)} for input {tuple(x.shape)}"
        return out

    def definition(self, x: Tensor, flow: Tensor) -> Tensor:
        """The float64 reference formula this warper follows (see ``interpolation``)."""
        if self.interpolation == "bilinear":
            return bilinear_reference(x, flow)
        if self.interpolation == "nearest":
            return nearest_reference(x, flow)
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {self.interpolation!r}")

    # -- exactness --------------------------------------------------------------------------
    @property_test(case=warp_cases(), examples=[{"case": c} for c in THIN_CASES])
    def test_zero_flow_is_identity(self, case: WarpCase) -> None:
        """A zero flow returns ``x`` exactly (atol = 0) in float32; float64 within ``identity_float64_atol``."""
        for dtype, atol in ((torch.float32, 0.0), (torch.float64, self.identity_float64_atol)):
            x = case.image(dtype)
            _assert_close(self.warp(x, torch.zeros(case.flow_shape, dtype=dtype)), x, atol, f"zero flow, {dtype}")

    @property_test(case=warp_cases(), examples=[{"case": c} for c in THIN_CASES])
    def test_integer_shift_is_exact_with_replicated_border(self, case: WarpCase) -> None:
        """A constant integer flow ``(dx, dy)`` (one per batch item) is the shift ``x[y+dy, x+dx]``.

        Exact (atol = 0) in the interior; rows and columns read past the border replicate
        the border (clamped reads), also exactly. Shifts reach one image size past the edge.
        """
        x, shifts = case.image(), case.shifts()
        out = self.warp(x, _shift_flow(shifts, case.height, case.width))
        rows = torch.arange(case.height).view(1, -1, 1)
        cols = torch.arange(case.width).view(1, 1, -1)
        ix = (cols + shifts[:, 0].view(-1, 1, 1)).expand(case.batch, case.height, case.width)
        iy = (rows + shifts[:, 1].view(-1, 1, 1)).expand(case.batch, case.height, case.width)
        _assert_equal(out, read_pixels(x, ix, iy), f"integer shifts {shifts.tolist()}")

    @property_test(case=warp_cases())
    def test_integer_flow_reads_pixels(self, case: WarpCase) -> None:
        """Any per-pixel integer flow reads ``x[clamp(p + flow[p])]`` exactly."""
        x, flow = case.image(), case.integer_flow()
        ix, iy = sample_positions(flow)
        _assert_equal(self.warp(x, flow), read_pixels(x, ix, iy), "per-pixel integer flow")

    @property_test(case=warp_cases())
    def test_integer_round_trip_restores_interior(self, case: WarpCase) -> None:
        """Warping by an integer shift ``d`` and then by ``-d`` restores every pixel ``p`` with
        ``p - d`` inside the image, exactly."""
        x, shifts = case.image(), case.shifts()
        flow = _shift_flow(shifts, case.height, case.width)
        back = self.warp(self.warp(x, flow), -flow)
        cols = torch.arange(case.width).view(1, 1, -1) - shifts[:, 0].view(-1, 1, 1)
        rows = torch.arange(case.height).view(1, -1, 1) - shifts[:, 1].view(-1, 1, 1)
        inside = ((cols >= 0) & (cols < case.width) & (rows >= 0) & (rows < case.height)).unsqueeze(1)
        inside = inside.expand_as(x)
        _assert_equal(back[inside], x[inside], f"round trip of shifts {shifts.tolist()}")

    @property_test(case=warp_cases(), examples=[{"case": c} for c in THIN_CASES])
    def test_constant_image_stays_constant(self, case: WarpCase) -> None:
        """An image constant per (item, channel) stays that constant under any flow (``constant_atol``)."""
        values = case.image()[..., :1, :1]
        x = values.expand(-1, -1, case.height, case.width).contiguous()
        _assert_close(self.warp(x, case.flow()), x, self.constant_atol, "constant image")

    # -- the definition --------------------------------------------------------------------
    @property_test(case=warp_cases(), examples=[{"case": c} for c in THIN_CASES])
    def test_matches_definition(self, case: WarpCase) -> None:
        """The float64 formula of ``interpolation`` within ``formula_atol`` (nearest: ties round up)."""
        x, flow = case.image(), case.flow()
        _assert_close(self.warp(x, flow), self.definition(x, flow), self.formula_atol, f"{self.interpolation} formula")

    @property_test(case=warp_cases(), examples=[{"case": c} for c in THIN_CASES])
    def test_output_within_2x2_neighbourhood(self, case: WarpCase) -> None:
        """Every output lies within [min, max] of the 2×2 pixels around its clamped sample
        position (floor/ceil of the exact position), give or take one float32 ulp."""
        x, flow = case.image(), case.flow()
        out = self.warp(x, flow)
        corners = _neighbourhood(x, flow).float()
        low = torch.nextafter(corners.amin(-1), torch.tensor(-math.inf))
        high = torch.nextafter(corners.amax(-1), torch.tensor(math.inf))
        outside = (out < low) | (out > high)
        assert not outside.any(), (
            f"{int(outside.sum())} outputs leave their 2×2 neighbourhood, e.g. {out[outside][0].item()} "
            f"not in [{low[outside][0].item()}, {high[outside][0].item()}]"
        )

    @property_test(case=warp_cases())
    def test_linear_in_the_image(self, case: WarpCase) -> None:
        """``warp(a·x + b·y) == a·warp(x) + b·warp(y)`` for one flow, within ``linearity_atol``."""
        x, y, flow = case.image(stream=0), case.image(stream=5), case.flow()
        g = torch.Generator().manual_seed(case.seed)
        a, b = (torch.rand(2, generator=g) * 4 - 2).tolist()
        together = self.warp(a * x + b * y, flow)
        _assert_close(together, a * self.warp(x, flow) + b * self.warp(y, flow), self.linearity_atol, "linearity")

    @property_test(case=warp_cases(max_batch=3, max_channels=4))
    def test_batch_items_and_channels_are_independent(self, case: WarpCase) -> None:
        """Each batch item, and each channel, warped alone equals its slice of the batched result."""
        x, flow = case.image(), case.flow()
        out = self.warp(x, flow)
        for i in range(case.batch):
            _assert_close(self.warp(x[i : i + 1], flow[i : i + 1]), out[i : i + 1], self.independence_atol, f"item {i}")
        for c in range(case.channels):
            _assert_close(self.warp(x[:, c : c + 1], flow), out[:, c : c + 1], self.independence_atol, f"channel {c}")

    @property_test(case=warp_cases(), axis=st.sampled_from(["horizontal", "vertical"]))
    def test_flip_symmetry(self, case: WarpCase, axis: str) -> None:
        """Flipping the image and the flow field and negating that flow component flips the output.

        Within ``flip_atol``; nearest flows avoid half-way ties, where rounding up is not
        mirror-symmetric.
        """
        x, flow = case.image(), case.flow(tie_free=self.interpolation == "nearest")
        dim, component = (-1, 0) if axis == "horizontal" else (-2, 1)
        mirrored_flow = flow.flip(dim)
        mirrored_flow[:, component] *= -1
        out = self.warp(x.flip(dim), mirrored_flow)
        _assert_close(out, self.warp(x, flow).flip(dim), self.flip_atol, f"{axis} flip")

    # -- gradients --------------------------------------------------------------------------
    @property_test(case=warp_cases(max_size=6, max_batch=2, max_channels=2), max_examples=10)
    def test_gradcheck_image(self, case: WarpCase) -> None:
        """``gradcheck`` w.r.t. the image, float64, on any flow (the warp is linear in ``x``)."""
        x = case.image(torch.float64).requires_grad_(True)
        flow = case.flow(torch.float64)
        warper = self.build().double()
        assert torch.autograd.gradcheck(lambda t: warper(t, flow), (x,), atol=self.gradcheck_atol)

    @property_test(case=warp_cases(min_size=2, max_size=6, max_batch=2, max_channels=2), max_examples=10)
    def test_gradcheck_flow(self, case: WarpCase) -> None:
        """``gradcheck`` w.r.t. image and flow, float64, sample positions ≥ 0.1 px from integers."""
        if not self.differentiable_flow:
            pytest.skip(f"warper {self.name!r} declares no flow gradient")
        x = case.image(torch.float64).requires_grad_(True)
        flow = case.interior_flow(torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(self.build().double(), (x, flow), atol=self.gradcheck_atol)

    # -- agreement, layouts ----------------------------------------------------------------
    @property_test(case=warp_cases())
    def test_agrees_with_reference_warper(self, case: WarpCase) -> None:
        """Matches the registered ``reference`` warper on any flow within ``reference_atol``."""
        if self.reference is None:
            pytest.skip(f"no reference warper declared for {self.name!r}")
        x, flow = case.image(), case.flow()
        expected = self.build(self.reference)(x, flow)
        _assert_close(self.warp(x, flow), expected, self.reference_atol, f"vs warper {self.reference!r}")

    @property_test(case=warp_cases(max_channels=6))
    def test_channels_last_gives_same_values(self, case: WarpCase) -> None:
        """A channels_last image (and flow) gives the values of the contiguous one (``channels_last_atol``)."""
        x, flow = case.image(), case.flow()
        out = self.warp(x.to(memory_format=torch.channels_last), flow.to(memory_format=torch.channels_last))
        _assert_close(out, self.warp(x, flow), self.channels_last_atol, "channels_last")

    @property_test(case=warp_cases(max_size=8))
    def test_nan_flow_stays_local(self, case: WarpCase) -> None:
        """A NaN displacement never raises and changes only its own output pixel (NaN there if
        ``nan_propagates``)."""
        x, flow = case.image(), case.flow()
        g = torch.Generator().manual_seed(case.seed)
        b, c, i, j = (int(torch.randint(0, n, (1,), generator=g)) for n in (case.batch, 2, case.height, case.width))
        clean = flow.clone()
        clean[b, :, i, j] = 0.0
        bad = clean.clone()
        bad[b, c, i, j] = math.nan
        out, expected = self.warp(x, bad), self.warp(x, clean)
        here = torch.zeros_like(x, dtype=torch.bool)
        here[b, :, i, j] = True
        _assert_equal(out[~here], expected[~here], "pixels without NaN displacement")
        if self.nan_propagates:
            assert out[here].isnan().all(), f"NaN displacement at {(b, c, i, j)} gave {out[here].tolist()}"

    def test_output_dtype_is_the_image_dtype(self) -> None:
        """Outside autocast the output has the dtype of ``x`` (float16/bfloat16/32/64), any flow dtype."""
        case = WarpCase(2, 3, 5, 7, seed=0)
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            for flow_dtype in dict.fromkeys((dtype, torch.float32)):
                out = self.warp(case.image(dtype), case.flow(flow_dtype))
                assert out.dtype == dtype, f"x {dtype}, flow {flow_dtype}: output {out.dtype}"

    # -- autocast ----------------------------------------------------------------------------
    def check_autocast(self, device: str, dtype: torch.dtype) -> None:
        """Autocast keeps the warp within tolerance of float32, at small and large coordinates.

        1. float32 ``x`` and flow under autocast: float32 output within ``autocast_fp32_atol``
           of the result outside autocast.
        2. ``x`` and flow in ``dtype`` (what autocast convs produce): output of ``dtype``,
           within one ``dtype`` ulp (rtol = eps) of the float32 warp of the same values.
        3. A 1×1×4×1100 image with sub-pixel flows (multiples of 1/64, exact in ``dtype``):
           within ``large_atol`` + one output ulp of the float64 warp, for float32 and
           ``dtype`` images. Half-precision positions would fail here: beyond 1024 px
           fp16 positions are 1 px apart and bf16 ones 8 px.
        """
        if device == "cuda" and not torch.cuda.is_available():
            pytest.skip("CUDA is not available")
        eps = torch.finfo(dtype).eps
        for case in (WarpCase(2, 3, 9, 13, seed=7), *THIN_CASES):
            x, flow = case.image().to(device), case.flow().to(device)
            plain = self.warp(x, flow)
            with torch.autocast(device, dtype=dtype):
                out32 = self.warp(x, flow)
                low = self.warp(x.to(dtype), flow.to(dtype))
            assert out32.dtype == torch.float32, f"float32 input under {dtype} autocast gave {out32.dtype}"
            _assert_close(out32, plain, self.autocast_fp32_atol, f"float32 input under {dtype} autocast")
            assert low.dtype == dtype, f"{dtype} input under autocast gave {low.dtype}"
            expected = self.warp(x.to(dtype).float(), flow.to(dtype).float())
            _assert_close(low.float(), expected, 1e-6, f"{dtype} input under autocast", rtol=eps)

        g = torch.Generator().manual_seed(11)
        x = torch.rand(1, 1, 4, 1100, generator=g).to(device)
        flow = (torch.randint(-63, 64, (1, 2, 4, 1100), generator=g) / 64.0).to(device)
        for image_dtype in (torch.float32, dtype):
            xi = x.to(image_dtype)
            with torch.autocast(device, dtype=dtype):
                out = self.warp(xi, flow.to(dtype))
            expected = self.warp(xi.double(), flow.double())
            rtol = torch.finfo(out.dtype).eps
            _assert_close(out[..., 1000:], expected[..., 1000:], self.large_atol, f"x > 1000 px, {image_dtype}", rtol)
            _assert_close(out, expected, self.large_atol, f"1100 px wide, {image_dtype} image", rtol)

    def test_autocast_cpu_bfloat16(self) -> None:
        """CPU bf16 autocast: see :meth:`check_autocast`."""
        self.check_autocast("cpu", torch.bfloat16)

    @pytest.mark.cuda
    def test_autocast_cuda_float16(self) -> None:
        """CUDA fp16 autocast: see :meth:`check_autocast` (skipped without CUDA)."""
        self.check_autocast("cuda", torch.float16)

    @pytest.mark.cuda
    def test_autocast_cuda_bfloat16(self) -> None:
        """CUDA bf16 autocast: see :meth:`check_autocast` (skipped without CUDA)."""
        self.check_autocast("cuda", torch.bfloat16)
