"""The assembled CrossNet: the paper's structure, the call contract and input checks."""

from __future__ import annotations

import pytest
import torch
from small import TINY_CROSSNET
from support import debug_checks_on

from refsr_blocks import InputError, build_model


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return build_model("crossnet", scales=4)


def test_paper_model_structure(paper_model) -> None:
    from refsr_blocks.components.decoders import UNetFusionDecoder
    from refsr_blocks.components.encoders import CrossNetEncoder
    from refsr_blocks.components.flows import FlowNetSPlus
    from refsr_blocks.components.upsamplers import MDSR

    m = paper_model
    assert isinstance(m.upsampler, MDSR) and isinstance(m.aligner.flow, FlowNetSPlus)
    assert isinstance(m.lr_encoder, CrossNetEncoder) and isinstance(m.ref_encoder, CrossNetEncoder)
    assert m.lr_encoder is not m.ref_encoder
    assert isinstance(m.decoder, UNetFusionDecoder)
    convs = [mod for mod in m.lr_encoder.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5)] * 4
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert all(c.out_channels == 64 for c in convs)
    deconvs = [mod for mod in m.decoder.modules() if isinstance(mod, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == 3 and all(d.kernel_size == (4, 4) and d.stride == (2, 2) for d in deconvs)
    assert all(d.out_channels == 64 for d in deconvs)
    post = [mod for mod in m.decoder.post_fusion if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels) for c in post] == [((5, 5), 64), ((5, 5), 64), ((5, 5), 3)]


def test_paper_model_runs_and_every_parameter_learns(paper_model) -> None:
    lr, ref = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)
    out = paper_model(lr, ref)
    assert out.shape == (1, 3, 64, 64)
    (out * torch.rand_like(out)).sum().backward()
    dead = [n for n, p in paper_model.named_parameters() if p.grad is None]
    assert not dead, dead
    paper_model.zero_grad(set_to_none=True)


def test_done_criterion_sizes() -> None:
    model = build_model("crossnet", scales=4).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 3, 256, 256)
    build_model(model.spec).load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize("preset", ["crossnet_iw", "crossnet_flownets"])
def test_variants_every_parameter_learns(preset) -> None:
    model = build_model(
        preset,
        channels=8,
        upsampler={"params": {"num_blocks": 1, "channels": 8}},
        flow={"params": {"width": 0.125}},
    )
    out = model(torch.rand(2, 3, 9, 13), torch.rand(2, 3, 36, 52))
    assert out.shape == (2, 3, 36, 52)
    out.mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


def test_intermediates() -> None:
    model = build_model(TINY_CROSSNET).eval()
    lr, ref = torch.rand(1, 3, 11, 15), torch.rand(1, 3, 22, 30)
    with torch.no_grad():
        out = model.forward_intermediates(lr, ref)
        plain = model(lr, ref)
    assert set(out) == {"sr", "upsampled", "flows", "warped_ref", "confidence", "warped_image", "shift"}
    assert out["confidence"] == [None] * len(out["warped_ref"])  # flow alignment has no confidence
    torch.testing.assert_close(out["sr"], plain)
    assert out["upsampled"].shape == ref.shape
    assert [tuple(f.shape) for f in out["flows"]] == [(1, 2, 22, 30), (1, 2, 11, 15), (1, 2, 6, 8)]
    assert [f.shape[-2:] for f in out["warped_ref"]] == [f.shape[-2:] for f in out["flows"]]
    assert out["warped_image"] is None


@pytest.mark.parametrize("prealign", ["none", "phase_correlation"])
def test_compiles_as_one_graph(prealign) -> None:
    """No graph break anywhere in the forward: input checks read only metadata."""
    model = build_model(TINY_CROSSNET, prealign=prealign).eval()
    lr, ref = torch.rand(1, 3, 12, 16), torch.rand(1, 3, 24, 32)
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # graph capture, no C++ toolchain
    with torch.no_grad():
        torch.testing.assert_close(compiled(lr, ref), model(lr, ref))


def test_flow_sees_the_upsampled_lr_not_the_ground_truth() -> None:
    """The authors' code fed the HR ground truth to the flow estimator during training."""
    model = build_model(TINY_CROSSNET)
    seen = {}

    def record(module, args, output) -> None:
        seen["target"] = args[0]

    model.aligner.flow.register_forward_hook(record)
    lr, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
    out = model.forward_intermediates(lr, ref)
    torch.testing.assert_close(seen["target"], out["upsampled"])


def test_shared_encoder() -> None:
    shared = build_model(TINY_CROSSNET, shared_encoder=True)
    separate = build_model(TINY_CROSSNET)
    assert shared.ref_encoder is None
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) - count(shared) == count(separate.ref_encoder)
    shared(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)).mean().backward()


def test_upscale_8() -> None:
    model = build_model(TINY_CROSSNET, upscale=8)
    assert model(torch.rand(1, 3, 5, 6), torch.rand(1, 3, 40, 48)).shape == (1, 3, 40, 48)


@pytest.mark.parametrize(
    ("lr", "ref", "message"),
    [
        (
            torch.rand(1, 3, 8, 8),
            torch.rand(1, 3, 17, 16),
            r"must be 16×16 \(the output size\) with ref_policy='strict'",
        ),
        (torch.rand(1, 1, 8, 8), torch.rand(1, 1, 16, 16), r"lr must have 3 channels"),
        (torch.rand(3, 8, 8), torch.rand(3, 16, 16), r"add a batch dimension"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), torch.rand(1, 3, 16, 16), r"x.float\(\) / 255"),
        (torch.rand(1, 3, 8, 8), torch.rand(2, 3, 16, 16), r"ref has batch size 2, lr 1"),
        (torch.rand(1, 3, 8, 8).numpy(), torch.rand(1, 3, 16, 16), r"must be a torch.Tensor"),
    ],
)
def test_bad_inputs(lr, ref, message) -> None:
    model = build_model(TINY_CROSSNET, ref_policy="strict")  # the default resizes other references
    with pytest.raises(ValueError, match=message):
        model(lr, ref)


def test_value_checks_run_in_debug_mode_only() -> None:
    model = build_model(TINY_CROSSNET)
    lr, ref = torch.full((1, 3, 8, 8), float("nan")), torch.rand(1, 3, 16, 16)
    assert torch.isnan(model(lr, ref)).any()  # by default forward reads no values (no device sync)
    with debug_checks_on(), pytest.raises(InputError, match="lr contains NaN"):
        model(lr, ref)


def test_reference_encoder_can_differ_from_the_lr_encoder() -> None:
    model = build_model(TINY_CROSSNET, ref_encoder="timm")
    assert type(model.lr_encoder).__name__ == "CrossNetEncoder" and type(model.ref_encoder).__name__ == "TimmEncoder"
    assert model.spec["components"]["ref_encoder"]["name"] == "timm"
    out = model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16)
    # left out, the reference encoder follows the LR encoder's spec, swaps included
    swapped = build_model(TINY_CROSSNET, lr_encoder="timm")
    assert swapped.spec["components"]["ref_encoder"] == swapped.spec["components"]["lr_encoder"]
