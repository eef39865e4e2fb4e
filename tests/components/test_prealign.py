"""Pre-alignment: phase correlation finds whole-pixel shifts; CrossNet adds them to its flows."""

from __future__ import annotations

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model
from refsr_blocks.components.prealigns import PhaseCorrelation, phase_correlation_shift, shift_image
from refsr_blocks.ops import backward_warp
from refsr_blocks.testing import PrealignContract


def _textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random texture, 1×3×h×w (phase correlation needs structure, not white noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


class TestPhaseCorrelationContract(PrealignContract):
    name = "phase_correlation"


class TestNoPrealignContract(PrealignContract):
    name = "none"


@pytest.mark.parametrize(("dx", "dy"), [(0, 0), (37, 0), (-52, 3), (-8, -6)])
def test_recovers_a_known_shift(dx: int, dy: int) -> None:
    big = _textured(200, 320)
    target = big[..., 40:160, 80:240]
    ref = big[..., 40 - dy : 160 - dy, 80 - dx : 240 - dx]  # target[p] = ref[p + (dx, dy)]
    shift = phase_correlation_shift(target, ref, max_shift=64)
    assert shift.tolist() == [[float(dx), float(dy)]]


def test_shift_outside_the_search_range_is_not_reported() -> None:
    big = _textured(200, 320, seed=1)
    target, ref = big[..., 40:160, 80:240], big[..., 40:160, 20:180]  # true shift: x = +60
    assert phase_correlation_shift(target, ref, max_shift=30).abs().max() <= 30


def test_downscale_gives_multiples_close_to_the_truth() -> None:
    big = _textured(200, 320, seed=2)
    target, ref = big[..., 40:160, 80:240], big[..., 40:160, 101:261]  # target[p] = ref[p + (-21, 0)]
    shift = PhaseCorrelation(max_shift=64, downscale=2)(target, ref)
    assert shift[0, 0] % 2 == 0 and abs(shift[0, 0].item() + 21) <= 2 and shift[0, 1].item() == 0


def test_shift_image_is_an_exact_backward_warp_by_a_constant_flow() -> None:
    x = torch.rand(2, 3, 9, 11)
    shift = torch.tensor([[3.0, -2.0], [-4.0, 1.0]])
    flow = shift[:, :, None, None].expand(2, 2, 9, 11)
    assert torch.equal(shift_image(x, shift), backward_warp(x, flow))


def test_crossnet_flows_include_the_prealignment_shift(monkeypatch) -> None:
    model = build_model(
        {**TINY_CROSSNET, "components": {**TINY_CROSSNET["components"], "prealign": "phase_correlation"}}
    )
    monkeypatch.setattr(model.aligner.prealign, "forward", lambda target, ref: torch.tensor([[8.0, -4.0]]))
    monkeypatch.setattr(
        model.aligner.flow, "forward", lambda target, ref: [torch.zeros(1, 2, 16 // 2**k, 24 // 2**k) for k in range(3)]
    )
    out = model.forward_intermediates(torch.rand(1, 3, 8, 12), torch.rand(1, 3, 16, 24))
    assert [f[0, :, 0, 0].tolist() for f in out["flows"]] == [[8.0, -4.0], [4.0, -2.0], [2.0, -1.0]]
    assert out["shift"].tolist() == [[8.0, -4.0]]


def test_crossnet_without_prealign_is_unchanged_by_the_slot() -> None:
    model = build_model(TINY_CROSSNET)
    assert model.spec["components"]["prealign"]["name"] == "none"
    out = model.forward_intermediates(torch.rand(1, 3, 8, 12), torch.rand(1, 3, 16, 24))
    assert out["shift"].abs().max() == 0
