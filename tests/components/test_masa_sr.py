"""MASA-SR from registered parts: its authors' parameter count, any-size and K references, matching, use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support import train_steps

from refsr_blocks import build_model
from refsr_blocks.components.models.masa_sr import reduced_reference


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return cout * cin * k * k + cout


def _authors_count(nf: int = 64, enc_blocks=(4, 4, 4), dec_blocks=(2, 2, 2, 12, 8, 4)) -> int:
    """Parameters of their ``MASA`` network, summed from its layer definitions (models/archs/MASA_arch.py)."""
    residual = 2 * _conv(nf, nf)  # ResidualBlock: conv1, conv2
    encoder = _conv(3, nf) + 2 * _conv(nf, nf) + sum(enc_blocks) * residual  # conv_L1..L3, blk_L1..L3
    decoder = _conv(nf, nf) + 2 * _conv(2 * nf, nf)  # conv_L3, conv_L2, conv_L1
    decoder += _conv(2 * nf, nf)  # merge_warp_x1
    dram = 4 * _conv(nf, nf) + _conv(2 * nf, nf)  # conv_down_a/b, conv_up_a/b (transposed, same count), conv_cat
    decoder += 2 * dram  # dram_x2, dram_x4
    decoder += sum(dec_blocks) * residual  # blk_L3..L1, blk_x1, blk_x2, blk_x4
    decoder += _conv(nf, 3)  # conv_out
    decoder += _conv(2 * nf, nf) + 2 * _conv(nf, nf)  # pAda: conv_shared, conv_gamma, conv_beta
    return encoder + decoder


def test_the_preset_has_the_authors_parameter_count() -> None:
    model = build_model("masa_sr")
    assert _authors_count() == 4_028_291
    assert sum(p.numel() for p in model.parameters()) == 4_028_291
    assert sum(p.numel() for p in model.upsampler.parameters()) == 0
    assert sum(p.numel() for p in model.aligner.parameters()) == 0


@pytest.fixture(scope="module")
def small():
    """The small preset, random weights drawn from seed 0, in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model("masa_sr_small").eval()


def test_references_of_any_size_and_number(small) -> None:
    """Two LR images of a batch, two references per item of other sizes than 4× the LR's."""
    g = torch.Generator().manual_seed(0)
    refs = [torch.rand(2, 3, size[0], size[1], generator=g) for size in ((50, 37), (64, 90))]
    lr = torch.rand(2, 3, 13, 21, generator=g)
    with torch.no_grad():
        alone = small(lr[1:], [r[1:] for r in refs])
        out = small.forward_intermediates(lr, refs)
    torch.testing.assert_close(out["sr"][1:], alone, atol=1e-5, rtol=0)  # items do not mix
    assert out["sr"].shape == out["upsampled"].shape == (2, 3, 52, 84)
    assert out["correspondence"].shape == (2, 2, 13, 21)
    assert set(out["reference"].unique().tolist()) == {0, 1}
    assert [tuple(f.shape) for f in out["flows"]] == [(2, 2, 52, 84), (2, 2, 26, 42), (2, 2, 13, 21)]
    assert all(c.min() >= 0 and c.max() <= 1 for c in out["confidence"])


