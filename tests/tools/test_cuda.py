"""CUDA paths: fp16 (with GradScaler) and bf16 training steps, CPU vs CUDA forward, warp precision
beyond 512 px under fp16 autocast, deterministic mode. Skipped cleanly without CUDA.

Run them alone with ``pytest -m cuda``. Tolerances are stated next to each assertion.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from small import TINY_CROSSNET
from torch import Tensor, nn

from refsr_blocks import build_model
from refsr_blocks.components.losses import CharbonnierLoss
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.ops.warp import backward_warp, pixel_grid
from refsr_blocks.testing import bilinear_reference
from refsr_blocks.tools.precision import smooth_pair

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = "cuda"


@pytest.fixture
def no_tf32() -> Iterator[None]:
    """Full float32 convolutions and matmuls (PyTorch lets cuDNN convolutions use TF32 by default)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def tiny_model() -> nn.Module:
    """The tiny CrossNet (×2, 3 scales, 8 channels, residual), weights seeded with 0, on the CPU."""
    torch.manual_seed(0)
    return build_model(TINY_CROSSNET)


def flat_grads(model: nn.Module) -> Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def _cuda_pair() -> tuple[Tensor, Tensor, Tensor]:
    return tuple(t.to(CUDA) for t in smooth_pair())  # type: ignore[return-value]


def _fp32_grads_cuda() -> tuple[float, Tensor]:
    model = tiny_model().to(CUDA)
    lr, ref, target = _cuda_pair()
    loss = CharbonnierLoss()(model(lr, ref), target)
    loss.backward()
    return loss.item(), flat_grads(model)


# -- forward ------------------------------------------------------------------------------------------


def _forward_cpu_and_cuda() -> tuple[Tensor, Tensor]:
    """The tiny model's output for the smooth pair on the CPU, then on CUDA (brought back)."""
    model = tiny_model().eval()
    lr, ref, _ = smooth_pair()
    with torch.no_grad():
        cpu = model(lr, ref)
        cuda = model.to(CUDA)(lr.to(CUDA), ref.to(CUDA)).cpu()
    return cpu, cuda


def test_forward_cpu_vs_cuda_fp32(no_tf32: None) -> None:
    """Same weights, same inputs: CUDA float32 (TF32 off) within 1e-4 of CPU (kernel sum order)."""
    cpu, cuda = _forward_cpu_and_cuda()
    torch.testing.assert_close(cuda, cpu, atol=1e-4, rtol=0)


def test_forward_cpu_vs_cuda_default_tf32() -> None:
    """With PyTorch's default (cuDNN convolutions in TF32, 11 significant bits): within 1e-2."""
    cpu, cuda = _forward_cpu_and_cuda()
    torch.testing.assert_close(cuda, cpu, atol=1e-2, rtol=0)


@pytest.mark.parametrize(("dtype", "min_psnr"), [(torch.float16, 55.0), (torch.bfloat16, 45.0)])
def test_autocast_forward_close_to_fp32(no_tf32: None, dtype: torch.dtype, min_psnr: float) -> None:
    """CUDA autocast forward vs float32: PSNR ≥ 55 dB (fp16, 11 bits) / 45 dB (bf16, 8 bits)."""
    model = tiny_model().to(CUDA).eval()
    lr, ref, _ = _cuda_pair()
    with torch.no_grad():
        fp32 = model(lr, ref)
        with torch.autocast(CUDA, dtype=dtype):
            low = model(lr, ref)
    assert psnr(low.float(), fp32, clamp=False).min().item() >= min_psnr


# -- training steps ------------------------------------------------------------------------------------


def test_fp16_training_step_with_grad_scaler(no_tf32: None) -> None:
    """fp16 autocast + ``torch.amp.GradScaler``: the step is taken (no inf/NaN gradient), the
    unscaled gradients are within 5% (relative L2) of float32's, parameters stay finite.

    The default initial scale 2^16 fits: the largest gradient here is ~0.12 (CPU float32),
    so scaled gradients stay ~8× below fp16's maximum, 65504.
    """
    loss32, g32 = _fp32_grads_cuda()
    model = tiny_model().to(CUDA)
    before = [p.detach().clone() for p in model.parameters()]
    lr, ref, target = _cuda_pair()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(CUDA)
    with torch.autocast(CUDA, dtype=torch.float16):
        loss = CharbonnierLoss()(model(lr, ref), target)
    assert loss.dtype == torch.float32
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    g16 = flat_grads(model)
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == scale, "GradScaler found inf/NaN gradients and skipped the step"
    assert abs(loss.item() - loss32) <= 1e-3
    assert ((g16 - g32).norm() / g32.norm()).item() <= 0.05
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before)), "no parameter changed"


def test_bf16_training_step(no_tf32: None) -> None:
    """bf16 autocast needs no scaler (fp32's exponent range): loss within 1e-3, gradients within
    5% of float32's, and a few Adam steps lower the loss."""
    loss32, g32 = _fp32_grads_cuda()
    model = tiny_model().to(CUDA)
    lr, ref, target = _cuda_pair()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(4):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(CUDA, dtype=torch.bfloat16):
            loss = CharbonnierLoss()(model(lr, ref), target)
        loss.backward()
        if step == 0:
            assert abs(loss.item() - loss32) <= 1e-3
            assert ((flat_grads(model) - g32).norm() / g32.norm()).item() <= 0.05
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses


# -- warp precision -------------------------------------------------------------------------------------


