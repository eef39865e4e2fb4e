"""Aligners: attention transfer (exactness, chunking, several references), the flow aligner's
bit-identity with CrossNet's former path, references of any size, and TTSR."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from small import TINY_CROSSNET

from refsr_blocks import InputError, SpecError, build_model, load_model
from refsr_blocks.assets import ASSETS_DIR
from refsr_blocks.components.aligners import AttentionAligner, match_patches, relevance, transfer
from refsr_blocks.components.prealigns import NoPrealign, shift_image
from refsr_blocks.data import load_image
from refsr_blocks.ops.flow import crop_to, pad_to_multiple
from refsr_blocks.ops.references import fit_reference

#: A small ×4 TTSR (the contract's SMALL_PARAMS entry is for ×2).
TINY_TTSR = {
    "model": "ttsr",
    "params": {"channels": 8, "residual": True},
    "components": {
        "extractor": {"name": "ttsr_lte", "params": {"channels": 4}},
        "fusion": {"name": "ttsr_csfi", "params": {"blocks": [1, 1, 1, 1]}},
    },
}


def _shuffled_blocks(x: torch.Tensor, block: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (B×C×H×W) with its block×block tiles permuted, and the permutation (new slot → old tile)."""
    b, c = x.shape[:2]
    tiles = x.unfold(2, block, block).unfold(3, block, block)  # B×C×nh×nw×block×block
    nh, nw = tiles.shape[2:4]
    perm = torch.randperm(nh * nw, generator=torch.Generator().manual_seed(seed))
    flat = tiles.reshape(b, c, nh * nw, block, block)[:, :, perm]
    out = flat.reshape(b, c, nh, nw, block, block).permute(0, 1, 2, 4, 3, 5).reshape(b, c, nh * block, nw * block)
    return out, perm


def _inside_tiles(h: int, w: int, block: int) -> torch.Tensor:
    """H×W mask of the positions whose 3×3 neighbourhood's own 3×3 patches all lie in one tile."""
    y = torch.arange(h)[:, None] % block
    x = torch.arange(w)[None, :] % block
    return (y >= 2) & (y <= block - 3) & (x >= 2) & (x <= block - 3)


