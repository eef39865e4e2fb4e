"""TTSR's released layout → ttsr_authors: a replica of their forward, in their names, gives our outputs.

The replica below is written from reading researchmm/TTSR (model/TTSR.py, MainNet.py, LTE.py,
SearchTransfer.py, utils.MeanShift), in plain PyTorch with their module names, so a state
dict in their layout loads into it. Their ``forward(lr, lrsr, ref, refsr)`` takes images in
[-1, 1] and gets ``lrsr`` (LR↑) and ``refsr`` (Ref↓↑) from the data loader; the replica is
given the ones our model makes from ``lr`` and ``ref`` (its upsampler and
:func:`~refsr_blocks.components.models.ttsr.degrade_reference`), mapped to [-1, 1].
Their VGG19 initialisation (torchvision's ImageNet weights) is replaced by random weights:
the released checkpoint holds the LTE's own trained weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from replica_parts import ResidualBlockNoBN
from torch import Tensor, nn

from refsr_blocks import build_model, load_model
from refsr_blocks.components.models.ttsr import degrade_reference
from refsr_blocks.core.spec import apply_overrides, get_preset
from refsr_blocks.interop import ConversionError
from refsr_blocks.interop import ttsr as ttsr_interop

# ---------------------------------------------------------------- the replica, in their names


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2)


def _up(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bicubic")


class _SFE(nn.Module):
    def __init__(self, blocks: int, n: int) -> None:
        super().__init__()
        self.conv_head = _conv(3, n)
        self.RBs = nn.ModuleList(ResidualBlockNoBN(n) for _ in range(blocks))
        self.conv_tail = _conv(n, n)

    def forward(self, x: Tensor) -> Tensor:
        x = x1 = F.relu(self.conv_head(x))
        for rb in self.RBs:
            x = rb(x)
        return self.conv_tail(x) + x1


class _CSFI2(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv12, self.conv21 = _conv(n, n, 1), _conv(n, n, 3, 2)
        self.conv_merge1, self.conv_merge2 = _conv(2 * n, n), _conv(2 * n, n)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        x12 = F.relu(self.conv12(_up(x1, 2)))
        x21 = F.relu(self.conv21(x2))
        return (
            F.relu(self.conv_merge1(torch.cat((x1, x21), 1))),
            F.relu(self.conv_merge2(torch.cat((x2, x12), 1))),
        )


class _CSFI3(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv12, self.conv13 = _conv(n, n, 1), _conv(n, n, 1)
        self.conv21, self.conv23 = _conv(n, n, 3, 2), _conv(n, n, 1)
        self.conv31_1, self.conv31_2, self.conv32 = _conv(n, n, 3, 2), _conv(n, n, 3, 2), _conv(n, n, 3, 2)
        self.conv_merge1, self.conv_merge2, self.conv_merge3 = (_conv(3 * n, n) for _ in range(3))

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x12 = F.relu(self.conv12(_up(x1, 2)))
        x13 = F.relu(self.conv13(_up(x1, 4)))
        x21 = F.relu(self.conv21(x2))
        x23 = F.relu(self.conv23(_up(x2, 2)))
        x31 = F.relu(self.conv31_2(F.relu(self.conv31_1(x3))))
        x32 = F.relu(self.conv32(x3))
        return (
            F.relu(self.conv_merge1(torch.cat((x1, x21, x31), 1))),
            F.relu(self.conv_merge2(torch.cat((x2, x12, x32), 1))),
            F.relu(self.conv_merge3(torch.cat((x3, x13, x23), 1))),
        )


class _MergeTail(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv13, self.conv23 = _conv(n, n, 1), _conv(n, n, 1)
        self.conv_merge = _conv(3 * n, n)
        self.conv_tail1, self.conv_tail2 = _conv(n, n // 2), _conv(n // 2, 3, 1)

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor) -> Tensor:
        x13 = F.relu(self.conv13(_up(x1, 4)))
        x23 = F.relu(self.conv23(_up(x2, 2)))
        x = F.relu(self.conv_merge(torch.cat((x3, x13, x23), 1)))
        return self.conv_tail2(self.conv_tail1(x)).clamp(-1, 1)


class MainNet(nn.Module):
    def __init__(self, blocks: tuple[int, int, int, int], n: int = 64) -> None:
        super().__init__()
        self.blocks = blocks
        self.SFE = _SFE(blocks[0], n)
        self.conv11_head = _conv(256 + n, n)
        self.RB11 = nn.ModuleList(ResidualBlockNoBN(n) for _ in range(blocks[1]))
        self.conv11_tail = _conv(n, n)
        self.conv12 = _conv(n, 4 * n)
        self.conv22_head = _conv(128 + n, n)
        self.ex12 = _CSFI2(n)
        self.RB21 = nn.ModuleList(ResidualBlockNoBN(n) for _ in range(blocks[2]))
        self.RB22 = nn.ModuleList(ResidualBlockNoBN(n) for _ in range(blocks[2]))
        self.conv21_tail, self.conv22_tail = _conv(n, n), _conv(n, n)
        self.conv23 = _conv(n, 4 * n)
        self.conv33_head = _conv(64 + n, n)
        self.ex123 = _CSFI3(n)
        self.RB31, self.RB32, self.RB33 = (
            nn.ModuleList(ResidualBlockNoBN(n) for _ in range(blocks[3])) for _ in range(3)
        )
        self.conv31_tail, self.conv32_tail, self.conv33_tail = _conv(n, n), _conv(n, n), _conv(n, n)
        self.merge_tail = _MergeTail(n)

    @staticmethod
    def _stage(x: Tensor, rbs: nn.ModuleList, tail: nn.Module) -> Tensor:
        res = x
        for rb in rbs:
            res = rb(res)
        return x + tail(res)

    def forward(self, x: Tensor, S: Tensor, T_lv3: Tensor, T_lv2: Tensor, T_lv1: Tensor) -> Tensor:
        x11 = self.SFE(x)
        x11 = x11 + self.conv11_head(torch.cat((x11, T_lv3), 1)) * S
        x11 = self._stage(x11, self.RB11, self.conv11_tail)
        x21 = x11
        x22 = F.relu(F.pixel_shuffle(self.conv12(x11), 2))
        x22 = x22 + self.conv22_head(torch.cat((x22, T_lv2), 1)) * _up(S, 2)
        r21, r22 = self.ex12(x21, x22)
        for rb21, rb22 in zip(self.RB21, self.RB22):
            r21, r22 = rb21(r21), rb22(r22)
        x21 = x21 + self.conv21_tail(r21)
        x22 = x22 + self.conv22_tail(r22)
        x31, x32 = x21, x22
        x33 = F.relu(F.pixel_shuffle(self.conv23(x22), 2))
        x33 = x33 + self.conv33_head(torch.cat((x33, T_lv1), 1)) * _up(S, 4)
        r31, r32, r33 = self.ex123(x31, x32, x33)
        for rb31, rb32, rb33 in zip(self.RB31, self.RB32, self.RB33):
            r31, r32, r33 = rb31(r31), rb32(r32), rb33(r33)
        x31 = x31 + self.conv31_tail(r31)
        x32 = x32 + self.conv32_tail(r32)
        x33 = x33 + self.conv33_tail(r33)
        return self.merge_tail(x31, x32, x33)


class LTE(nn.Module):
    """VGG19 ``features[0:12]`` in their three slices, behind their frozen ``sub_mean`` 1×1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.slice1 = nn.Sequential()
        self.slice1.add_module("0", _conv(3, 64))
        self.slice1.add_module("1", nn.ReLU())
        self.slice2 = nn.Sequential()
        for i, m in zip(range(2, 7), (_conv(64, 64), nn.ReLU(), nn.MaxPool2d(2), _conv(64, 128), nn.ReLU())):
            self.slice2.add_module(str(i), m)
        self.slice3 = nn.Sequential()
        for i, m in zip(range(7, 12), (_conv(128, 128), nn.ReLU(), nn.MaxPool2d(2), _conv(128, 256), nn.ReLU())):
            self.slice3.add_module(str(i), m)
        self.sub_mean = nn.Conv2d(3, 3, 1)
        std, mean = torch.tensor((0.229, 0.224, 0.225)), torch.tensor((0.485, 0.456, 0.406))
        self.sub_mean.weight.data = torch.eye(3).view(3, 3, 1, 1) / std.view(3, 1, 1, 1)
        self.sub_mean.bias.data = -mean / std
        self.sub_mean.requires_grad_(False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        lv1 = self.slice1(self.sub_mean(x))
        lv2 = self.slice2(lv1)
        return lv1, lv2, self.slice3(lv2)


def search_transfer(lrsr_lv3: Tensor, refsr_lv3: Tensor, ref_lv1: Tensor, ref_lv2: Tensor, ref_lv3: Tensor):
    """Their SearchTransfer: the full relevance matrix of 3×3 patches, argmax, unfold/fold transfer."""
    q = F.normalize(F.unfold(lrsr_lv3, 3, padding=1), dim=1)  # B×C9×HW
    k = F.normalize(F.unfold(refsr_lv3, 3, padding=1).permute(0, 2, 1), dim=2)  # B×HrWr×C9
    star, arg = torch.bmm(k, q).max(dim=1)  # B×HW

    def pick(unfolded: Tensor) -> Tensor:
        return unfolded.gather(2, arg[:, None].expand(-1, unfolded.shape[1], -1))

    h, w = lrsr_lv3.shape[-2:]
    t3 = F.fold(pick(F.unfold(ref_lv3, 3, padding=1)), (h, w), 3, padding=1) / 9.0
    t2 = F.fold(pick(F.unfold(ref_lv2, 6, padding=2, stride=2)), (2 * h, 2 * w), 6, padding=2, stride=2) / 9.0
    t1 = F.fold(pick(F.unfold(ref_lv1, 12, padding=4, stride=4)), (4 * h, 4 * w), 12, padding=4, stride=4) / 9.0
    return star.view(-1, 1, h, w), t3, t2, t1


class TTSR(nn.Module):
    def __init__(self, blocks: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.MainNet = MainNet(blocks)
        self.LTE = LTE()
        self.LTE_copy = LTE()  # their transferal perceptual loss's frozen copy; not saved
        self.LTE_copy.requires_grad_(False)

    def forward(self, lr: Tensor, lrsr: Tensor, ref: Tensor, refsr: Tensor) -> Tensor:
        _, _, lrsr_lv3 = self.LTE((lrsr + 1) / 2)
        _, _, refsr_lv3 = self.LTE((refsr + 1) / 2)
        ref_lv1, ref_lv2, ref_lv3 = self.LTE((ref + 1) / 2)
        S, t3, t2, t1 = search_transfer(lrsr_lv3, refsr_lv3, ref_lv1, ref_lv2, ref_lv3)
        return self.MainNet(lr, S, t3, t2, t1)


def their_checkpoint(net: TTSR) -> dict[str, Tensor]:
    """What their trainer saves: the state dict without ``LTE_copy``."""
    return {k: v for k, v in net.state_dict().items() if "_copy" not in k}


# ---------------------------------------------------------------- the checks


#: The reference of the equality checks (H, W): larger than the 160×160 output and not square,
#: multiples of 4 as their code crops references to; its 80×68 key positions at the matching
#: level are more than one block of the default ``chunk_size`` (4096), so the chunked matching
#: is compared with their full relevance matrix.
REF_SIZE = (320, 272)


def _pair(size: int = 40, ref_size: tuple[int, int] = REF_SIZE, seed: int = 1) -> tuple[Tensor, Tensor]:
    """(LR size×size, reference): a smooth random scene, the reference a shifted, larger view of it."""
    g = torch.Generator().manual_seed(seed)
    big = max(4 * size, *ref_size) + 40
    scene = F.interpolate(torch.rand(1, 3, big // 8, big // 8, generator=g), size=(big, big), mode="bicubic")
    detail = F.interpolate(torch.rand(1, 3, big // 2, big // 2, generator=g), size=(big, big))
    scene = (scene + 0.15 * detail).clamp(0, 1)
    hr, ref = scene[..., : 4 * size, : 4 * size], scene[..., 17 : 17 + ref_size[0], 23 : 23 + ref_size[1]]
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    return lr, ref.contiguous()


def authors_forward(net: TTSR, model: nn.Module, lr: Tensor, ref: Tensor) -> Tensor:
    """Their forward on the images our model derives, in [-1, 1]; the output back in [0, 1]."""
    with torch.no_grad():
        lrsr = model.upsampler(lr)
        refsr = degrade_reference(ref, 4)
        out = net(lr * 2 - 1, lrsr * 2 - 1, ref * 2 - 1, refsr * 2 - 1)
    return (out + 1) / 2


#: Their num_res_blocks: as released (slow on a CPU), and fewer for a quick check.
RELEASED, FEW = (16, 16, 8, 4), (2, 2, 1, 1)


def _randomise(net: nn.Module, seed: int) -> None:
    """Every trainable tensor random, at a scale that keeps activations of order one.

    The residual blocks' second convs are small (as in trained networks) and the other convs
    slightly damped, else 16 blocks in a row blow the features up and the clamped output
    saturates (where any mapping error would hide).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.requires_grad:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                gain = 0.1 if p.dim() == 1 else 0.1 if name.endswith("conv2.weight") else 0.85
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5 * gain)


@pytest.fixture(
    scope="module",
    params=[pytest.param(RELEASED, marks=pytest.mark.slow, id="released"), pytest.param(FEW, id="few")],
)
def converted(request, tmp_path_factory):
    blocks = request.param
    tmp = tmp_path_factory.mktemp("ttsr")
    torch.manual_seed(0)
    net = TTSR(blocks).eval()
    _randomise(net, seed=3)
    source = tmp / "TTSR-rec.pt"
    torch.save(their_checkpoint(net), source)
    # ttsr_authors with their num_res_blocks (the preset's own for the released layout)
    spec = apply_overrides(get_preset("ttsr_authors"), {"fusion.blocks": list(blocks)})
    out = ttsr_interop.convert(source, tmp / "ttsr.safetensors", model="ttsr_authors" if blocks == RELEASED else spec)
    return net, source, load_model(out).eval()


@pytest.fixture(scope="module")
def their_output(converted) -> tuple[Tensor, Tensor, Tensor]:
    """(LR, reference, the replica's output on them), computed once per checkpoint."""
    net, _, model = converted
    lr, ref = _pair()
    return lr, ref, authors_forward(net, model, lr, ref)


def test_the_converted_model_gives_their_outputs(converted, their_output) -> None:
    _, _, model = converted
    lr, ref, expected = their_output
    with torch.no_grad():
        got = model(lr, ref)
    assert got.shape == expected.shape == (1, 3, 160, 160)
    assert (REF_SIZE[0] // 4) * (REF_SIZE[1] // 4) > model.aligner.chunk_size  # several matching blocks
    assert expected.std() > 0.05  # the output is not flat
    assert ((expected <= 0) | (expected >= 1)).float().mean() < 0.01  # nor mostly clamped
    diff = (got - expected).abs().max().item()
    print(f"max |ours - theirs| = {diff:.3g}")
    assert diff < 1e-4, f"max |ours − theirs| = {diff:.3g}"


def test_a_tensor_mapped_wrongly_breaks_the_equality(converted, their_output) -> None:
    """Swapping two same-shape tensors changes the output far beyond the tolerance."""
    _, _, model = converted
    lr, ref, expected = their_output
    state = model.state_dict()
    swaps = (
        ("fusion.exchange.2.0_1.op.weight", "fusion.exchange.2.1_2.op.weight"),  # conv12 ↔ conv23 of CSFI3
        ("fusion.merge.2.0.weight", "fusion.merge.2.1.weight"),
        ("fusion.tail_merge.0.weight", "fusion.tail_merge.1.weight"),
        ("extractor.levels.1.0.weight", "fusion.shallow.0.body.0.weight"),  # conv1_2 ↔ an SFE conv: 64×64×3×3
    )
    for a, b in swaps:
        assert state[a].shape == state[b].shape
        wrong = build_model(model.spec).eval()
        wrong.load_state_dict({**state, a: state[b], b: state[a]})
        with torch.no_grad():
            diff = (wrong(lr, ref) - expected).abs().max().item()
        print(f"{a} <-> {b}: max |ours - theirs| = {diff:.3g}")
        assert diff > 1e-3, f"swapping {a} and {b} left the output within {diff:.3g} (the tolerance is 1e-4)"


def test_reordering_the_merge_inputs_matters(converted, their_output) -> None:
    """Converting without the merge convs' input reordering gives another output."""
    net, _, model = converted
    lr, ref, expected = their_output
    state = model.state_dict()
    plain = state["fusion.merge.2.2.weight"]
    theirs = net.MainNet.ex123.conv_merge3.weight.detach()
    assert not torch.equal(plain, theirs)
    wrong = build_model(model.spec).eval()
    wrong.load_state_dict({**state, "fusion.merge.2.2.weight": theirs})
    with torch.no_grad():
        assert (wrong(lr, ref) - expected).abs().max().item() > 1e-3


def _conv_parameters(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + cout


def test_the_preset_has_the_parameter_count_of_their_layer_definitions() -> None:
    """Summed from their MainNet.py and LTE.py as option.py builds them (64 features, 16+16+8+4 blocks)."""
    n, c3, c1 = 64, _conv_parameters, lambda cin, cout: _conv_parameters(cin, cout, 1)
    block = 2 * c3(n, n)
    sfe = c3(3, n) + 16 * block + c3(n, n)
    stage1 = c3(256 + n, n) + 16 * block + c3(n, n)
    stage2 = c3(n, 4 * n) + c3(128 + n, n) + 2 * 8 * block + 2 * c3(n, n)
    csfi2 = c1(n, n) + c3(n, n) + 2 * c3(2 * n, n)
    stage3 = c3(n, 4 * n) + c3(64 + n, n) + 3 * 4 * block + 3 * c3(n, n)
    csfi3 = 3 * c1(n, n) + 4 * c3(n, n) + 3 * c3(3 * n, n)
    merge_tail = 2 * c1(n, n) + c3(3 * n, n) + c3(n, n // 2) + c1(n // 2, 3)
    main = sfe + stage1 + stage2 + csfi2 + stage3 + csfi3 + merge_tail
    lte = c3(3, 64) + c3(64, 64) + c3(64, 128) + c3(128, 128) + c3(128, 256)  # VGG19 conv1_1 … conv3_1
    assert (main, lte) == (6_174_275, 555_328)
    model = build_model("ttsr_authors")
    assert sum(p.numel() for p in model.fusion.parameters()) == main
    assert sum(p.numel() for p in model.extractor.parameters()) == lte
    assert sum(p.numel() for p in model.parameters()) == main + lte == 6_729_603


def test_their_parameter_count(converted) -> None:
    net, _, model = converted
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    ours = sum(p.numel() for p in model.parameters())
    assert ours == trainable
    assert sum(p.numel() for p in model.extractor.parameters()) == sum(
        p.numel() for n, p in net.LTE.named_parameters() if not n.startswith("sub_mean")
    )
    if net.MainNet.blocks == RELEASED:
        main = sum(p.numel() for p in net.MainNet.parameters())
        lte = sum(p.numel() for p in net.LTE.parameters())
        everything = sum(p.numel() for p in net.parameters())
        # MainNet 6,174,275; LTE 555,328 convs + 12 in the frozen sub_mean; LTE_copy the same again.
        assert (main, lte, trainable, everything) == (6_174_275, 555_340, 6_729_603, 7_284_955)
        assert sum(p.numel() for p in build_model("ttsr_authors").parameters()) == trainable


def test_foreign_tensors_and_wrong_targets_are_named(converted, tmp_path) -> None:
    _, source, model = converted
    state = torch.load(source, weights_only=True)
    state["MainNet.extra.weight"] = torch.zeros(1)
    odd = tmp_path / "odd.pt"
    torch.save(state, odd)
    with pytest.raises(ConversionError, match="MainNet.extra.weight"):
        ttsr_interop.convert(odd, tmp_path / "out.safetensors", model=model.spec)
    state = torch.load(source, weights_only=True)
    del state["MainNet.conv23.bias"]
    torch.save(state, odd)
    with pytest.raises(ConversionError, match="MainNet.conv23.bias"):
        ttsr_interop.convert(odd, tmp_path / "out.safetensors", model=model.spec)
    state = torch.load(source, weights_only=True)
    state["LTE.sub_mean.bias"] = torch.zeros(3)
    torch.save(state, odd)
    with pytest.raises(ConversionError, match="sub_mean"):
        ttsr_interop.convert(odd, tmp_path / "out.safetensors", model=model.spec)
    with pytest.raises(ConversionError, match="ttsr_authors"):
        ttsr_interop.convert(source, tmp_path / "out.safetensors", model="ttsr")


def test_the_command_line_converts_their_checkpoint(converted, tmp_path) -> None:
    import json

    from refsr_blocks.interop.command import main

    net, source, model = converted
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(model.spec))
    out = tmp_path / "cli.safetensors"
    assert main(["ttsr", str(source), "-o", str(out), "--model", str(spec)]) == 0
    loaded = load_model(out)
    torch.testing.assert_close(loaded.fusion.head[0].weight, net.MainNet.SFE.conv_head.weight, atol=0, rtol=0)


def test_the_ttsr_protocol_measures_as_their_test_code() -> None:
    """``ttsr-cvpr2020``: their ``calc_psnr`` (MATLAB's Y weights over 256 on the rounded 8-bit
    images, the whole image, no border crop)."""
    from refsr_blocks.evaluation.protocols import get_protocol

    g = torch.Generator().manual_seed(6)
    hr = torch.round(torch.rand(1, 3, 40, 48, generator=g) * 255) / 255  # a dataset image is 8-bit
    sr = (hr + 0.05 * torch.randn(1, 3, 40, 48, generator=g)).clamp(0, 1)
    diff = (torch.round(sr[0].double() * 255) - torch.round(hr[0].double() * 255)) / 255
    diff = diff[0] * 65.738 / 256 + diff[1] * 129.057 / 256 + diff[2] * 25.064 / 256
    theirs = -10 * torch.log10(diff.square().mean())
    protocol = get_protocol("ttsr-cvpr2020")
    psnr, _ = protocol.measure(sr, hr)
    assert abs(psnr.item() - theirs.item()) < 1e-4
    assert (protocol.border, protocol.lr_kernel, protocol.reference, protocol.version) == (0, "pil", "first", 1)
