"""flownet2-pytorch FlowNetS → flownets / flownets_plus: layout, the ÷20 full-resolution convention, a known shift."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from replica_parts import FLOWNETS_CONVS

from refsr_blocks import create_component, load_model
from refsr_blocks.components.warpers import backward_warp
from refsr_blocks.interop import ConversionError, flownet2_flownets

# FlowNet2S's expanding layers after its convs (FLOWNETS_CONVS), in its own names.
DECONVS = {5: (1024, 512), 4: (1026, 256), 3: (770, 128), 2: (386, 64)}
PREDICT_IN = {6: 1024, 5: 1026, 4: 770, 3: 386, 2: 194}


def _source_state(seed: int = 0, zero: bool = False) -> dict[str, torch.Tensor]:
    """A FlowNet2S state dict in flownet2-pytorch's names and shapes (random, or all zeros)."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, scale):
        return torch.zeros(shape) if zero else torch.randn(shape, generator=g) * scale

    s = {}
    for name, cin, cout, k, _ in FLOWNETS_CONVS:
        s[f"{name}.0.weight"] = t(cout, cin, k, k, scale=(2 / (cin * k * k)) ** 0.5)
        s[f"{name}.0.bias"] = t(cout, scale=0.01)
    for k, (cin, cout) in DECONVS.items():
        s[f"deconv{k}.0.weight"] = t(cin, cout, 4, 4, scale=(1 / cin) ** 0.5)
        s[f"deconv{k}.0.bias"] = t(cout, scale=0.01)
        s[f"upsampled_flow{k + 1}_to_{k}.weight"] = t(2, 2, 4, 4, scale=0.3)
    for k, cin in PREDICT_IN.items():
        s[f"predict_flow{k}.weight"] = t(2, cin, 3, 3, scale=(1 / (cin * 9)) ** 0.5)
        s[f"predict_flow{k}.bias"] = t(2, scale=0.05)
    return s