def test_attention_finds_every_shuffled_patch() -> None:
    """A reference holding the target's 6×6 tiles, shuffled: every patch inside a tile is found."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 8, 24, 36, generator=g, dtype=torch.float64)
    ref, perm = _shuffled_blocks(target, 6, seed=1)
    matches = match_patches(target, [ref])
    nw = 36 // 6
    where = {int(old): new for new, old in enumerate(perm)}  # old tile → its slot in the reference
    for y in range(24):
        for x in range(36):
            if y % 6 in (0, 5) or x % 6 in (0, 5):
                continue  # the 3×3 patch straddles two tiles: not in the reference
            slot = where[(y // 6) * nw + x // 6]
            expected = ((slot // nw) * 6 + y % 6) * 36 + (slot % nw) * 6 + x % 6
            assert matches.index[0, y, x].item() == expected, (y, x)
    # The transferred features are the target's own wherever the 3×3 neighbourhood is found.
    out = transfer([ref], matches, 1, (24, 36))
    inner = _inside_tiles(24, 36, 6)
    assert inner.sum() == 24 * 4  # 24 tiles, 2×2 positions each
    torch.testing.assert_close(out[..., inner], target[..., inner], rtol=0, atol=1e-12)


def test_several_references_beat_one_with_complementary_content() -> None:
    """Two references, each holding half of the target's tiles: both together recover more."""
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 8, 24, 48, generator=g, dtype=torch.float64)
    left, _ = _shuffled_blocks(target[..., :24], 6, seed=3)
    right, _ = _shuffled_blocks(target[..., 24:], 6, seed=4)
    noise = torch.rand(1, 8, 18, 30, generator=g, dtype=torch.float64)
    aligner = AttentionAligner(match_level=0)

    inner = _inside_tiles(24, 48, 6)
    right_half = torch.zeros(24, 48, dtype=torch.bool)
    right_half[:, 24:] = True

    def error(refs: list[torch.Tensor], where: torch.Tensor) -> float:
        out = aligner([target], [[r] for r in refs])["aligned"][0]
        return float((out - target)[..., where].abs().mean())

    # Inside the tiles, both references together give the target exactly; the left one alone
    # cannot give the right half.
    assert error([left, right], inner) < 1e-12
    assert error([left], inner & right_half) > 0.1
    everywhere = torch.ones(24, 48, dtype=torch.bool)
    assert error([left, right], everywhere) < 0.6 * error([left], everywhere)
    assert error([left, noise, right], inner) < 1e-12  # an extra unrelated reference costs nothing there
    # Joint matching does not depend on the order of the references.
    a = aligner([target], [[left], [right]])["aligned"][0]
    b = aligner([target], [[right], [left]])["aligned"][0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_matching_equals_unchunked(chunk: int) -> None:
    g = torch.Generator().manual_seed(5)
    feats = [torch.rand(2, 6, 20, 24, generator=g, dtype=torch.float64)]
    feats += [torch.rand(2, 6, 10, 12, generator=g, dtype=torch.float64)]
    refs = [
        [
            torch.rand(2, 6, 26, 14, generator=g, dtype=torch.float64),
            torch.rand(2, 6, 13, 7, generator=g, dtype=torch.float64),
        ],
        [
            torch.rand(2, 6, 8, 30, generator=g, dtype=torch.float64),
            torch.rand(2, 6, 4, 15, generator=g, dtype=torch.float64),
        ],
    ]
    whole = AttentionAligner(match_level=1, chunk_size=10**6)(feats, refs)
    chunked = AttentionAligner(match_level=1, chunk_size=chunk)(feats, refs)
    assert torch.equal(whole["index"], chunked["index"])
    for a, b in zip(whole["aligned"] + whole["confidence"], chunked["aligned"] + chunked["confidence"]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_soft_attention_equals_the_maximum_of_the_full_relevance_matrix_with_its_gradient() -> None:
    """``relevance`` (no full matrix) gives TTSR's ``max`` over it, value and gradient."""
    g = torch.Generator().manual_seed(6)
    q = torch.rand(1, 5, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.rand(1, 5, 12, 7, generator=g, dtype=torch.float64, requires_grad=True)
    unfold = lambda x: F.normalize(F.unfold(x, 3, padding=1), dim=1)  # noqa: E731
    full = torch.bmm(unfold(q).transpose(1, 2), unfold(k))  # 1×99×84
    naive, arg = full.max(dim=2)
    matches = match_patches(q.detach(), [k.detach()], chunk_size=5)
    assert torch.equal(matches.index.flatten(1), arg)
    soft = relevance(q, [k], matches).flatten(1)
    torch.testing.assert_close(soft, naive, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(naive.sum(), (q, k))
    mine = torch.autograd.grad(soft.sum(), (q, k))
    for a, b in zip(grads, mine):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_transfer_equals_ttsr_unfold_gather_fold(factor: int) -> None:
    """The gather-based transfer equals TTSR's unfold → gather → fold (averaged by overlap count)."""
    g = torch.Generator().manual_seed(7)
    q = torch.rand(1, 4, 6, 7, generator=g, dtype=torch.float64)
    k = torch.rand(1, 4, 5, 9, generator=g, dtype=torch.float64)
    values = torch.rand(1, 3, 5 * factor, 9 * factor, generator=g, dtype=torch.float64)
    matches = match_patches(q, [k])
    kernel, pad = 3 * factor, factor
    unfolded = F.unfold(values, kernel, padding=pad, stride=factor)  # 1×(3·9f²)×45
    picked = unfolded[:, :, matches.index.flatten()]
    size = (6 * factor, 7 * factor)
    folded = F.fold(picked, size, kernel, padding=pad, stride=factor)
    count = F.fold(torch.ones_like(picked), size, kernel, padding=pad, stride=factor)
    torch.testing.assert_close(transfer([values], matches, factor, size), folded / count, rtol=0, atol=1e-12)


# -- CrossNet: the default path is unchanged; other aligners by a spec change ----------------
def _paper_path(model: torch.nn.Module, lr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """CrossNet's forward written out step by step from its parts (the reference for bit-identity)."""
    up = model.upsampler(lr)
    multiple = 2 ** (model.scales - 1)
    up_p, size = pad_to_multiple(up, multiple)
    ref_p, _ = pad_to_multiple(ref, multiple)
    shift = model.aligner.prealign(up_p, ref_p)
    if isinstance(model.aligner.prealign, NoPrealign):
        flows = model.aligner.flow(up_p, ref_p)
    else:
        flows = model.aligner.flow(up_p, shift_image(ref_p, shift))
        s = shift.to(flows[0].dtype)[:, :, None, None]
        flows = [f + s / 2**k for k, f in enumerate(flows)]
    lr_feats = model.lr_encoder(up_p)
    ref_feats = model.encode_ref(ref_p)
    warped = [model.aligner.warper(f, flow) for f, flow in zip(ref_feats, flows)]
    out = model.decoder(lr_feats, warped)
    if model.residual:
        out = out + up_p
    return crop_to(out, size)


@pytest.mark.parametrize("asset", ["crossnet_small_x4", pytest.param("crossnet_real_x4", marks=pytest.mark.slow)])
def test_shipped_checkpoints_load_strictly_and_keep_their_outputs_bit_for_bit(asset: str) -> None:
    path = ASSETS_DIR / f"{asset}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not installed")
    model = load_model(path).eval()
    assert type(model.aligner).__name__ == "FlowWarpAligner"
    assert any(k.startswith("aligner.flow.") for k in model.state_dict())  # the aligner owns its flow
    lr = load_image(ASSETS_DIR / "demo" / "lr.png")[None][..., :48, :60]
    ref = load_image(ASSETS_DIR / "demo" / "ref.png")[None][..., :192, :240]
    with torch.no_grad():
        assert torch.equal(model(lr, ref), _paper_path(model, lr, ref))


def test_crossnet_takes_any_aligner_by_a_spec_change() -> None:
    lr = torch.rand(1, 3, 8, 10)
    attention = build_model(TINY_CROSSNET, aligner={"name": "attention", "params": {"match_level": 1}})
    assert not hasattr(attention.aligner, "flow") and not hasattr(attention, "flow")
    assert attention.spec["components"]["aligner"]["name"] == "attention"
    again = build_model(attention.spec)
    again.load_state_dict(attention.state_dict(), strict=True)
    out = attention.forward_intermediates(lr, [torch.rand(1, 3, 30, 14), torch.rand(1, 3, 9, 50)])
    assert out["sr"].shape == (1, 3, 16, 20) and out["flows"] is None and out["index"].shape == (1, 8, 10)
    deformable = build_model(TINY_CROSSNET, aligner="deformable")
    assert deformable(lr, torch.rand(1, 3, 16, 20)).shape == (1, 3, 16, 20)
    with pytest.raises(SpecError, match="warp_target"):
        build_model(TINY_CROSSNET, aligner="attention", warp_target="image")


def test_flow_models_bring_other_references_to_the_grid_by_their_policy() -> None:
    lr, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 23, 13)
    model = build_model(TINY_CROSSNET).eval()
    with torch.no_grad():
        resized = model(lr, ref)
        assert torch.equal(resized, model(lr, fit_reference(ref, (16, 16), "resize")))
        cropped = build_model(TINY_CROSSNET, ref_policy="crop_pad").eval()
        cropped.load_state_dict(model.state_dict())
        assert torch.equal(cropped(lr, ref), model(lr, fit_reference(ref, (16, 16), "crop_pad")))
    strict = build_model(TINY_CROSSNET, ref_policy="strict")
    with pytest.raises(InputError, match="ref_policy"):
        strict(lr, ref)
    with pytest.raises(InputError, match="one reference"):
        model(lr, [ref, ref])
    padded = fit_reference(torch.arange(6.0).view(1, 1, 2, 3), (3, 2), "crop_pad")
    assert padded.flatten().tolist() == [0, 1, 3, 4, 3, 4]


# -- TTSR ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ttsr_runs_on_a_40px_lr_with_a_300x200_reference() -> None:
    torch.manual_seed(0)
    model = build_model("ttsr").eval()
    with torch.no_grad():
        out = model.forward_intermediates(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 300, 200))
    assert out["sr"].shape == (1, 3, 160, 160)
    assert [tuple(t.shape[-2:]) for t in out["textures"]] == [(160, 160), (80, 80), (40, 40)]
    assert out["index"].shape == (1, 40, 40) and int(out["index"].max()) < 75 * 50


def test_ttsr_matches_k_references_jointly_and_swaps_aligners() -> None:
    model = build_model(TINY_TTSR).eval()
    lr = torch.rand(2, 3, 6, 7)
    refs = [torch.rand(2, 3, 9, 30), torch.rand(2, 3, 17, 5)]
    with torch.no_grad():
        out = model.forward_intermediates(lr, refs)
    assert out["sr"].shape == (2, 3, 24, 28)
    # The joint pool: 3×8 positions of the first reference (9×30 at a quarter, rounded up), then 5×2.
    index = out["index"]
    assert int(index.max()) < 3 * 8 + 5 * 2 and (index < 3 * 8).any() and (index >= 3 * 8).any()
    for aligner in ("flow_warp", "deformable"):
        other = build_model(
            TINY_TTSR, aligner=aligner, **({"aligner.flow_params": {"width": 0.125}} if aligner == "flow_warp" else {})
        )
        assert other(lr, torch.rand(2, 3, 30, 20)).shape == (2, 3, 24, 28)  # resized onto the grid
        with pytest.raises(InputError, match="one reference"):
            other(lr, refs)


def test_specs_resolve_to_the_flow_aligner() -> None:
    from refsr_blocks import resolve_spec

    v2 = resolve_spec({"version": 2, "model": "crossnet"})
    assert v2["components"]["aligner"] == {"name": "flow_warp", "params": {"flow_params": None}}
    assert v2["params"]["ref_policy"] == "resize" and v2["version"] == 2


def test_deformable_alignment_starts_as_the_identity() -> None:
    from refsr_blocks import create_component

    aligner = create_component("aligner", "deformable", lr_channels=[4, 5], ref_channels=[6, 7])
    g = torch.Generator().manual_seed(0)
    target = [torch.rand(1, 4, 12, 10, generator=g), torch.rand(1, 5, 6, 5, generator=g)]
    ref = [torch.rand(1, 6, 12, 10, generator=g), torch.rand(1, 7, 6, 5, generator=g)]
    out = aligner(target, [ref])
    for a, r in zip(out["aligned"], ref):
        torch.testing.assert_close(a, r, rtol=0, atol=1e-6)


def test_the_texture_loss_is_available_by_spec() -> None:
    """TTSR's transferal perceptual loss: an aux term reading ``sr_textures`` and ``textures``."""
    from refsr_blocks.train.objective import Objective, transferal_perceptual_loss

    torch.manual_seed(0)
    model = build_model(TINY_TTSR)
    lr, ref, hr = torch.rand(1, 3, 6, 7), torch.rand(1, 3, 20, 30), torch.rand(1, 3, 24, 28)
    out = model.forward_intermediates(lr, ref)
    assert [t.shape for t in out["sr_textures"]] == [t.shape for t in out["textures"]]
    objective = Objective({"name": "l1", "params": {}}, [{"name": "texture", "weight": 0.5}])
    total, parts = objective(out, {"hr": hr, "ref": ref})
    assert parts["loss_texture"] > 0 and total.item() == pytest.approx(parts["loss_main"] + 0.5 * parts["loss_texture"])
    total.backward()
    assert all(p.grad is not None for p in model.extractor.parameters())
    same = [t.detach() for t in out["textures"]]
    assert transferal_perceptual_loss(same, same).item() == 0.0
    with pytest.raises(KeyError, match="sr_textures"):
        objective({"sr": out["sr"], "textures": out["textures"]}, {"hr": hr, "ref": ref})