def _copy_pair(shift: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An LR image (32×40, ×4), a reference holding its ground truth at ``shift`` and a noise reference."""
    g = torch.Generator().manual_seed(1)
    big = F.interpolate(torch.rand(1, 3, 40, 40, generator=g), size=(256, 256), mode="bicubic").clamp(0, 1)
    hr = big[..., 64:192, 48:208]
    dy, dx = shift
    ref = big[..., 64 - dy : 64 - dy + 192, 48 - dx : 48 - dx + 224]
    return reduced_reference(hr, 4), ref, torch.rand(1, 3, 160, 160, generator=g)


def test_the_matching_finds_a_copy_of_the_content(small) -> None:
    """Ground truth at (dy, dx) in a reference (multiples of 4, so the reduced reference holds
    the LR image exactly): away from the LR border, whose features see the convs' zero padding,
    each LR pixel matches (dx/4, dy/4) further in that reference (not in the noise one) with
    cosine similarity 1, and the finest flow is (dx, dy) reference pixels."""
    lr, ref, noise = _copy_pair((16, 32))
    with torch.no_grad():
        out = small.forward_intermediates(lr, [noise, ref])
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    correspondence = out["correspondence"][inner]
    assert (out["reference"][inner] == 1).float().mean() > 0.99
    assert (correspondence[:, 0] == 8).float().mean() > 0.95 and (correspondence[:, 1] == 4).float().mean() > 0.95
    assert out["confidence"][-1][inner].median() > 0.999
    finest = out["flows"][0][..., 16:-16, 16:-16]
    assert ((finest[:, 0] - 32).abs() < 0.5).float().mean() > 0.9 and (
        (finest[:, 1] - 16).abs() < 0.5
    ).float().mean() > 0.9


def test_the_memory_budget_leaves_the_result_unchanged(small) -> None:
    """The coarse search in bands of a few reference rows and the fine search a block at a time
    give what one pass over everything gives."""
    lr, ref, noise = _copy_pair((8, 4))
    with torch.no_grad():
        whole = small(lr, [ref, noise])
        small.aligner.budget = 1
        try:
            banded = small(lr, [ref, noise])
        finally:
            small.aligner.budget = 1 << 22
    torch.testing.assert_close(banded, whole, atol=1e-6, rtol=0)


def test_it_trains(small) -> None:
    """Gradients reach the encoder through the features and the matched similarities."""
    torch.manual_seed(3)
    model = build_model("masa_sr_small").train()
    g = torch.Generator().manual_seed(4)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    lr, ref = reduced_reference(hr, 4), hr.flip(-1)
    losses, _ = train_steps(model, lr, ref, hr)
    assert losses[-1] < losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_predictor_and_viz_run_it(small, tmp_path) -> None:
    """The Predictor takes references of any size, several of them (one result each, averaged, clipped),
    and bf16 autocast; viz draws the flows, the warp and the confidence."""
    from refsr_blocks.inference.predictor import Predictor
    from refsr_blocks.tools.viz import render_intermediates

    g = torch.Generator().manual_seed(6)
    lr = torch.rand(1, 3, 12, 16, generator=g)
    refs = [torch.rand(1, 3, 60, 52, generator=g), torch.rand(1, 3, 33, 80, generator=g)]
    with torch.no_grad():
        each = [small(lr, r) for r in refs]
    predicted = Predictor(small, device="cpu", precision="fp32").predict(lr, refs)
    assert predicted.shape == (1, 3, 48, 64)
    torch.testing.assert_close(predicted, ((each[0] + each[1]) / 2).clamp(0, 1), atol=2e-5, rtol=0)
    # bf16 autocast: convolutions in bf16, the matching and the transfer in fp32 (the declared support)
    low = Predictor(small, device="cpu", precision="bf16").predict(lr, refs[0])
    error = low - each[0].clamp(0, 1)
    assert error.abs().max() < 2e-2 and error.abs().mean() < 2e-3
    drawn = render_intermediates(small, lr[0], refs[1][0], tmp_path)
    assert {"flows", "warp", "confidence", "comparison"} <= set(drawn)
    assert all(path.stat().st_size > 0 for path in drawn.values())


@pytest.mark.slow  # about 30 s on 2 loaded cores
def test_the_small_preset_traces_with_torch_export_for_one_reference(small) -> None:
    g = torch.Generator().manual_seed(7)
    inputs = (torch.rand(1, 3, 12, 12, generator=g), torch.rand(1, 3, 44, 52, generator=g))
    exported = torch.export.export(small, inputs).module()
    with torch.no_grad():
        eager, traced = small(*inputs), exported(*inputs)
    torch.testing.assert_close(traced, eager, atol=1e-5, rtol=0)
