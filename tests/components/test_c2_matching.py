"""C2-Matching from registered parts: its authors' parameter count, any-size and K references, reuse."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support import train_steps

from refsr_blocks import build_model
from refsr_blocks.ops.correspondence import Correspondence
from refsr_blocks.ops.deform_from import deform_conv_at
from refsr_blocks.ops.warp import pixel_grid


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return cout * cin * k * k + cout


def _authors_counts(ngf: int = 64, n_blocks: int = 16, groups: int = 8) -> dict[str, int]:
    """Parameters of their three networks, summed from their layer definitions (mmsr/models/archs)."""
    res_blocks = n_blocks * 2 * _conv(ngf, ngf)
    content = _conv(3, ngf) + res_blocks  # ContentExtractor: conv_first + body
    stages = 0
    for c in (256, 128, 64):  # small (relu3_1), medium (relu2_1), large (relu1_1)
        stages += _conv(ngf + c, c) + _conv(c, c)  # offset_conv1, offset_conv2
        stages += c * c * 9 + c + _conv(c, groups * 27)  # DCN weight, bias, conv_offset_mask
        stages += _conv(ngf + c, ngf) + res_blocks  # head, body
    stages += 2 * _conv(ngf, 4 * ngf) + _conv(ngf, ngf // 2) + _conv(ngf // 2, 3)  # tails
    vgg_to_conv3_1 = _conv(3, 64) + _conv(64, 64) + _conv(64, 128) + _conv(128, 128) + _conv(128, 256)
    return {
        "restoration": content + stages,  # RestorationNet (c2_matching_restoration.pth)
        "correspondence": 2 * vgg_to_conv3_1,  # ContrasExtractorSep (feature_extraction.pth)
        "extractor": vgg_to_conv3_1,  # VGGFeatureExtractor of CorrespondenceGenerationArch (VGG19 to relu3_1)
    }


def test_the_preset_has_the_authors_parameter_count() -> None:
    model = build_model("c2_matching")
    ours = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in _authors_counts()}
    assert ours == _authors_counts() == {"restoration": 8_865_547, "correspondence": 1_110_656, "extractor": 555_328}
    assert sum(p.numel() for p in model.parameters()) == 10_531_531
    assert sum(p.numel() for p in model.upsampler.parameters()) == 0


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return build_model("c2_matching_small").eval()


def test_references_of_any_size_and_number(small) -> None:
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, 13, 10, generator=g)
    refs = [torch.rand(1, 3, 50, 37, generator=g), torch.rand(1, 3, 31, 64, generator=g)]
    with torch.no_grad():
        out = small.forward_intermediates(lr, refs)
    assert out["sr"].shape == (1, 3, 52, 40)
    assert out["correspondence"].shape == (1, 2, 13, 10)
    assert set(out["reference"].unique().tolist()) <= {0, 1}
    assert [tuple(f.shape) for f in out["flows"]] == [(1, 2, 52, 40), (1, 2, 26, 20), (1, 2, 13, 10)]
    assert all(c.shape[1] == 1 and c.min() >= 0 and c.max() <= 1 for c in out["confidence"])


def test_a_second_copy_of_the_reference_changes_nothing(small) -> None:
    """Matching is joint over the references: a duplicate ties everywhere and the first is kept."""
    g = torch.Generator().manual_seed(1)
    lr, ref = torch.rand(1, 3, 12, 12, generator=g), torch.rand(1, 3, 40, 44, generator=g)
    with torch.no_grad():
        one, two = small(lr, ref), small(lr, [ref, ref.clone()])
    torch.testing.assert_close(two, one, atol=1e-6, rtol=0)


def test_the_correspondence_finds_a_reference_that_moved(small) -> None:
    """A reference showing the scene 8 pixels (2 match-grid pixels) away is matched there."""
    g = torch.Generator().manual_seed(2)
    scene = F.interpolate(torch.rand(1, 3, 30, 30, generator=g), size=(120, 120), mode="bilinear")
    scene = (scene + 0.5 * torch.rand(1, 3, 120, 120, generator=g)).clamp(0, 1)
    target, ref = scene[..., 8:, 8:], scene[..., :-8, :-8]
    with torch.no_grad():
        corr = small.correspondence(target, [ref])
    inner = corr.flow[0, :, 5:-5, 5:-7]
    assert ((inner - 2).abs() < 0.5).all(0).float().mean() > 0.9


def test_deformable_sampling_equals_torchvision_on_one_grid() -> None:
    from torchvision.ops import deform_conv2d

    g = torch.Generator().manual_seed(3)
    x, weight, bias = torch.randn(2, 8, 7, 9, generator=g), torch.randn(5, 8, 3, 3, generator=g), torch.randn(5)
    offset = 3 * torch.randn(2, 2 * 2 * 9, 7, 9, generator=g)
    mask = torch.rand(2, 2 * 9, 7, 9, generator=g)
    taps = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=torch.float32)
    positions = pixel_grid(7, 9).view(1, 1, 1, 2, 7, 9) + taps.view(1, 1, 9, 2, 1, 1)
    positions = positions + offset.view(2, 2, 9, 2, 7, 9).flip(3)  # torchvision's (y, x) pairs
    ours = deform_conv_at(x, positions.flatten(-2), mask.view(2, 2, 9, 63), weight, bias).view(2, 5, 7, 9)
    torch.testing.assert_close(ours, deform_conv2d(x, offset, weight, bias, padding=1, mask=mask), atol=1e-5, rtol=0)


def test_the_restoration_reads_the_reference_where_the_correspondence_points(small) -> None:
    """Moving the correspondence by one match-grid pixel changes the output (the flow is read)."""
    g = torch.Generator().manual_seed(4)
    lr, ref = torch.rand(1, 3, 10, 10, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    textures = [small.extractor(ref)]
    flow = torch.zeros(1, 2, 10, 10)
    base = Correspondence(flow, flow[:, :1].long(), flow[:, :1], flow[:, :1] == 0, ((10, 10),), 4)
    moved = Correspondence(
        flow + 1, *[getattr(base, f) for f in ("reference", "score", "valid", "ref_sizes", "stride")]
    )
    with torch.no_grad():
        a, b = small.restoration(lr, textures, base), small.restoration(lr, textures, moved)
    assert (a - b).abs().max() > 1e-4


def test_crossnet_fusion_with_the_c2_correspondence_trains() -> None:
    """A cross-family spec: CrossNet's encoders and U-Net fusion, C2-Matching's correspondence as aligner."""
    from small import TINY_CROSSNET

    spec = {
        **TINY_CROSSNET,
        "components": {
            **TINY_CROSSNET["components"],
            "aligner": {"name": "correspondence_warp", "params": {"correspondence_params": {"channels": 4}}},
        },
    }
    torch.manual_seed(0)
    model = build_model(spec).train()
    assert type(model.aligner.correspondence).__name__ == "C2ContrastiveCorrespondence"
    g = torch.Generator().manual_seed(5)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True).clamp(0, 1)
    refs = [hr[..., 2:, 3:].contiguous(), torch.rand(2, 3, 40, 24, generator=g)]
    losses, moved = train_steps(model, lr, refs, hr)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert any(moved)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("aligner.correspondence.") for n in frozen)


def test_predictor_and_viz_run_it(small, tmp_path) -> None:
    from refsr_blocks.inference.predictor import Predictor
    from refsr_blocks.tools.viz import render_intermediates

    g = torch.Generator().manual_seed(6)
    lr, ref = torch.rand(1, 3, 12, 16, generator=g), torch.rand(1, 3, 48, 64, generator=g)
    with torch.no_grad():
        direct = small(lr, ref).clamp(0, 1)
    sr = Predictor(small, device="cpu", precision="fp32").predict(lr, ref)
    assert sr.shape == (1, 3, 48, 64)
    torch.testing.assert_close(sr, direct, atol=2e-5, rtol=0)
    # bf16 autocast (what precision "auto" picks on a CPU with fast bf16): convolutions in bf16,
    # the matching and the sampling positions in fp32 (the components' declared support)
    low = Predictor(small, device="cpu", precision="bf16").predict(lr, ref)
    assert (low - direct).abs().max() < 2e-2 and (low - direct).abs().mean() < 2e-3
    paths = render_intermediates(small, lr[0], ref[0], tmp_path)
    assert {"flows", "warp", "confidence", "comparison"} <= set(paths) and all(p.is_file() for p in paths.values())


@pytest.mark.slow  # about 15 s on 2 cores
def test_the_small_preset_traces_with_torch_export(small) -> None:
    g = torch.Generator().manual_seed(7)
    lr, ref = torch.rand(1, 3, 12, 12, generator=g), torch.rand(1, 3, 44, 52, generator=g)
    program = torch.export.export(small, (lr, ref))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(lr, ref), small(lr, ref), atol=1e-5, rtol=0)
