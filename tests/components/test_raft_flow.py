"""The ``raft_small`` flow component: torchvision's RAFT-small behind the flow contract."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from refsr_blocks import build_model
from refsr_blocks.components.flows.raft import MIN_SIZE, RAFTSmall
from refsr_blocks.ops.flow import level_size
from refsr_blocks.ops.warp import backward_warp
from refsr_blocks.testing import FlowContract


class TestRAFTSmallContract(FlowContract):
    """The library's flow contract, with a cheap number of updates."""

    name = "raft_small"
    params = {"num_updates": 2}  # noqa: RUF012 - the contract's ClassVar


def shifted_pair(shift: tuple[int, int], size: tuple[int, int] = (64, 64), seed: int = 0) -> tuple[Tensor, Tensor]:
    """A smooth random RGB scene cropped twice so that ``target[p] = ref[p + shift]`` exactly.

    Returns ``(target, ref)``, each 1×3×H×W in [0, 1]; ``shift = (dx, dy)`` in pixels.
    """
    (dx, dy), (h, w) = shift, size
    g = torch.Generator().manual_seed(seed)
    margin = max(abs(dx), abs(dy))
    noise = torch.rand(1, 3, (h + 2 * margin) // 8 + 2, (w + 2 * margin) // 8 + 2, generator=g)
    scene = F.interpolate(noise, size=(h + 2 * margin, w + 2 * margin), mode="bicubic", align_corners=False)
    scene = scene.clamp(0, 1)
    ref = scene[..., margin : margin + h, margin : margin + w]
    target = scene[..., margin + dy : margin + dy + h, margin + dx : margin + dx + w]
    return target, ref


def brute_force_raft(max_shift: int, seen: list[tuple[Tensor, Tensor]]):
    """A stand-in for :meth:`RAFTSmall.raft` with torchvision's convention, exact for integer shifts.

    Finds the integer ``d`` minimising ``|image1[p] - image2[p + d]|`` over the top-left 64×64
    (where the unpadded images lie) and returns it as a constant B×2×H×W flow (x, then y).
    """

    def raft(image1: Tensor, image2: Tensor) -> Tensor:
        seen.append((image1, image2))
        r, n = max_shift, 64 - 2 * max_shift
        errors = {}
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                a = image1[..., r : r + n, r : r + n]
                b = image2[..., r + dy : r + dy + n, r + dx : r + dx + n]
                errors[(dx, dy)] = (a - b).abs().mean().item()
        dx, dy = min(errors, key=errors.get)
        flow = torch.zeros(image1.shape[0], 2, *image1.shape[-2:], dtype=image1.dtype)
        flow[:, 0], flow[:, 1] = dx, dy
        return flow

    return raft


def test_direction_channels_and_level_scaling_with_a_stub_core(monkeypatch):
    """With a core that obeys torchvision's convention exactly, the wrapper returns
    ``target[p] ≈ ref[p + flow[p]]``, x in channel 0, and level k scaled by 2^-k."""
    shift = (4, -2)  # dx, dy
    target, ref = shifted_pair(shift)
    flow = RAFTSmall(scales=3)
    seen: list[tuple[Tensor, Tensor]] = []
    monkeypatch.setattr(flow, "raft", brute_force_raft(max_shift=5, seen=seen))
    levels = flow(target, ref)

    # What the core saw: [-1, 1] images, padded to RAFT's sizes, target first.
    (image1, image2) = seen[0]
    assert image1.shape == image2.shape == (1, 3, MIN_SIZE, MIN_SIZE)
    assert image1.min() >= -1 and image1.max() <= 1 and image1.min() < -0.5 < 0.5 < image1.max()
    assert torch.allclose(image1[..., :64, :64], target * 2 - 1)
    assert torch.allclose(image2[..., :64, :64], ref * 2 - 1)

    for k, f in enumerate(levels):
        assert f.shape == (1, 2, *level_size(64, 64, k))
        assert torch.allclose(f[:, 0], torch.full_like(f[:, 0], shift[0] / 2**k)), k
        assert torch.allclose(f[:, 1], torch.full_like(f[:, 1], shift[1] / 2**k)), k
    # The library's backward warp of ref by the level-0 flow reproduces target (away from borders).
    warped = backward_warp(ref, levels[0])
    assert torch.allclose(warped[..., 4:-4, 4:-4], target[..., 4:-4, 4:-4], atol=1e-6)


def test_odd_sizes_are_padded_and_cropped(monkeypatch):
    """An odd-sized pair reaches the core padded to a multiple of 8 (and >= MIN_SIZE);
    a constant core flow comes back per level with the contract's ceil sizes."""
    flow = RAFTSmall(scales=4)
    sizes = []

    def constant(image1: Tensor, image2: Tensor) -> Tensor:
        sizes.append(tuple(image1.shape[-2:]))
        out = torch.empty(image1.shape[0], 2, *image1.shape[-2:])
        out[:, 0], out[:, 1] = 3.0, -5.0
        return out

    monkeypatch.setattr(flow, "raft", constant)
    levels = flow(torch.rand(2, 3, 131, 45), torch.rand(2, 3, 131, 45))
    assert sizes == [(136, 128)]
    for k, f in enumerate(levels):
        assert f.shape == (2, 2, *level_size(131, 45, k))
        assert torch.allclose(f[:, 0], torch.tensor(3.0 / 2**k)) and torch.allclose(f[:, 1], torch.tensor(-5.0 / 2**k))


def test_update_loop_matches_torchvision():
    """RAFTSmall.raft re-states torchvision's RAFT.forward; the results must agree."""
    torch.manual_seed(0)
    flow = RAFTSmall(num_updates=3).eval()
    target, ref = shifted_pair((3, 2), size=(128, 128))
    image1, image2 = target * 2 - 1, ref * 2 - 1
    with torch.no_grad():
        ours = flow.raft(image1, image2)
        theirs = flow.core(image1, image2, num_flow_updates=3)[-1]
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_untrained_raft_on_a_shifted_pair_gives_shapes_and_finite_values():
    """Untrained, RAFT need not find the shift, but it runs and returns finite flows per level."""
    torch.manual_seed(0)
    flow = RAFTSmall(scales=4).eval()
    target, ref = shifted_pair((3, -2))
    with torch.no_grad():
        levels = flow(target, ref)
    assert len(levels) == 4
    for k, f in enumerate(levels):
        assert f.shape == (1, 2, *level_size(64, 64, k))
        assert f.dtype == torch.float32 and torch.isfinite(f).all()
    # Identical images: finite too (a degenerate correlation volume must not give NaNs).
    with torch.no_grad():
        assert all(torch.isfinite(f).all() for f in flow(ref, ref))


def test_grey_images_are_replicated_and_bad_arguments_raise():
    torch.manual_seed(0)
    grey = RAFTSmall(in_channels=1, scales=2, num_updates=1).eval()
    rgb = RAFTSmall(in_channels=3, scales=2, num_updates=1).eval()
    rgb.load_state_dict(grey.state_dict())
    a, b = torch.rand(2, 1, 1, 24, 40).unbind(0)
    with torch.no_grad():
        for g, c in zip(grey(a, b), rgb(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1))):
            assert torch.equal(g, c)
    with pytest.raises(ValueError, match="in_channels"):
        RAFTSmall(in_channels=4)
    with pytest.raises(ValueError, match="num_updates"):
        RAFTSmall(num_updates=0)
    with pytest.raises(ValueError, match="scales"):
        RAFTSmall(scales=0)
    with pytest.raises(ValueError, match="must match"):
        rgb(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 16))
    with pytest.raises(ValueError, match="B×3×H×W"):
        rgb(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_crossnet_lite_with_raft_small_trains():
    """``build_model("crossnet_lite", flow="raft_small")``: forward and backward at ×4, finite
    gradients into RAFT, and the model still deep-copies after a forward (no stored graph)."""
    torch.manual_seed(0)
    model = build_model("crossnet_lite", flow="raft_small")
    assert model.spec["components"]["flow"] == {"name": "raft_small", "params": {"num_updates": 6}}
    lr, ref = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)
    sr = model(lr, ref)
    assert sr.shape == (1, 3, 64, 64)
    sr.square().mean().backward()
    grads = [p.grad for p in model.aligner.flow.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    copy.deepcopy(model)
