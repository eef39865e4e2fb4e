"""MASA-SR's released layout → masa_sr: a replica of their forward, in their names, gives our outputs.

The replica below is written from reading dvlab-research/MASA-SR (models/archs/MASA_arch.py),
in plain PyTorch: their module names (so their state dict loads into it), their block
search (8×8 LR blocks, descriptors at dilations 1, 2, 3 summed, top-1 over the whole reduced
reference), their window (its size from the reference's width and the number of blocks,
shifted inside the reference), their patch search in the window and their transfer (unfold,
index, fold with the overlap divisor, the block's similarity bilinearly upsampled). Their
loader pads the LR to multiples of 8 and the reference to multiples of 16; the pairs here
have such sizes already, and the reduced reference is the one the model makes. Their
loader reads BGR images (``cv2.imread``) and their network runs on them as they are, so the
replica is given BGR images and its BGR output is compared with ours, reversed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from replica_parts import ResidualBlockNoBN
from torch import Tensor, nn

from refsr_blocks import build_model, load_model
from refsr_blocks.components.models.masa_sr import reduced_reference
from refsr_blocks.interop import ConversionError, masa_sr

# ---------------------------------------------------------------- the replica, in their names


def _layer(nf: int, n: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlockNoBN(nf) for _ in range(n)))


class _SAM(nn.Module):
    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv_shared = nn.Sequential(nn.Conv2d(nf * 2, nf, 3, 1, 1), nn.ReLU())
        self.conv_gamma = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_beta = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        ref_normed = F.instance_norm(ref, eps=1e-5)
        style = self.conv_shared(torch.cat([lr, ref], 1))
        b, c, h, w = lr.shape
        flat = lr.reshape(b, c, h * w)
        mean = flat.mean(-1, keepdim=True).unsqueeze(3)
        std = flat.std(-1, keepdim=True).unsqueeze(3)
        return ref_normed * (self.conv_gamma(style) + std) + (self.conv_beta(style) + mean)


class _Encoder(nn.Module):
    def __init__(self, nf: int, n_blks: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv_L1 = nn.Conv2d(3, nf, 3, 1, 1)
        self.blk_L1 = _layer(nf, n_blks[0])
        self.conv_L2 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.blk_L2 = _layer(nf, n_blks[1])
        self.conv_L3 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.blk_L3 = _layer(nf, n_blks[2])

    def forward(self, x: Tensor) -> list[Tensor]:
        l1 = self.blk_L1(F.relu(self.conv_L1(x)))
        l2 = self.blk_L2(F.relu(self.conv_L2(l1)))
        return [l1, l2, self.blk_L3(F.relu(self.conv_L3(l2)))]


class _DRAM(nn.Module):
    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv_down_a = nn.Conv2d(nf, nf, 3, 2, 1)
        self.conv_up_a = nn.ConvTranspose2d(nf, nf, 3, 2, 1, 1)
        self.conv_down_b = nn.Conv2d(nf, nf, 3, 2, 1)
        self.conv_up_b = nn.ConvTranspose2d(nf, nf, 3, 2, 1, 1)
        self.conv_cat = nn.Conv2d(nf * 2, nf, 3, 1, 1)

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        out_a = F.relu(self.conv_up_a(F.relu(self.conv_down_a(ref)) - lr)) + ref
        res_b = lr - F.relu(self.conv_down_b(ref))
        out_b = F.relu(self.conv_up_b(res_b + lr))
        return F.relu(self.conv_cat(torch.cat([out_a, out_b], 1)))


class _Decoder(nn.Module):
    def __init__(self, nf: int, n_blks: tuple[int, ...]) -> None:
        super().__init__()
        self.conv_L3 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.blk_L3 = _layer(nf, n_blks[0])
        self.conv_L2 = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.blk_L2 = _layer(nf, n_blks[1])
        self.conv_L1 = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.blk_L1 = _layer(nf, n_blks[2])
        self.merge_warp_x1 = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.blk_x1 = _layer(nf, n_blks[3])
        self.dram_x2 = _DRAM(nf)
        self.blk_x2 = _layer(nf, n_blks[4])
        self.dram_x4 = _DRAM(nf)
        self.blk_x4 = _layer(nf, n_blks[5])
        self.conv_out = nn.Conv2d(nf, 3, 3, 1, 1)
        self.pAda = _SAM(nf)

    def forward(self, lr_l: list[Tensor], warp_ref_l: list[Tensor]) -> Tensor:
        def up(x: Tensor) -> Tensor:
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

        l3 = self.blk_L3(F.relu(self.conv_L3(lr_l[2])))
        l2 = self.blk_L2(F.relu(self.conv_L2(torch.cat([up(l3), lr_l[1]], 1))))
        l1 = self.blk_L1(F.relu(self.conv_L1(torch.cat([up(l2), lr_l[0]], 1))))
        w1 = self.pAda(l1, warp_ref_l[2])
        x1 = self.blk_x1(F.relu(self.merge_warp_x1(torch.cat([w1, l1], 1))))
        x2 = self.blk_x2(self.dram_x2(x1, self.pAda(up(x1), warp_ref_l[1])))
        x4 = self.blk_x4(self.dram_x4(x2, self.pAda(up(x2), warp_ref_l[0])))
        return self.conv_out(x4)


class _MASA(nn.Module):
    """Their MASA: the encoder and decoder above, the search and transfer below (scale 4, one neighbour)."""

    def __init__(self, nf: int = 64, n_blks=(4, 4, 4), n_blks_dec=(2, 2, 2, 12, 8, 4)) -> None:
        super().__init__()
        self.enc = _Encoder(nf, n_blks)
        self.decoder = _Decoder(nf, n_blks_dec)

    @staticmethod
    def _search(lr: Tensor, reflr: Tensor, dilations=(1, 2, 3)) -> Tensor:
        n, c, _, _ = reflr.shape
        k_y, k_x = lr.shape[-2:]
        y, x = k_y // 2, k_x // 2
        corr_sum = 0
        for d in dilations:
            ref_p = F.normalize(F.unfold(reflr, 3, padding=d, dilation=d), dim=1)
            lr_p = lr[:, :, :, y - d : y + d + 1 : d, x - d : x + d + 1 : d].reshape(n, -1, c * 9)
            corr_sum = corr_sum + torch.bmm(F.normalize(lr_p, dim=2), ref_p)
        return torch.topk(corr_sum, 1, dim=-1)[1][:, :, 0]

    @staticmethod
    def _search_org(lr: Tensor, reflr: Tensor) -> tuple[Tensor, Tensor]:
        n, _, h, w = lr.shape
        ref_u = F.normalize(F.unfold(reflr, 3), dim=1)
        lr_u = F.normalize(F.unfold(lr, 3).permute(0, 2, 1), dim=2)
        corr = torch.bmm(lr_u, ref_u).view(n, h - 2, w - 2, -1)
        return torch.topk(corr, 1, dim=-1)

    @staticmethod
    def _transfer(fea: Tensor, index: Tensor, soft_att: Tensor, ks: int, pd: int, stride: int) -> Tensor:
        unfolded = F.unfold(fea, ks, stride=stride)
        _, hi, wi = index.shape
        out = torch.gather(unfolded, 2, index.view(index.shape[0], 1, -1).expand(-1, unfolded.shape[1], -1))
        size = (hi * stride, wi * stride)
        folded = F.fold(out, size, ks, padding=pd, stride=stride)
        divisor = F.fold(torch.ones_like(out), size, ks, padding=pd, stride=stride)
        return folded / divisor * F.interpolate(soft_att, size=size, mode="bilinear", align_corners=False)

    def forward(self, lr: Tensor, ref: Tensor, ref_down: Tensor) -> Tensor:
        _, _, h, w = lr.shape
        px, py = w // 8, h // 8
        k_x, k_y = w // px, h // py
        hd, wd = ref_down.shape[-2:]
        dx = 2 * int(wd // (2 * px) * 1.5) + 1
        dy = 2 * int(hd // (2 * py) * 1.5) + 1
        lrsr = F.interpolate(lr, scale_factor=4, mode="bicubic")
        fea_lr, fea_reflr, fea_ref = self.enc(lr), self.enc(ref_down), self.enc(ref)
        n, c, hh, ww = fea_lr[0].shape
        hr, wr = fea_reflr[0].shape[-2:]
        lr_p = F.unfold(F.pad(fea_lr[0], (1, 1, 1, 1), mode="replicate"), (k_y + 2, k_x + 2), stride=(k_y, k_x))
        lr_p = lr_p.view(n, c, k_y + 2, k_x + 2, py * px).permute(0, 4, 1, 2, 3)
        index = self._search(lr_p, fea_reflr[0])
        # their window: centred on the match, one more pixel each side, shifted inside the reference
        x1 = (index % wr - dx // 2 - 1).clamp(min=0).clamp(max=wr - dx - 2)
        y1 = (index // wr - dy // 2 - 1).clamp(min=0).clamp(max=hr - dy - 2)

        def crop(fea: Tensor, s: int) -> Tensor:
            return torch.stack(
                [
                    fea[b, :, s * y1[b, i] : s * (y1[b, i] + dy + 2), s * x1[b, i] : s * (x1[b, i] + dx + 2)]
                    for b in range(n)
                    for i in range(py * px)
                ]
            )

        lr_blocks = lr_p.reshape(n * py * px, c, k_y + 2, k_x + 2)
        corr, idx = self._search_org(lr_blocks, crop(fea_reflr[0], 1))
        index_all, att = idx[..., 0], corr[..., 0:1].permute(0, 3, 1, 2)
        warped = []
        for s, level in ((4, 0), (2, 1), (1, 2)):
            t = self._transfer(crop(fea_ref[level], s), index_all, att, 3 * s, s, s)
            t = t.view(n, py, px, c, hh // py * s, ww // px * s).permute(0, 3, 1, 4, 2, 5)
            warped.append(t.reshape(n, c, hh * s, ww * s))
        return self.decoder(fea_lr, warped) + lrsr


def _their_state(seed: int = 0) -> dict[str, Tensor]:
    """A random state dict in their layout, initialised as their weight_init scales it (plus
    non-zero biases and SAM convs, so that every tensor shows in the output)."""
    torch.manual_seed(seed)
    net = _MASA()
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            scale = 0.1 if name.split(".")[-1] in ("conv1", "conv2") else 1.0
            nn.init.normal_(m.weight, 0, scale * 0.5 * math.sqrt(2.0 / n))
            nn.init.uniform_(m.bias, -0.02, 0.02)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _replica(state: dict[str, Tensor]) -> _MASA:
    net = _MASA()
    net.load_state_dict(state)
    return net.eval()


def _theirs(state: dict[str, Tensor], lr: Tensor, ref: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Their output for RGB ``lr`` and ``ref``: the replica run on the BGR images, made RGB again."""
    lr, ref = lr.to(dtype).flip(1), ref.to(dtype).flip(1)
    with torch.no_grad():
        return _replica(state).to(dtype)(lr, ref, reduced_reference(ref, 4)).flip(1)


