"""The ``match_flow`` aligner: a global correspondence that finds a reference under viewpoint
change (measured against the known flow on real photos), references of any size and number,
confidence where the reference does not cover the target, gradients and its place inside
CrossNet. The kind's contract runs from the registry (tests/testing/test_contracts.py)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model
from refsr_blocks.components.aligners import MatchFlowAligner
from refsr_blocks.ops.sample import inside_of, warp_from
from refsr_blocks.ops.warp import backward_warp

ROOT = Path(__file__).resolve().parents[2]
#: Viewpoint cases at a size where the 1/8 match grid is 36×48.
SIZE = (288, 384)
#: A small FlowNetS+ for the tests that run the whole aligner.
SMALL_FLOW = {"flow_params": {"width": 0.125}}


@cache
def bench() -> ModuleType:
    """``benchmarks/match_flow_alignment.py`` (its case generator and metrics), imported by path."""
    spec = importlib.util.spec_from_file_location(
        "match_flow_alignment", ROOT / "benchmarks" / "match_flow_alignment.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def cases() -> dict[str, object]:
    b = bench()
    photo = b.builtin_images()[0]
    return {kind: b.make_case(photo, kind, SIZE) for kind in b.CASES}


@cache
def coarse_aligner() -> MatchFlowAligner:
    """The untrained aligner with a zero residual flow: its coarse correspondence alone."""
    return MatchFlowAligner(flow=bench().ZeroFlow(1), scales=1).eval()


@pytest.mark.parametrize("kind", ["homography", "zoom_0.7", "zoom_1.4", "rotate_10", "shift_40", "partial"])
def test_coarse_correspondence_finds_the_reference_under_viewpoint_change(kind: str) -> None:
    """End-point error and warped-reference PSNR on the valid region, against identity and phase correlation."""
    b, case = bench(), cases()[kind]
    flow = b.coarse_flow(coarse_aligner(), case)
    identity = torch.zeros_like(case.flow)
    epe, epe_id, epe_phase = b.epe(flow, case), b.epe(identity, case), b.epe(b.phase_flow(case), case)
    assert epe < 3.0, f"{kind}: EPE {epe:.2f} px (identity {epe_id:.2f})"
    assert epe < 0.2 * epe_id
    if kind != "shift_40":  # a global shift is phase correlation's own case; elsewhere it must lose
        assert epe < 0.2 * epe_phase, f"{kind}: EPE {epe:.2f} vs phase correlation {epe_phase:.2f}"
    assert b.warped_psnr(flow, case) > b.warped_psnr(identity, case) + 8.0


def test_confidence_is_near_zero_where_the_reference_does_not_cover_the_target() -> None:
    case = cases()["partial"]
    with torch.no_grad():
        out = coarse_aligner()([case.target], [[case.ref]], target=case.target, refs=[case.ref])
    conf = out["confidence"][0]
    # More than 16 px beyond the reference's edge (nearer, the field's smoothing blurs the edge).
    uncovered = ~inside_of(case.flow, tuple(case.ref.shape[-2:]), margin=-16)
    assert uncovered.float().mean() > 0.3  # the case is a partial overlap
    # Most uncovered pixels get none; untrained, a few where random matches look alike keep some.
    assert conf[uncovered].median() < 0.01 and conf[uncovered].mean() < 0.15
    assert conf[case.valid].mean() > 0.8
    assert conf.min() >= 0 and conf.max() <= 1


def _pyramid(channels: tuple[int, ...], size: tuple[int, int], generator: torch.Generator) -> list[torch.Tensor]:
    return [
        torch.rand(1, c, -(-size[0] // 2**k), -(-size[1] // 2**k), generator=generator) for k, c in enumerate(channels)
    ]


def test_shapes_for_one_and_two_references_of_other_sizes_and_the_right_one_wins() -> None:
    """K = 1 and K = 2 (an unrelated reference of another size first): outputs on the target grid,
    the combined confidence follows the reference that shows the scene."""
    case = cases()["rotate_10"]
    g = torch.Generator().manual_seed(0)
    lr_ch, ref_ch = (4, 6, 8), (5, 6, 8)
    aligner = MatchFlowAligner(scales=3, lr_channels=list(lr_ch), ref_channels=list(ref_ch), **SMALL_FLOW).eval()
    unrelated = torch.rand(1, 3, 200, 150, generator=g)
    target_feats = _pyramid(lr_ch, SIZE, g)
    ref_feats = [_pyramid(ref_ch, tuple(r.shape[-2:]), g) for r in (unrelated, case.ref)]
    with torch.no_grad():
        one = aligner(target_feats, ref_feats[1:], target=case.target, refs=[case.ref])
        two = aligner(target_feats, ref_feats, target=case.target, refs=[unrelated, case.ref])
    for out in (one, two):
        for k, (t, a, c, f) in enumerate(zip(target_feats, out["aligned"], out["confidence"], out["flows"])):
            assert a.shape == (1, ref_ch[k], *t.shape[-2:]) and c.shape == (1, 1, *t.shape[-2:])
            assert f.shape == (1, 2, *t.shape[-2:])
            assert c.min() >= 0 and c.max() <= 1
        assert out["correspondence"].shape == (1, 2, SIZE[0] // 4, SIZE[1] // 4)
    assert two["reference"].item() == 1
    torch.testing.assert_close(two["flows"][0], one["flows"][0])
    assert (two["confidence"][0] - one["confidence"][0]).abs().mean() < 0.02


def test_gradients_reach_the_learnable_parts_and_the_reference_features() -> None:
    case = cases()["shift_40"]
    g = torch.Generator().manual_seed(1)
    small = (slice(None), slice(None), slice(64, 192), slice(96, 256))
    target, ref = case.target[small], case.ref[small]
    aligner = MatchFlowAligner(scales=2, lr_channels=[3, 4], ref_channels=[3, 4], embed_channels=4, **SMALL_FLOW)
    target_feats = _pyramid((3, 4), (128, 160), g)
    ref_feats = [[f.requires_grad_(True) for f in _pyramid((3, 4), (128, 160), g)]]
    out = aligner.train()(target_feats, ref_feats, target=target, refs=[ref])
    sum(a.square().mean() for a in out["aligned"]).backward()
    for name, p in aligner.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert aligner.flow.parameters().__next__().grad.abs().sum() > 0  # the refinement learns
    assert aligner.head.prior.weight.grad.abs().sum() > 0  # so does the confidence
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in ref_feats[0])


def test_warp_from_a_map_of_another_size() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 9, 13, generator=g)
    flow = torch.randn(2, 2, 9, 13, generator=g) * 3
    torch.testing.assert_close(warp_from(x, flow), backward_warp(x, flow), rtol=0, atol=0)
    big = torch.rand(1, 2, 20, 30, generator=g)
    shift = torch.zeros(1, 2, 5, 7)
    shift[:, 0], shift[:, 1] = 11.0, 4.0  # an integer displacement reads the bigger map exactly
    torch.testing.assert_close(warp_from(big, shift), big[..., 4:9, 11:18], rtol=0, atol=0)
    assert inside_of(shift, (20, 30)).all() and not inside_of(shift, (8, 17)).all()


def test_crossnet_takes_match_flow_with_references_of_any_size() -> None:
    """CrossNet's aligner slot: a reference of another size, correspondence and confidence shown."""
    model = build_model(TINY_CROSSNET, aligner="match_flow").eval()
    assert model.aligner.upscale == model.upscale  # the architecture hands its factor to the aligner
    g = torch.Generator().manual_seed(3)
    lr, ref = torch.rand(1, 3, 24, 32, generator=g), torch.rand(1, 3, 60, 44, generator=g)
    with torch.no_grad():
        out = model.forward_intermediates(lr, ref)
    assert out["sr"].shape == (1, 3, 48, 64)
    assert out["correspondence"].shape[:2] == (1, 2)
    assert [tuple(c.shape[-2:]) for c in out["confidence"]] == [(48, 64), (24, 32), (12, 16)]
