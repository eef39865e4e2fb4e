"""The authors' MultiscaleWarpingNet checkpoint → crossnet_authors: their names, their count, their outputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from replica_parts import FLOWNETS_CONVS

from refsr_blocks import build_model, load_model
from refsr_blocks.core.errors import InputError
from refsr_blocks.interop import ConversionError, crossnet_authors

AUTHORS_PARAMETERS = 35_183_841

# Their layers after the FlowNetS convs (FLOWNETS_CONVS), in their names: deconvs as level: (in, out).
FLOW_DECONVS = {5: (1024, 256), 4: (770, 256), 3: (770, 128), 2: (386, 64), 1: (194, 64), 0: (130, 64)}
FLOW_HEADS = {
    "flow6.0": 1024,
    "flow5.0": 770,
    "flow4.0": 770,
    "flow3.0": 386,
    "flow2.0": 194,
    "flow1.0": 130,
    "flow_12.0": 16,
}


def _authors_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with the names and shapes of the authors' MultiscaleWarpingNet."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {}

    def conv(name, cin, cout, k, transposed=False):
        shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        s[f"{name}.weight"] = torch.randn(shape, generator=g) * (1 / (cin * k * k)) ** 0.5
        s[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    for name, cin, cout, k, _ in FLOWNETS_CONVS:
        conv(f"FlowNet.{name}.0", cin, cout, k)
    for name, cin in FLOW_HEADS.items():
        conv(f"FlowNet.{name}", cin, 2, 3)
    for k, (cin, cout) in FLOW_DECONVS.items():
        conv(f"FlowNet.deconv{k}.0", cin, cout, 4, transposed=True)
        conv(f"FlowNet.flow{k + 1}_up", 2, 2, 4, transposed=True)
    conv("FlowNet.concat0_conv1.0", 69, 16, 7)
    conv("FlowNet.concat0_conv2.0", 16, 16, 7)
    conv("Encoder.layer_f.0", 3, 64, 5)
    for k in range(1, 5):
        conv(f"Encoder.conv{k}.0", 64, 64, 5)
    conv("UNet_decoder_2.warp_deconv4.0", 128, 64, 4, transposed=True)
    conv("UNet_decoder_2.warp_deconv3.0", 192, 64, 4, transposed=True)
    conv("UNet_decoder_2.warp_deconv2.0", 192, 64, 4, transposed=True)
    conv("UNet_decoder_2.post_fusion1.0", 192, 64, 5)
    conv("UNet_decoder_2.post_fusion2.0", 64, 64, 5)
    conv("UNet_decoder_2.final.0", 64, 3, 5)
    return s


def _warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Their Backward_warp: bilinear at p + flow (x then y), coordinates clamped to the image."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    gx = (xs + flow[:, 0]).clamp(0, w - 1) / (w - 1) * 2 - 1
    gy = (ys + flow[:, 1]).clamp(0, h - 1) / (h - 1) * 2 - 1
    return F.grid_sample(x, torch.stack((gx, gy), -1), mode="bilinear", align_corners=True)


def _authors_forward(s, flow_input, sr, ref):
    """MultiscaleWarpingNet.forward in test mode: FlowNet(flow_input, ref), the shared encoder, the decoder."""

    def c(name, x, stride=1, act=None):
        w = s[f"{name}.weight"]
        x = F.conv2d(x, w, s[f"{name}.bias"], stride, w.shape[-1] // 2)
        return act(x) if act else x

    def d(name, x, act=None):
        x = F.conv_transpose2d(x, s[f"{name}.weight"], s[f"{name}.bias"], 2, 1)
        return act(x) if act else x

    lrelu = lambda x: F.leaky_relu(x, 0.1)  # noqa: E731
    x = torch.cat((flow_input, ref), 1)
    feats = {}
    for name, _, _, _, stride in FLOWNETS_CONVS:
        x = c(f"FlowNet.{name}.0", x, stride, lrelu)
        feats[name] = x
    skip = {5: feats["conv5_1"], 4: feats["conv4_1"], 3: feats["conv3_1"], 2: feats["conv2"], 1: feats["conv1"], 0: ref}
    flow = c("FlowNet.flow6.0", x)
    flows = {}
    for k in range(5, -1, -1):
        x = torch.cat((skip[k], d(f"FlowNet.deconv{k}.0", x, lrelu), d(f"FlowNet.flow{k + 1}_up", flow)), 1)
        if k > 0:
            flow = c(f"FlowNet.flow{k}.0", x)
        else:
            y = c("FlowNet.concat0_conv2.0", c("FlowNet.concat0_conv1.0", x, act=F.selu), act=F.selu)
            flow = c("FlowNet.flow_12.0", y)
        flows[k] = flow

    def encode(img):
        y = c("Encoder.conv1.0", c("Encoder.layer_f.0", img, act=F.selu), act=F.selu)
        out = [y]
        for k in (2, 3, 4):
            y = c(f"Encoder.conv{k}.0", y, 2, F.selu)
            out.append(y)
        return out

    lr_f, ref_f = encode(sr), encode(ref)
    warped = [_warp(ref_f[k], flows[k]) for k in range(4)]
    y = d("UNet_decoder_2.warp_deconv4.0", torch.cat((lr_f[3], warped[3]), 1), F.selu)
    y = d("UNet_decoder_2.warp_deconv3.0", torch.cat((y, lr_f[2], warped[2]), 1), F.selu)
    y = d("UNet_decoder_2.warp_deconv2.0", torch.cat((y, lr_f[1], warped[1]), 1), F.selu)
    p1 = c("UNet_decoder_2.post_fusion1.0", torch.cat((y, lr_f[0], warped[0]), 1), act=F.selu)
    return c("UNet_decoder_2.final.0", p1)  # their final conv reads post_fusion1; post_fusion2 is unused


def test_parameter_count_is_the_authors():
    state = _authors_state()
    assert sum(v.numel() for v in state.values()) == AUTHORS_PARAMETERS
    with torch.device("meta"):
        model = build_model("crossnet_authors")
        lean = build_model("crossnet_authors", **{"decoder.unused_conv": False})
    assert sum(p.numel() for p in model.parameters()) == AUTHORS_PARAMETERS
    assert sum(p.numel() for p in lean.parameters()) == AUTHORS_PARAMETERS - 102_464
    assert model.ref_encoder is None and model.spec["params"]["shared_encoder"]


@pytest.mark.slow
def test_converted_checkpoint_reproduces_their_outputs(tmp_path):
    state = _authors_state(seed=2)
    src = tmp_path / "CP195000.pth"
    torch.save(state, src)
    model = load_model(crossnet_authors.convert(src, tmp_path / "authors.safetensors"))
    assert model.spec["components"]["decoder"]["params"]["unused_conv"] is True
    g = torch.Generator().manual_seed(0)
    up, ref = torch.rand(1, 3, 64, 128, generator=g), torch.rand(1, 3, 64, 128, generator=g)
    bicubic = torch.rand(1, 3, 64, 128, generator=g)
    with torch.no_grad():
        expected = _authors_forward(state, up, up, ref)
        got = model.fuse(up, ref)
        # Their test set-up: the bicubic upsampling to the flow, the MDSR output to the encoder.
        expected_split = _authors_forward(state, bicubic, up, ref)
        got_split = model.fuse(up, ref, flow_input=bicubic)
    assert expected.abs().max() > 0.05
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(got_split, expected_split, atol=1e-4, rtol=1e-3)
    assert (expected_split - expected).abs().max() > 1e-2  # the flow input matters: the test can fail
    # The lean variant drops their unused conv and gives the same outputs.
    lean_spec = {**model.spec}
    lean_spec["components"] = {
        **model.spec["components"],
        "decoder": {"name": "authors_fusion", "params": {"unused_conv": False}},
    }
    lean = load_model(crossnet_authors.convert(src, tmp_path / "lean.safetensors", model=lean_spec))
    assert "decoder.unused.0.weight" not in lean.state_dict()
    with torch.no_grad():
        torch.testing.assert_close(lean.fuse(up, ref), got)


def test_refusals():
    state = _authors_state()
    with pytest.raises(ConversionError, match="missing tensor 'UNet_decoder_2.final.0.weight'"):
        crossnet_authors.convert_state_dict({k: v for k, v in state.items() if k != "UNet_decoder_2.final.0.weight"})
    with pytest.raises(ConversionError, match="unexpected tensors"):
        crossnet_authors.convert_state_dict({**state, "MDSR.head.weight": torch.zeros(1)})
    assert "decoder.unused.0.weight" not in crossnet_authors.convert_state_dict(state, unused_conv=False)


def test_flow_input_is_checked():
    torch.manual_seed(0)
    model = build_model("crossnet_lite", scales=3, channels=8, **{"flow.width": 0.125}).eval()
    up, ref = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model.fuse(up, ref, flow_input=up), model.fuse(up, ref), rtol=0, atol=0)
        assert not torch.equal(model.fuse(up, ref, flow_input=ref), model.fuse(up, ref))
        with pytest.raises(InputError, match=r"flow_input \(1, 3, 16, 48\) and ref \(1, 3, 32, 48\)"):
            model.fuse(up, ref, flow_input=up[..., :16, :])
        attention = build_model("crossnet_attention", scales=3, channels=8)
        with pytest.raises(InputError, match="flow_input feeds an aligner that matches images"):
            attention.fuse(up, ref, flow_input=up)
