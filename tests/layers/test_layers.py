"""FewOutputConv2d: an nn.Conv2d whose CPU inference path splits the kernel into rows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from refsr_blocks.layers import FewOutputConv2d

CL = torch.channels_last


def _layer(cin: int, cout: int, kernel: int, bias: bool = True, seed: int = 0) -> FewOutputConv2d:
    torch.manual_seed(seed)
    return FewOutputConv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)


@pytest.mark.parametrize(("cin", "cout", "kernel"), [(64, 3, 5), (50, 2, 3), (7, 2, 3), (5, 1, 1), (6, 3, 5)])
@pytest.mark.parametrize(("batch", "height", "width"), [(1, 1, 1), (2, 1, 7), (1, 2, 3), (3, 9, 4), (1, 23, 31)])
@pytest.mark.parametrize("bias", [True, False])
def test_row_split_matches_conv2d(cin, cout, kernel, batch, height, width, bias) -> None:
    """The fast path equals F.conv2d to float32 rounding, also on images shorter than the kernel."""
    layer = _layer(cin, cout, kernel, bias)
    x = torch.randn(batch, cin, height, width).contiguous(memory_format=CL)
    with torch.inference_mode():
        assert layer._row_split_applies(x)
        out = layer(x)
        expected = F.conv2d(x, layer.weight, layer.bias, padding=kernel // 2)
    assert out.shape == expected.shape
    assert out.is_contiguous(memory_format=CL), "the output keeps the channels_last format"
    scale = expected.abs().max().item() + 1e-12
    assert (out - expected).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    ("cin", "cout", "kernel", "height", "width"), [(64, 3, 5, 40, 48), (50, 2, 3, 33, 20), (7, 2, 3, 2, 9)]
)
@pytest.mark.parametrize("input_dtype", ["float32", "half"])
def test_autocast_row_split_is_within_one_half_rounding(half, cin, cout, kernel, height, width, input_dtype) -> None:
    """Under CPU half autocast the result is float32 and within one half-precision rounding
    of the absolute sum conv(|x|, |w|) of the exact convolution of the same half inputs."""
    layer = _layer(cin, cout, kernel)
    x = torch.rand(2, cin, height, width).contiguous(memory_format=CL)  # post-ReLU-like features
    if input_dtype == "half":
        x = x.to(half)
    with torch.inference_mode(), torch.autocast("cpu", half):
        assert layer._row_split_applies(x)
        out = layer(x)
    assert out.dtype == torch.float32, "the partial sums are added in float32 and not rounded again"
    assert out.is_contiguous(memory_format=CL)
    xh, wh = x.to(half).double(), layer.weight.to(half).double()
    exact = F.conv2d(xh, wh, layer.bias.double(), padding=kernel // 2)
    magnitude = F.conv2d(xh.abs(), wh.abs(), padding=kernel // 2)
    unit_roundoff = torch.finfo(half).eps / 2
    # Each partial sum is rounded once (≤ u·|partial|); float32 accumulation adds far less than 1e-3 of that.
    bound = unit_roundoff * magnitude * 1.001 + 1e-6
    assert ((out.double() - exact).abs() <= bound).all()


def test_autocast_row_split_is_about_as_accurate_as_the_direct_conv() -> None:
    """At the decoder's output shape the bf16 row split's error is comparable to F.conv2d's under
    autocast (per seed it ranges 0.6-1.7× of it; pooled over seeds it is close to 1×)."""
    split_err, direct_err = [], []
    for seed in range(4):
        layer = _layer(64, 3, 5, seed=seed)
        x = torch.rand(1, 64, 48, 64).contiguous(memory_format=CL)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            split = layer(x)
            direct = F.conv2d(x, layer.weight, layer.bias, padding=2)
        exact = F.conv2d(x.bfloat16().double(), layer.weight.bfloat16().double(), layer.bias.double(), padding=2)
        split_err.append((split.double() - exact).abs().flatten())
        direct_err.append((direct.double() - exact).abs().flatten())
    split_all, direct_all = torch.cat(split_err), torch.cat(direct_err)
    assert split_all.mean() <= 1.25 * direct_all.mean()
    assert split_all.max() <= 1.5 * direct_all.max()


def test_is_an_nn_conv2d_with_the_same_state_dict() -> None:
    """Swapping nn.Conv2d for FewOutputConv2d keeps checkpoints loadable."""
    plain = nn.Conv2d(8, 2, 3, padding=1)
    layer = FewOutputConv2d(8, 2, 3, padding=1)
    assert isinstance(layer, nn.Conv2d)
    layer.load_state_dict(plain.state_dict())
    x = torch.randn(1, 8, 6, 5).contiguous(memory_format=CL)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), plain(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "case",
    ["autograd", "nchw", "bf16", "autocast_nchw", "stride", "dilation", "many_outputs", "valid_padding", "reflect"],
)
def test_other_cases_run_nn_conv2d_exactly(case: str) -> None:
    """Outside its conditions the layer is plain nn.Conv2d, bit for bit."""
    kwargs = {"padding": 1}
    cout = 2
    if case == "stride":
        kwargs["stride"] = 2
    if case == "dilation":
        kwargs.update(dilation=2, padding=2)
    if case == "many_outputs":
        cout = 8  # 8 outputs × 3 rows > 16
    if case == "valid_padding":
        kwargs["padding"] = 0
    if case == "reflect":
        kwargs["padding_mode"] = "reflect"
    torch.manual_seed(0)
    layer = FewOutputConv2d(4, cout, 3, **kwargs)
    plain = nn.Conv2d(4, cout, 3, **kwargs)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 9, 11)
    if not case.endswith("nchw"):
        x = x.contiguous(memory_format=CL)
    if case == "bf16":
        layer, plain, x = layer.bfloat16(), plain.bfloat16(), x.bfloat16()
    with (
        torch.inference_mode(case != "autograd"),
        torch.autocast("cpu", torch.bfloat16, enabled=case.startswith("autocast")),
    ):
        assert not layer._row_split_applies(x)
        assert torch.equal(layer(x), plain(x))


def test_gradients_flow_through_the_training_path() -> None:
    layer = _layer(6, 2, 3)
    x = torch.randn(1, 6, 7, 8, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None and layer.bias.grad is not None