def _source_forward(s: dict[str, torch.Tensor], img1: torch.Tensor, img2: torch.Tensor) -> dict[int, torch.Tensor]:
    """FlowNet2S's computation on [0, 1] images: minus the pair's per-channel mean, raw head outputs per level."""
    pair = torch.stack((img1, img2), 2)  # B×3×2×H×W as FlowNet2S takes it
    mean = pair.reshape(*pair.shape[:2], -1).mean(-1)[..., None, None, None]
    x = pair - mean
    x = torch.cat((x[:, :, 0], x[:, :, 1]), 1)
    skips = {}
    level = 0
    for name, _, _, k, stride in FLOWNETS_CONVS:
        x = F.leaky_relu(F.conv2d(x, s[f"{name}.0.weight"], s[f"{name}.0.bias"], stride, k // 2), 0.1)
        level += stride == 2
        skips[level] = x
    flows = {6: F.conv2d(x, s["predict_flow6.weight"], s["predict_flow6.bias"], padding=1)}
    for k in (5, 4, 3, 2):
        up = F.conv_transpose2d(flows[k + 1], s[f"upsampled_flow{k + 1}_to_{k}.weight"], None, 2, 1)
        de = F.leaky_relu(F.conv_transpose2d(x, s[f"deconv{k}.0.weight"], s[f"deconv{k}.0.bias"], 2, 1), 0.1)
        x = torch.cat((skips[k], de, up), 1)
        flows[k] = F.conv2d(x, s[f"predict_flow{k}.weight"], s[f"predict_flow{k}.bias"], padding=1)
    return flows


@pytest.mark.slow
def test_every_level_matches_the_source_in_level_pixels():
    state = _source_state()
    ours = create_component("flow", "flownets", scales=7)
    ours.load_state_dict(flownet2_flownets.convert_state_dict(state), strict=True)
    img1 = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(3))
    img2 = 1 - img1  # the pair's per-channel mean is 0.5: both normalisations agree exactly
    with torch.no_grad():
        raw = _source_forward(state, img1, img2)
        got = ours(img1, img2)
    for k in (2, 3, 4, 5, 6):
        expected = raw[k] * 20 / 2**k
        assert expected.abs().max() > 0.01  # not trivially zero
        torch.testing.assert_close(got[k], expected, atol=1e-4, rtol=1e-3)
    # Levels 1 and 0 are bilinear upsamplings of level 2: doubling the size doubles the values.
    torch.testing.assert_close(got[1].mean(), 2 * got[2].mean(), atol=1e-3, rtol=1e-3)


def test_a_known_shift_comes_out_in_pixels_of_each_level():
    """A source whose heads all say "(8, 4) full-resolution pixels" (i.e. (0.4, 0.2) raw)."""
    state = _source_state(zero=True)
    shift = torch.tensor([8.0, 4.0])
    for k in PREDICT_IN:
        state[f"predict_flow{k}.bias"] = shift / 20
    ours = create_component("flow", "flownets", scales=4)
    ours.load_state_dict(flownet2_flownets.convert_state_dict(state), strict=True)
    ref = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    target = torch.roll(ref, shifts=(-4, -8), dims=(2, 3))  # target[p] = ref[p + (8, 4)]
    with torch.no_grad():
        flows = ours(target, ref)
    for k, flow in enumerate(flows):
        torch.testing.assert_close(flow, (shift / 2**k).view(1, 2, 1, 1).expand_as(flow), atol=1e-5, rtol=0)
    warped = backward_warp(ref, flows[0])
    torch.testing.assert_close(warped[..., :-4, :-8], target[..., :-4, :-8])


@pytest.mark.slow
def test_convert_into_flownets_plus_keeps_the_new_stages(tmp_path):
    state = _source_state(seed=1)
    src = tmp_path / "FlowNet2-S_checkpoint.pth.tar"
    torch.save({"arch": "FlowNet2S", "epoch": 3, "best_EPE": 2.5, "state_dict": state}, src)
    spec = {"model": "crossnet", "params": {"channels": 8, "scales": 3}, "components": {"upsampler": "bicubic"}}
    out = flownet2_flownets.convert(src, tmp_path / "plus.safetensors", model=spec, seed=5)
    model = load_model(out)
    assert model.spec["components"]["flow"]["name"] == "flownets_plus"
    converted = flownet2_flownets.convert_state_dict(state)
    got = model.aligner.flow.state_dict()
    for key, value in converted.items():
        torch.testing.assert_close(got[key], value)
    torch.manual_seed(5)
    from refsr_blocks import build_model

    fresh = build_model(spec).aligner.flow.state_dict()
    for key in ("predict.0.weight", "deconv.1.0.weight", "full_res.0.weight"):
        torch.testing.assert_close(got[key], fresh[key])  # the new stages keep their (seeded) initialisation


def test_refusals(tmp_path):
    state = _source_state(zero=True)
    with pytest.raises(ConversionError, match="batch-norm"):
        flownet2_flownets.convert_state_dict({**state, "conv1.1.running_mean": torch.zeros(64)})
    with pytest.raises(ConversionError, match="missing tensor 'predict_flow2.weight'"):
        flownet2_flownets.convert_state_dict({k: v for k, v in state.items() if k != "predict_flow2.weight"})
    with pytest.raises(ConversionError, match="12 channels"):
        flownet2_flownets.convert_state_dict({**state, "conv1.0.weight": torch.zeros(64, 12, 7, 7)})
    src = tmp_path / "s.pth"
    torch.save(state, src)
    with pytest.raises(ConversionError, match="width must be 1"):
        flownet2_flownets.convert(src, tmp_path / "x.safetensors", model="crossnet_lite")
    with pytest.raises(ConversionError, match="converts into 'flownets' or 'flownets_plus'"):
        flownet2_flownets.convert(
            src,
            tmp_path / "x.safetensors",
            model={"model": "crossnet", "components": {"flow": "flownets_authors", "upsampler": "bicubic"}},
        )