def _pair(hr_size: tuple[int, int], ref_size: tuple[int, int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """An LR image and a reference holding a shifted, brightened copy of its content (smooth noise)."""
    g = torch.Generator().manual_seed(seed)
    big = F.interpolate(torch.rand(1, 3, 48, 48, generator=g), size=(512, 512), mode="bicubic").clamp(0, 1)
    hr = big[..., 40 : 40 + hr_size[0], 60 : 60 + hr_size[1]]
    ref = (big[..., 20 : 20 + ref_size[0], 30 : 30 + ref_size[1]] * 0.9 + 0.05).contiguous()
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    return lr, ref


# ---------------------------------------------------------------- the tests


def test_the_key_map_is_one_to_one_and_covers_both_layouts() -> None:
    mapping = masa_sr.key_map()
    assert len(set(mapping.values())) == len(mapping)
    ours = set(build_model("masa_sr").state_dict())
    theirs = set(_their_state())
    assert {f"{v}.{s}" for v in mapping.values() for s in ("weight", "bias")} == ours
    assert {f"{k}.{s}" for k in mapping for s in ("weight", "bias")} == theirs


def test_the_replica_has_the_preset_parameter_count() -> None:
    assert sum(v.numel() for v in _their_state().values()) == 4_028_291
    assert sum(p.numel() for p in build_model("masa_sr").parameters()) == 4_028_291


def _converted(state: dict[str, Tensor]) -> nn.Module:
    net = build_model("masa_sr")
    net.load_state_dict(masa_sr.convert_state_dict(state))
    return net.eval()


@functools.cache
def _case(hr_size: tuple[int, int], ref_size: tuple[int, int]) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor]:
    """Their random state, a pair of these sizes and their output for it in float64 (computed once)."""
    state = _their_state()
    lr, ref = _pair(hr_size, ref_size)
    return state, lr, ref, _theirs(state, lr, ref)


@pytest.mark.parametrize(("hr_size", "ref_size"), [((160, 160), (160, 160)), ((160, 192), (224, 176))])
def test_converted_weights_reproduce_their_forward(hr_size, ref_size) -> None:
    state, lr, ref, expected = _case(hr_size, ref_size)
    with torch.no_grad():
        got = _converted(state).double()(lr.double(), ref.double())
    assert got.shape == expected.shape == (1, 3, *hr_size)
    assert (got - expected).abs().max().item() < 1e-4


def test_float32_matches_too() -> None:
    state, lr, ref, expected = _case((160, 160), (160, 160))
    with torch.no_grad():
        got = _converted(state)(lr, ref)
    assert (got - expected).abs().max().item() < 1e-4


def _swapped(a: str, b: str) -> Callable[[dict[str, Tensor]], None]:
    def change(state: dict[str, Tensor]) -> None:
        state[a], state[b] = state[b], state[a]

    return change


def _bgr_kept(name: str, axis: int) -> Callable[[dict[str, Tensor]], None]:
    def change(state: dict[str, Tensor]) -> None:
        state[name] = state[name].flip(axis)

    return change


@pytest.mark.parametrize(
    "mistake",
    [
        _swapped("decoder.aggregations.0.down_ref.weight", "decoder.aggregations.0.down_features.weight"),
        _swapped("decoder.adaptation.gamma.weight", "decoder.adaptation.beta.weight"),
        _swapped("encoder.blocks.0.0.body.0.weight", "encoder.blocks.0.0.body.2.weight"),
        _swapped("decoder.stage_blocks.1.0.body.0.bias", "decoder.stage_blocks.2.0.body.0.bias"),
        _bgr_kept("encoder.convs.0.weight", 1),  # their BGR input order kept
        _bgr_kept("decoder.out.weight", 0),  # their BGR output order kept
    ],
    ids=["dram-convs", "sam-gamma-beta", "residual-convs", "stage-biases", "bgr-input", "bgr-output"],
)
def test_a_wrong_mapping_is_caught(mistake) -> None:
    state, lr, ref, expected = _case((160, 160), (160, 160))
    converted = masa_sr.convert_state_dict(state)
    mistake(converted)
    net = build_model("masa_sr")
    net.load_state_dict(converted)
    with torch.no_grad():
        got = net.eval()(lr, ref)
    assert (got - expected).abs().max().item() > 1e-3


def test_convert_writes_a_checkpoint_that_loads(tmp_path) -> None:
    """``refsr-blocks convert masa_sr SOURCE -o OUT`` on a file saved as their DataParallel saves it."""
    from refsr_blocks.interop.command import main

    state = _their_state()
    source = tmp_path / "masa_rec.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, source)
    out = tmp_path / "masa.safetensors"
    assert main(["masa_sr", str(source), "-o", str(out)]) == 0
    model = load_model(out).eval()
    lr, ref = _pair((64, 64), (96, 96))
    with torch.no_grad():
        assert torch.equal(model(lr, ref), _converted(state)(lr, ref))


def test_a_foreign_file_is_refused(tmp_path) -> None:
    state = _their_state()
    state["decoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match="unexpected tensors"):
        masa_sr.convert_state_dict(state)
    del state["decoder.extra.weight"], state["decoder.conv_out.bias"]
    with pytest.raises(ConversionError, match="missing tensor"):
        masa_sr.convert_state_dict(state)


@pytest.mark.parametrize(("name", "reference"), [("masa-sr-cvpr2021", "all"), ("masa-sr-cvpr2021-ref1", "first")])
def test_the_masa_protocols_measure_as_their_test_code(name, reference) -> None:
    """Their PSNR: ``bgr2ycbcr`` of the 8-bit images (as floats, Y not rounded), the whole image."""
    from refsr_blocks.evaluation.protocols import get_protocol

    g = torch.Generator().manual_seed(5)
    hr = torch.round(torch.rand(1, 3, 40, 48, generator=g) * 255) / 255  # a dataset image is 8-bit
    sr = (hr + 0.02 * torch.randn(1, 3, 40, 48, generator=g)).clamp(0, 1)
    sr[..., :3, :] = 1 - sr[..., :3, :]  # errors at the border, which a border crop would leave out

    def their_y(img: Tensor) -> Tensor:  # tensor2img (8 bits), then bgr2ycbcr(x / 255.) * 255
        rgb = torch.round(img[0].double().clamp(0, 1) * 255)
        return (rgb[0] * 65.481 + rgb[1] * 128.553 + rgb[2] * 24.966) / 255 + 16

    theirs = 20 * torch.log10(255 / (their_y(sr) - their_y(hr)).square().mean().sqrt())
    protocol = get_protocol(name)
    psnr, _ = protocol.measure(sr, hr)
    assert abs(psnr.item() - theirs.item()) < 1e-6
    assert (protocol.reference, protocol.lr_kernel, protocol.version) == (reference, "pil", 1)


def test_the_reproduce_command_runs_on_a_cufed5_folder(tmp_path) -> None:
    """``refsr-blocks eval --protocol masa-sr-cvpr2021`` on a CUFED5-layout folder (random weights):
    five references of other sizes than the output, two of them smaller than a block's window."""
    from refsr_blocks import save_model
    from refsr_blocks.data import save_image
    from refsr_blocks.evaluation.command import eval_main

    root = tmp_path / "cufed5"
    root.mkdir()
    g = torch.Generator().manual_seed(9)
    for scene, size in enumerate(((48, 64), (50, 66))):
        sizes = (size, (40, 56), (64, 48), (24, 80), (48, 64), (30, 30))
        for level, (h, w) in enumerate(sizes):
            image = F.interpolate(torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w), mode="bilinear")
            save_image(image[0], root / f"{scene:03d}_{level}.png")
    torch.manual_seed(0)
    save_model(build_model("masa_sr_small"), tmp_path / "masa.safetensors")
    out = tmp_path / "eval"
    args = ["--checkpoint", f"masa={tmp_path / 'masa.safetensors'}", "--data", f"cufed5:{root}", "--device", "cpu"]
    args += ["--no-progress", "--controls", "grey", "--baselines", "bicubic", "--protocol", "masa-sr-cvpr2021"]
    assert eval_main([*args, "--out", str(out)]) == 0
    markdown = (out / "results.md").read_text()
    assert "**Protocol masa-sr-cvpr2021 v1**" in markdown and "all references of each item" in markdown
    assert "| masa |" in markdown
