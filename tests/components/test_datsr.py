"""DATSR from parts: the authors' parameter count, any-size and K references, recombination, use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datsr_replica import parameter_count, restoration_layout, vgg_layout
from support import train_steps

from refsr_blocks import build_model
from refsr_blocks.components.models import datsr as _datsr  # noqa: F401 - registers the datsr presets
from refsr_blocks.components.restorations.datsr_attention import SwinGroup
from refsr_blocks.core.errors import InputError

#: The authors' SwinUnetv3RestorationNet(ngf=128, n_blocks=8, groups=8, depths=[4, 4],
#: num_heads=[4, 4], window_size=8), summed from its layer definitions (tests/datsr_replica.py).
AUTHORS_RESTORATION = 18_026_971
#: Plus ContrasExtractorSep (two VGG16 heads to conv3_1) and the VGG19 head to relu3_1.
AUTHORS_TOTAL = 19_692_955


def test_authors_counts_from_their_layer_definitions() -> None:
    restoration = parameter_count(restoration_layout())
    vgg = parameter_count(vgg_layout("", 64))
    assert (restoration, vgg) == (AUTHORS_RESTORATION, 555_328)
    assert restoration + 3 * vgg == AUTHORS_TOTAL


def test_the_datsr_preset_has_the_authors_parameter_count() -> None:
    model = build_model("datsr")
    assert sum(p.numel() for p in model.parameters()) == AUTHORS_TOTAL
    assert sum(p.numel() for p in model.restoration.parameters()) == AUTHORS_RESTORATION
    # their content extractor is kept for the count and the layout, frozen: it never runs
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad and n.startswith("restoration.")}
    assert frozen and all(n.startswith("restoration.content_extractor.") for n in frozen)


def test_any_size_and_several_references() -> None:
    model = build_model("datsr_small").eval()
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, 13, 19, generator=g)  # not a multiple of the Swin window
    refs = [torch.rand(1, 3, 50, 70, generator=g), torch.rand(1, 3, 90, 40, generator=g)]
    with torch.no_grad():
        out = model.forward_intermediates(lr, refs)
    assert out["sr"].shape == (1, 3, 52, 76) and torch.isfinite(out["sr"]).all()
    assert [tuple(f.shape) for f in out["flows"]] == [(1, 2, 52, 76), (1, 2, 26, 38), (1, 2, 13, 19)]
    assert set(out["reference"].unique().tolist()) <= {0, 1}


def test_the_reference_where_the_content_is_gets_chosen() -> None:
    """Two references, one of them the (shifted) image itself: its patches win the matching."""
    model = build_model("datsr_small").eval()
    g = torch.Generator().manual_seed(1)
    hr = F.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64), mode="bicubic")
    hr = (0.6 * hr + 0.4 * torch.rand(1, 3, 64, 64, generator=g)).clamp(0, 1)
    lr = F.avg_pool2d(hr, 4)
    noise = torch.rand(1, 3, 48, 80, generator=g)
    with torch.no_grad():
        # the small preset's match embedding is random: one extractor for both sides
        model.correspondence.ref_extractor.load_state_dict(model.correspondence.query_extractor.state_dict())
        out = model.forward_intermediates(lr, [noise, torch.roll(hr, (4, 8), (2, 3))])
    assert (out["reference"] == 1).float().mean() > 0.5


def test_swin_group_takes_any_size() -> None:
    group = SwinGroup(8, depths=(2,), num_heads=(2,), window=4).eval()
    x = torch.rand(2, 8, 7, 10)
    with torch.no_grad():
        y = group(x)
        alone = group(x[1:])
    assert y.shape == x.shape
    torch.testing.assert_close(y[1:], alone, rtol=1e-5, atol=1e-5)


def test_the_deformable_attention_in_row_blocks_equals_it_whole(monkeypatch) -> None:
    from refsr_blocks.components.restorations import datsr_attention

    model = build_model("datsr_small").eval()
    g = torch.Generator().manual_seed(4)
    lr, refs = torch.rand(1, 3, 12, 10, generator=g), [torch.rand(1, 3, 36, 52, generator=g)] * 2
    with torch.no_grad():
        whole = model(lr, refs)
        monkeypatch.setattr(datsr_attention, "_BLOCK", 3000)  # a few rows per block at every level
        blocks = model(lr, refs)
    torch.testing.assert_close(blocks, whole, rtol=1e-5, atol=1e-5)


def test_sampling_positions_stay_float32_under_bf16() -> None:
    """bf16 holds integers exactly only up to 256: positions in a 320-pixel level must not be bf16."""
    from refsr_blocks.components.restorations.datsr_attention import level_sources

    model = build_model("datsr_small").eval()
    g = torch.Generator().manual_seed(6)
    hr = F.interpolate(torch.rand(1, 3, 40, 40, generator=g), size=(320, 320), mode="bicubic").clamp(0, 1)
    lr, ref = F.avg_pool2d(hr, 4), torch.roll(hr, (5, 9), (2, 3))
    with torch.no_grad():
        corr = model.correspondence(model.upsampler(lr), [ref])
        values = model.extractor(ref)
        sizes = [(320, 320), (160, 160), (80, 80)]
        full = level_sources([values], corr, sizes, 10.0)[0]
        half = level_sources([[v.bfloat16() for v in values]], corr, sizes, 10.0)[0]
    for i, j in ((0, 0), (1, 1), (2, 2)):
        rows = slice(0, 320)
        torch.testing.assert_close(half.tap_positions(i, j, rows), full.tap_positions(i, j, rows), rtol=0, atol=0)
    assert half.warped.dtype == torch.bfloat16


@pytest.mark.parametrize("shift", [0, 4])
def test_swin_blocks_run_in_bands_as_timm_runs_them_whole(monkeypatch, shift: int) -> None:
    from timm.models.swin_transformer import SwinTransformerBlock

    from refsr_blocks.components.restorations import datsr_attention

    torch.manual_seed(0)
    block = SwinTransformerBlock(
        16, (8, 8), num_heads=2, window_size=8, shift_size=shift, always_partition=True, dynamic_mask=True
    ).eval()
    x = torch.randn(2, 21, 29, 16)
    monkeypatch.setattr(datsr_attention, "_SWIN_BAND", 2000)  # bands of 8 rows: three of them
    with torch.no_grad():
        torch.testing.assert_close(datsr_attention._banded_swin_block(block, x), block(x), rtol=1e-6, atol=1e-6)


def test_bad_restoration_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="divisible by the deformable groups"):
        build_model(
            {"model": "c2_matching", "components": {"restoration": {"name": "datsr_rfa", "params": {"groups": 7}}}}
        )
    restoration = build_model("datsr_small").restoration
    with pytest.raises((ValueError, InputError), match="texture pyramid"):
        restoration(torch.rand(1, 3, 8, 8), [], None)


def test_cross_family_spec_builds_and_trains() -> None:
    """C2-Matching's correspondence, CrossNet's encoder for the textures, DATSR's restoration."""
    spec = {
        "model": "c2_matching",
        "params": {"channels": 8},
        "components": {
            "correspondence": {"name": "c2_contrastive", "params": {"channels": 4}},
            "extractor": {"name": "crossnet", "params": {"channels": 8, "kernel_size": 3}},
            "restoration": {
                "name": "datsr_rfa",
                "params": {"depths": [1], "num_heads": [2], "groups": 2, "content_blocks": 0, "window_size": 4},
            },
        },
    }
    torch.manual_seed(0)
    model = build_model(spec).train()
    assert type(model.extractor).__name__ == "CrossNetEncoder"
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    lr, ref = F.avg_pool2d(hr, 4), torch.roll(hr, (3, 5), (2, 3))
    losses, moved = train_steps(model, lr, ref, hr)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(moved), "every trainable tensor of the recombined model is updated"
    assert losses[-1] < losses[0]


def test_predictor_and_viz_run_datsr(tmp_path) -> None:
    from refsr_blocks.inference.predictor import Predictor
    from refsr_blocks.tools.viz import render_intermediates

    model = build_model("datsr_small")
    g = torch.Generator().manual_seed(3)
    lr, ref = torch.rand(1, 3, 12, 16, generator=g), torch.rand(1, 3, 48, 64, generator=g)
    # Predictor takes references of the output's size only, and runs one per call (averaged)
    out = Predictor(model, device="cpu", precision="fp32").predict(lr, [ref, ref.flip(-1)])
    assert out.shape == (1, 3, 48, 64)
    paths = render_intermediates(model, lr, ref, tmp_path)
    assert {"flows", "warp", "confidence", "comparison"} <= set(paths) and all(p.is_file() for p in paths.values())
