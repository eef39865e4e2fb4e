"""The CPU fast layers as an opt-in swap: plain models, same state_dict, checked private operators."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from small import TINY_CROSSNET
from torch import nn

from refsr_blocks import build_model, load_model, save_model
from refsr_blocks.inference.runtime import optimize_for_inference, run
from refsr_blocks.layers import (
    FewOutputConv2d,
    PrepackedConv2d,
    PrepackedConvTranspose2d,
    prepacked,
    use_fast_layers,
    use_plain_layers,
)

FAST = (FewOutputConv2d, PrepackedConv2d, PrepackedConvTranspose2d)


@pytest.fixture
def fresh_probe():
    """Forget the once-per-process operator check before and after the test."""
    prepacked.packed_dtypes.cache_clear()
    yield
    prepacked.packed_dtypes.cache_clear()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(TINY_CROSSNET)


def test_models_are_built_from_plain_layers() -> None:
    for preset in ("crossnet", "crossnet_lite"):
        model = build_model(preset)
        assert not any(isinstance(m, FAST) for m in model.modules()), preset


def test_swap_keeps_the_state_dict_and_checkpoints_load_both_ways(tmp_path) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    counts = use_fast_layers(model)
    assert counts["few_output"] > 0 and (counts["packed"] > 0) == prepacked._mkldnn_ops_available()
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert use_fast_layers(model) == {"few_output": 0, "packed": 0}, "a second swap changes nothing"
    # a swapped model saves the same checkpoint, and a plain one loads it
    path = save_model(model, tmp_path / "fast.safetensors")
    loaded = load_model(path)
    assert not any(isinstance(m, FAST) for m in loaded.modules())
    assert use_plain_layers(model) == counts
    assert not any(isinstance(m, FAST) for m in model.modules())


def test_swapped_model_matches_the_plain_one() -> None:
    lr, ref = torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40)
    plain = _model().eval()
    with torch.no_grad():
        expected = plain(lr, ref)
    fast = optimize_for_inference(_model())
    assert any(isinstance(m, FewOutputConv2d) for m in fast.modules())
    torch.testing.assert_close(run(fast, lr, ref), expected, rtol=1e-5, atol=1e-5)
    # training still works on a swapped model (the fast twins act only without autograd)
    fast.train().requires_grad_(True)
    fast(lr, ref).mean().backward()
    assert all(p.grad is not None for p in fast.decoder.parameters())


def test_optimize_for_inference_can_leave_the_layers_plain() -> None:
    model = optimize_for_inference(_model(), fast_layers=False)
    assert not any(isinstance(m, FAST) for m in model.modules())


def test_missing_operators_fall_back_with_one_warning(fresh_probe, monkeypatch) -> None:
    class NoOps:  # a torch.ops.mkldnn without the private packing operators
        pass

    monkeypatch.setattr(torch.ops, "mkldnn", NoOps(), raising=False)
    with pytest.warns(RuntimeWarning, match="packed-weight convolutions are disabled.*lacks") as record:
        assert prepacked.packed_dtypes() == ()
        model = _model()
        counts = use_fast_layers(model)
        use_fast_layers(_model())
    assert len(record) == 1, "one warning per process"
    assert counts["packed"] == 0 and counts["few_output"] > 0
    lr, ref = torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40)
    assert run(model.eval(), lr, ref).shape == ref.shape


def test_operators_that_misbehave_fall_back(fresh_probe, monkeypatch) -> None:
    real = torch.ops.mkldnn

    class Wrong:  # the operators exist but compute something else (a changed signature's meaning)
        def __getattr__(self, name):
            op = getattr(real, name)
            if name == "_convolution_pointwise":
                return lambda *args: op(*args) * 2
            return op

    monkeypatch.setattr(torch.ops, "mkldnn", Wrong(), raising=False)
    with pytest.warns(RuntimeWarning, match="conv differs from F.conv"):
        assert prepacked.packed_dtypes() == ()
    layer = PrepackedConv2d(4, 8, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.rand(1, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert layer._packed_dtype(x) is None
        torch.testing.assert_close(layer(x), nn.functional.conv2d(x, layer.weight, layer.bias, padding=1))


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_the_check_passes_here_silently(fresh_probe) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.float32 in prepacked.packed_dtypes()


def test_a_swapped_model_pickles_without_packed_copies() -> None:
    model = optimize_for_inference(_model())
    run(model, torch.rand(1, 3, 12, 20), torch.rand(1, 3, 24, 40))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    assert all(getattr(m, "_packed", None) is None for m in again.modules())
