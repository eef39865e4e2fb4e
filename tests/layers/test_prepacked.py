"""PrepackedConv2d / PrepackedConvTranspose2d: nn.Conv2d / nn.ConvTranspose2d with their weight
packed once for CPU inference. They must give nn's outputs bit for bit and never use a stale
packed weight."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from refsr_blocks.layers import PrepackedConv2d, PrepackedConvTranspose2d, flop_formulas, prepacked
from refsr_blocks.layers.prepacked import _mkldnn_ops_available, packed_dtype_problem

CL = torch.channels_last

pytestmark = pytest.mark.skipif(not _mkldnn_ops_available(), reason="PyTorch built without oneDNN")

#: The library's own check decides whether bf16 takes the packed path here (a CPU without
#: avx512bw/vl/dq or avx_ne_convert fails it; ``ONEDNN_MAX_CPU_ISA=AVX2`` reproduces that).
BF16_PROBLEM = packed_dtype_problem(torch.bfloat16)
needs_packed_bf16 = pytest.mark.skipif(
    BF16_PROBLEM is not None, reason=f"no packed bf16 convolutions on this CPU: {BF16_PROBLEM}"
)

#: (class, nn twin, in, out, kernel, stride, padding): FlowNetS-like layers.
LAYERS = [
    (PrepackedConv2d, nn.Conv2d, 16, 32, 3, 1, 1),
    (PrepackedConv2d, nn.Conv2d, 6, 16, 7, 2, 3),
    (PrepackedConv2d, nn.Conv2d, 32, 24, 5, 2, 2),
    (PrepackedConvTranspose2d, nn.ConvTranspose2d, 34, 16, 4, 2, 1),
]


def _pair(cls, twin, cin, cout, k, stride, pad, bias=True, seed=0):
    torch.manual_seed(seed)
    layer = cls(cin, cout, k, stride, pad, bias=bias).to(memory_format=CL)
    plain = twin(cin, cout, k, stride, pad, bias=bias).to(memory_format=CL)
    plain.load_state_dict(layer.state_dict())
    return layer, plain


def _input(cin, h=13, w=18, batch=2, seed=1):
    torch.manual_seed(seed)
    return torch.randn(batch, cin, h, w).contiguous(memory_format=CL)


@pytest.mark.parametrize(("cls", "twin", "cin", "cout", "k", "stride", "pad"), LAYERS)
@pytest.mark.parametrize(
    "precision",
    [
        "fp32",
        pytest.param("bf16_autocast", marks=needs_packed_bf16),
        pytest.param("bf16_model", marks=needs_packed_bf16),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_packed_path_equals_nn_bit_for_bit(cls, twin, cin, cout, k, stride, pad, precision, bias) -> None:
    layer, plain = _pair(cls, twin, cin, cout, k, stride, pad, bias)
    x = _input(cin)
    if precision == "bf16_model":
        layer, plain, x = layer.bfloat16(), plain.bfloat16(), x.bfloat16()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16_autocast"):
        assert layer._packed_dtype(x) is not None
        out, expected = layer(x), plain(x)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert torch.equal(out, expected)
    assert out.is_contiguous(memory_format=CL)


def _bf16_runs_as_nn_exactly(cls, twin, cin, cout, k, stride, pad, precision) -> None:
    """Where the packed bf16 check fails, bf16 input runs the nn parent: same output, no packed copy."""
    layer, plain = _pair(cls, twin, cin, cout, k, stride, pad)
    x = _input(cin)
    if precision == "bf16_model":
        layer, plain, x = layer.bfloat16(), plain.bfloat16(), x.bfloat16()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16_autocast"):
        assert layer._packed_dtype(x) is None
        out, expected = layer(x), plain(x)
    assert layer._packed is None
    assert out.dtype == expected.dtype == torch.bfloat16
    assert torch.equal(out, expected)


@pytest.mark.skipif(BF16_PROBLEM is None, reason="this CPU has the packed bf16 path (its fallback is tested below)")
@pytest.mark.parametrize(("cls", "twin", "cin", "cout", "k", "stride", "pad"), LAYERS)
@pytest.mark.parametrize("precision", ["bf16_autocast", "bf16_model"])
def test_without_packed_bf16_the_layers_run_as_nn(cls, twin, cin, cout, k, stride, pad, precision) -> None:
    """The real fallback, on a CPU that fails the check (or under ``ONEDNN_MAX_CPU_ISA=AVX2``)."""
    _bf16_runs_as_nn_exactly(cls, twin, cin, cout, k, stride, pad, precision)


@pytest.mark.parametrize("precision", ["bf16_autocast", "bf16_model"])
def test_a_failed_bf16_check_makes_the_layers_run_as_nn(monkeypatch, precision) -> None:
    """The same fallback on every CPU: the check is told bf16 failed, as it is on an AVX2 CPU."""
    monkeypatch.setattr(prepacked, "packed_dtypes", lambda: (torch.float32,))
    _bf16_runs_as_nn_exactly(*LAYERS[0], precision)
    _bf16_runs_as_nn_exactly(*LAYERS[3], precision)


def test_weight_is_packed_once_and_reused() -> None:
    layer, _ = _pair(*LAYERS[0])
    x = _input(16)
    with torch.inference_mode():
        layer(x)
        packed = layer._packed[1]
        layer(x)
        assert layer._packed[1] is packed


@pytest.mark.parametrize("change", ["load_state_dict", "in_place_update", "input_shape", "autocast", "to_float64"])
def test_a_stale_packed_weight_is_never_used(change: str) -> None:
    """After a change to the weights, the dtype or the input shape, the output follows it."""
    layer, plain = _pair(*LAYERS[0])
    x = _input(16)
    with torch.inference_mode():
        layer(x)  # packs
    other, _ = _pair(*LAYERS[0], seed=7)
    autocast = False
    if change == "load_state_dict":
        layer.load_state_dict(other.state_dict())
        plain.load_state_dict(other.state_dict())
    elif change == "in_place_update":
        with torch.no_grad():
            layer.weight.mul_(-2)
            plain.weight.mul_(-2)
    elif change == "input_shape":
        x = _input(16, h=9, w=30, batch=1)
    elif change == "autocast":
        autocast = True
    elif change == "to_float64":
        layer, plain, x = layer.double(), plain.double(), x.double()
        assert layer._packed is None, ".to() drops the packed copy"
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        assert torch.equal(layer(x), plain(x))


@pytest.mark.parametrize("case", ["autograd", "nchw", "nchw_weight_1x1_map", "reflect", "output_size"])
def test_other_cases_run_nn_exactly(case: str) -> None:
    cls, twin = (
        (PrepackedConvTranspose2d, nn.ConvTranspose2d) if case == "output_size" else (PrepackedConv2d, nn.Conv2d)
    )
    kwargs = {"padding_mode": "reflect"} if case == "reflect" else {}
    torch.manual_seed(0)
    layer, plain = cls(8, 4, 3, 2, 1, **kwargs), twin(8, 4, 3, 2, 1, **kwargs)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(1, 8, 9, 10)
    if case == "nchw_weight_1x1_map":
        x = torch.randn(1, 8, 1, 1)  # both contiguous and channels_last; the NCHW weight decides
    elif case != "nchw":
        x = x.contiguous(memory_format=CL)
        layer, plain = layer.to(memory_format=CL), plain.to(memory_format=CL)
    call = {"output_size": [18, 20]} if case == "output_size" else {}
    with torch.inference_mode(case != "autograd"):
        if case != "output_size":
            assert layer._packed_dtype(x) is None
        assert torch.equal(layer(x, **call), plain(x, **call))
    assert layer._packed is None


def test_gradients_flow_through_the_training_path() -> None:
    layer, _ = _pair(*LAYERS[3])
    x = _input(34).requires_grad_()
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None


def test_state_dict_copies_and_pickles_do_not_carry_the_packed_weight() -> None:
    layer, plain = _pair(*LAYERS[1])
    x = _input(6)
    with torch.inference_mode():
        layer(x)
    assert layer._packed is not None
    assert set(layer.state_dict()) == set(plain.state_dict())
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    clone = copy.deepcopy(layer)
    for other in (loaded, clone):
        assert getattr(other, "_packed", None) is None
        with torch.inference_mode():
            assert torch.equal(other(x), plain(x))


@pytest.mark.parametrize(("cls", "twin", "cin", "cout", "k", "stride", "pad"), LAYERS)
def test_flop_formulas_count_the_packed_path_as_the_plain_convolution(cls, twin, cin, cout, k, stride, pad) -> None:
    layer, plain = _pair(cls, twin, cin, cout, k, stride, pad)
    x = _input(cin)
    counts = []
    for module in (layer, plain):
        with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
            module(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