def test_warp_beyond_512px_under_fp16_autocast() -> None:
    """A 1×1×4×1100 image, sub-pixel flows, fp16 image and flow under fp16 autocast: within one
    fp16 ulp (rtol 2^-10) of the float64 definition at x > 1000, because positions stay float32.

    The same problem through ``grid_sample`` with an fp16 grid (what an fp16 flow gives; CUDA
    autocast runs grid_sample in its inputs' widest dtype) is off by more than 0.05: fp16
    positions beyond 1024 px are 1 px apart (normalised: 2^-11 ≈ 0.5 px).
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 4, 1100, generator=g)
    flow = torch.randint(-63, 64, (1, 2, 4, 1100), generator=g) / 64.0
    expected = bilinear_reference(x.half().float(), flow)[..., 1000:]
    with torch.autocast(CUDA, dtype=torch.float16):
        out = backward_warp(x.half().to(CUDA), flow.half().to(CUDA))
    assert out.dtype == torch.float16
    # rtol: one fp16 rounding of the float32 blend; atol: fp16 subnormals (< 6e-5) are coarser
    torch.testing.assert_close(out[..., 1000:].cpu().double(), expected, atol=1e-6, rtol=2**-10)

    pos = pixel_grid(4, 1100) + flow
    norm = pos * pos.new_tensor([2 / 1099, 2 / 3]).view(1, 2, 1, 1) - 1
    with torch.autocast(CUDA, dtype=torch.float16):
        naive = F.grid_sample(
            x.half().to(CUDA), norm.half().permute(0, 2, 3, 1).to(CUDA), align_corners=True, padding_mode="border"
        )
    assert (naive[..., 1000:].cpu().double() - expected).abs().max() > 0.05


def test_warp_beyond_512px_under_bf16_autocast() -> None:
    """The bf16 twin of the fp16 check, at 1100 px: positions stay float32, each weight is split into
    two bf16 halves (16 significant bits) and ``embedding_bag`` accumulates in float32, so the
    result is within one bf16 rounding (rtol 2^-8) of the float64 blend of the same bf16 image."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 4, 1100, generator=g)
    flow = torch.randint(-63, 64, (1, 2, 4, 1100), generator=g) / 64.0
    expected = bilinear_reference(x.bfloat16().float(), flow)[..., 1000:]
    with torch.autocast(CUDA, dtype=torch.bfloat16):
        out = backward_warp(x.bfloat16().to(CUDA), flow.bfloat16().float().to(CUDA))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out[..., 1000:].cpu().double(), expected, atol=1e-6, rtol=2**-8)


# -- the one-call path on CUDA ----------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_predictor_on_cuda_matches_the_cpu(no_tf32: None, precision: str) -> None:
    """``Predictor(device="cuda")``: the fast CPU layers are swapped in but inert on CUDA; fp32 matches
    the CPU within 1e-4, half precisions stay within their rounding (PSNR > 40 dB)."""
    from refsr_blocks import Predictor

    lr, ref, _ = _cuda_pair()
    cpu = Predictor(tiny_model(), device="cpu", precision="fp32").predict(lr.cpu(), ref.cpu())
    out = Predictor(tiny_model(), device="cuda", precision=precision).predict(lr, ref)
    assert out.device.type == "cpu" and out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    if precision == "fp32":
        torch.testing.assert_close(out, cpu, rtol=1e-4, atol=1e-4)
    else:
        assert psnr(out, cpu).min() > 40


def test_predictor_tiles_on_cuda(no_tf32: None) -> None:
    """Tiled inference on CUDA (the upsampler once, fuse per window) agrees with the CPU's tiling."""
    from refsr_blocks import Predictor

    g = torch.Generator().manual_seed(3)
    lr, ref = torch.rand(1, 3, 40, 56, generator=g), torch.rand(1, 3, 80, 112, generator=g)
    cpu = Predictor(tiny_model(), device="cpu", precision="fp32", window=64, stride=48).predict(lr, ref)
    cuda = Predictor(tiny_model(), device="cuda", window=64, stride=48).predict(lr, ref)
    torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-4)


# -- determinism ------------------------------------------------------------------------------------------


def _grads_once() -> Tensor:
    model = tiny_model().to(CUDA)
    lr, ref, target = _cuda_pair()
    CharbonnierLoss()(model(lr, ref), target).backward()
    return flat_grads(model)


def test_deterministic_mode_crossnet_is_bit_reproducible(deterministic_algorithms: None) -> None:
    """With ``torch.use_deterministic_algorithms(True)`` CrossNet (FlowNetS+, MDSR) trains on CUDA:
    gather's backward, replicate padding's backward and cuDNN switch to deterministic kernels,
    and two runs give bit-identical gradients."""
    assert torch.equal(_grads_once(), _grads_once())


def test_deterministic_mode_with_flownets(deterministic_algorithms: None) -> None:
    """FlowNetS (not FlowNetS+) upsamples its 1/4 flow with bilinear ``interpolate``, whose CUDA
    backward has no deterministic kernel (PyTorch's list): under the mode the backward raises
    a RuntimeError naming it. Should PyTorch gain such a kernel, the gradients must then be
    bit-identical instead."""
    torch.manual_seed(0)
    flow = {"name": "flownets", "params": {"width": 0.125}}
    spec = {**TINY_CROSSNET, "components": {**TINY_CROSSNET["components"], "flow": flow}}

    def grads() -> Tensor:
        torch.manual_seed(0)
        model = build_model(spec).to(CUDA)
        lr, ref, target = _cuda_pair()
        CharbonnierLoss()(model(lr, ref), target).backward()
        return flat_grads(model)

    try:
        first = grads()
    except RuntimeError as err:
        assert "upsample_bilinear2d_backward" in str(err) and "deterministic" in str(err), err
    else:
        assert torch.equal(first, grads())
