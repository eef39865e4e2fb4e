"""C2-Matching's released layout → c2_matching: a replica of their forward, in their names, gives our outputs.

The replica below is written from reading yumingj/C2-Matching (mmsr/models/archs:
ref_restoration_arch.py, corres_generation_arch.py, ref_map_util.py, contras_extractor_arch.py,
vgg_arch.py, DCNv2/dcn_v2.py), in plain PyTorch: their module names (so their state dicts load
into it), their matching (unnormalised-query ``conv2d`` over normalised reference patches, the
flow decoded from the index with the LR's width, padded by two at the bottom and right), their
nine shifted offsets per level and their ``DCN_sep_pre_multi_offset`` (DCNv2's CUDA op, here
torchvision's ``deform_conv2d``, the same modulated deformable convolution). Their test code
pads the ground truth and the reference to one size; the pair here has one size already.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from replica_parts import ResidualBlockNoBN
from torch import Tensor, nn

from refsr_blocks import build_model, load_model
from refsr_blocks.interop import ConversionError, c2_matching

# ---------------------------------------------------------------- the replica, in their names


class _ContentExtractor(nn.Module):
    def __init__(self, nf: int, n_blocks: int) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(nf) for _ in range(n_blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(F.leaky_relu(self.conv_first(x), 0.1))


class _PreOffsetDCN(nn.Module):
    """Their DCN_sep_pre_multi_offset: offsets = conv_offset_mask(features) + the precomputed ones."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(channels))
        self.conv_offset_mask = nn.Conv2d(channels, groups * 27, 3, 1, 1)

    def forward(self, x: Tensor, feat: Tensor, pre_offset: Tensor) -> Tensor:
        from torchvision.ops import deform_conv2d

        o1, o2, mask = torch.chunk(self.conv_offset_mask(feat), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        pre = pre_offset.repeat([1, self.groups, 1, 1, 1])  # b, 9·groups, h, w, (x, y)
        reorder = torch.zeros_like(offset)
        reorder[:, 0::2] = pre[..., 1]
        reorder[:, 1::2] = pre[..., 0]
        return deform_conv2d(x, offset + reorder, self.weight, self.bias, padding=1, mask=torch.sigmoid(mask))


class _DynAggRestore(nn.Module):
    def __init__(self, ngf: int, n_blocks: int, groups: int) -> None:
        super().__init__()
        for stage, c in (("small", 256), ("medium", 128), ("large", 64)):
            setattr(self, f"{stage}_offset_conv1", nn.Conv2d(ngf + c, c, 3, 1, 1))
            setattr(self, f"{stage}_offset_conv2", nn.Conv2d(c, c, 3, 1, 1))
            setattr(self, f"{stage}_dyn_agg", _PreOffsetDCN(c, groups))
            setattr(self, f"head_{stage}", nn.Sequential(nn.Conv2d(ngf + c, ngf, 3, 1, 1), nn.LeakyReLU(0.1)))
            setattr(self, f"body_{stage}", nn.Sequential(*(ResidualBlockNoBN(ngf) for _ in range(n_blocks))))
        self.tail_small = nn.Sequential(nn.Conv2d(ngf, ngf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.1))
        self.tail_medium = nn.Sequential(nn.Conv2d(ngf, ngf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.1))
        self.tail_large = nn.Sequential(
            nn.Conv2d(ngf, ngf // 2, 3, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(ngf // 2, 3, 3, 1, 1)
        )

    def forward(self, x: Tensor, pre_offset: dict[str, Tensor], ref_feat: dict[str, Tensor]) -> Tensor:
        for stage, layer in (("small", "relu3_1"), ("medium", "relu2_1"), ("large", "relu1_1")):
            feat = torch.cat([x, ref_feat[layer]], 1)
            feat = F.leaky_relu(getattr(self, f"{stage}_offset_conv1")(feat), 0.1)
            feat = F.leaky_relu(getattr(self, f"{stage}_offset_conv2")(feat), 0.1)
            swapped = F.leaky_relu(getattr(self, f"{stage}_dyn_agg")(ref_feat[layer], feat, pre_offset[layer]), 0.1)
            h = getattr(self, f"head_{stage}")(torch.cat([x, swapped], 1))
            h = getattr(self, f"body_{stage}")(h) + x
            x = getattr(self, f"tail_{stage}")(h)
        return x


class _RestorationNet(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 16, groups: int = 8) -> None:
        super().__init__()
        self.content_extractor = _ContentExtractor(ngf, n_blocks)
        self.dyn_agg_restore = _DynAggRestore(ngf, n_blocks, groups)

    def forward(self, x: Tensor, pre_offset: dict[str, Tensor], ref_feat: dict[str, Tensor]) -> Tensor:
        base = F.interpolate(x, None, 4, "bilinear", False)
        return self.dyn_agg_restore(self.content_extractor(x), pre_offset, ref_feat) + base


_VGG_NAMES = ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2"]
_VGG_NAMES += ["pool2", "conv3_1", "relu3_1"]
_VGG_CHANNELS = {"conv1_1": (3, 64), "conv1_2": (64, 64), "conv2_1": (64, 128), "conv2_2": (128, 128)}
_VGG_CHANNELS["conv3_1"] = (128, 256)
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _vgg_layers(last: str) -> OrderedDict[str, nn.Module]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name in _VGG_NAMES[: _VGG_NAMES.index(last) + 1]:
        if name.startswith("conv"):
            layers[name] = nn.Conv2d(*_VGG_CHANNELS[name], 3, 1, 1)
        elif name.startswith("relu"):
            layers[name] = nn.ReLU()
        else:
            layers[name] = nn.MaxPool2d(2, 2)
    return layers


class _ContrasExtractorLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(_vgg_layers("conv3_1"))
        self.register_buffer("mean", _MEAN.clone())
        self.register_buffer("std", _STD.clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


class _ContrasExtractorSep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feature_extraction_image1 = _ContrasExtractorLayer()
        self.feature_extraction_image2 = _ContrasExtractorLayer()


def _vgg19_features(vgg: nn.Sequential, x: Tensor) -> dict[str, Tensor]:
    """Their VGGFeatureExtractor (relu1_1, relu2_1, relu3_1) on torchvision's layer indices."""
    out, x = {}, (x - _MEAN) / _STD
    for name, layer in zip(_VGG_NAMES, vgg):
        x = layer(x)
        if name in ("relu1_1", "relu2_1", "relu3_1"):
            out[name] = x
    return out


def _tensor_shift(x: Tensor, shift: tuple[int, int]) -> Tensor:
    _, h, w, _ = x.shape
    new = torch.zeros_like(x)
    new[:, shift[0] :, shift[1] :, :] = x[:, : h - shift[0], : w - shift[1], :]
    return new


def _feature_match_index(feat_input: Tensor, feat_ref: Tensor) -> Tensor:
    """Their ref_map_util.feature_match_index (patch 3, stride 1, reference patches normalised)."""
    c = feat_ref.shape[0]
    patches = feat_ref.unfold(1, 3, 1).unfold(2, 3, 1).reshape(c, -1, 3, 3).permute(0, 2, 3, 1)
    _, h, w = feat_input.shape
    batch_size = int(1024.0**2 * 512 / (h * w))
    max_idx = max_val = None
    for idx in range(0, patches.shape[-1], batch_size):
        batch = patches[..., idx : idx + batch_size]
        batch = batch / (batch.norm(p=2, dim=(0, 1, 2)) + 1e-5)
        corr = F.conv2d(feat_input.unsqueeze(0), batch.permute(3, 0, 1, 2))
        val, arg = corr.squeeze(0).max(dim=0)
        if max_idx is None:
            max_idx, max_val = arg, val
        else:
            better = val > max_val
            max_val[better], max_idx[better] = val[better], arg[better] + idx
    return max_idx


def _pre_offsets(feat_in: Tensor, feat_ref: Tensor) -> dict[str, Tensor]:
    """Their CorrespondenceGenerationArch.forward for one pair: nine shifted flows per level."""
    c, h, w = feat_in.shape
    feat_in = F.normalize(feat_in.reshape(c, -1), dim=0).view(c, h, w)
    feat_ref = F.normalize(feat_ref.reshape(c, -1), dim=0).view(c, h, w)
    max_idx = _feature_match_index(feat_in, feat_ref)
    mh, mw = max_idx.shape  # their index_to_flow decodes with the input's width
    grid_y, grid_x = torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij")
    flow = torch.stack((max_idx % mw - grid_x, max_idx // mw - grid_y), 2).unsqueeze(0).float()
    flow = F.pad(flow, (0, 0, 0, 2, 0, 2))
    out = {}
    for layer, f in (("relu3_1", 1), ("relu2_1", 2), ("relu1_1", 4)):
        up = flow.repeat_interleave(f, 1).repeat_interleave(f, 2) * f
        out[layer] = torch.cat([_tensor_shift(up, (i * f, j * f)) for i in range(3) for j in range(3)])[None]
    return out


def authors_forward(net_g, extractor, vgg19, img_in_lq: Tensor, img_in_up: Tensor, img_ref: Tensor) -> Tensor:
    """Their RefRestorationModel.test() for one pair of one size."""
    with torch.no_grad():
        feat_in = extractor.feature_extraction_image1(img_in_up)[0]
        feat_ref = extractor.feature_extraction_image2(img_ref)[0]
        return net_g(img_in_lq, _pre_offsets(feat_in, feat_ref), _vgg19_features(vgg19, img_ref))


# ---------------------------------------------------------------- random weights in their layout


def _authors_networks(
    ngf: int, n_blocks: int, seed: int = 0
) -> tuple[_RestorationNet, _ContrasExtractorSep, nn.Sequential]:
    """Their three networks with random weights of a realistic scale (activations stay O(1))."""
    torch.manual_seed(seed)
    net_g, extractor = _RestorationNet(ngf, n_blocks), _ContrasExtractorSep()
    vgg19 = nn.Sequential(*_vgg_layers("relu3_1").values())
    with torch.no_grad():
        for net in (net_g, extractor, vgg19):
            for name, p in net.named_parameters():
                fan_in = p[0].numel() if p.ndim > 1 else 1
                p.copy_(torch.randn_like(p) * (0.5 / fan_in**0.5 if p.ndim > 1 else 0.01))
                if "conv_offset_mask" in name:  # learned offsets of a pixel or two around the match
                    p.mul_(0.5)
    return net_g.eval(), extractor.eval(), vgg19.eval()


def _their_files(tmp_path, net_g, extractor, vgg19):
    paths = {"restoration": tmp_path / "c2_matching_restoration.pth", "extractor": tmp_path / "feature_extraction.pth"}
    torch.save(net_g.state_dict(), paths["restoration"])
    torch.save(extractor.state_dict(), paths["extractor"])
    vgg_state = {f"features.{k}": v for k, v in vgg19.state_dict().items()}
    vgg_state["classifier.0.weight"] = torch.zeros(4, 4)  # the rest of torchvision's VGG19 is ignored
    paths["vgg19"] = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(vgg_state, paths["vgg19"])
    return paths


def _pair(size: int = 40, seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """(LR, LR↑, reference): a smooth random scene, the reference a shifted view of it."""
    g = torch.Generator().manual_seed(seed)
    big = 4 * size + 40
    scene = F.interpolate(torch.rand(1, 3, big // 8, big // 8, generator=g), size=(big, big), mode="bicubic")
    scene = (scene + 0.15 * F.interpolate(torch.rand(1, 3, big // 2, big // 2, generator=g), size=(big, big))).clamp(
        0, 1
    )
    hr, ref = scene[..., : 4 * size, : 4 * size], scene[..., 17 : 17 + 4 * size, 23 : 23 + 4 * size]
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    return lr, up, ref.contiguous()


#: (ngf, n_blocks) of their RestorationNet: as released (slow on a CPU), and narrower for a quick check.
RELEASED, NARROW = (64, 16), (16, 2)


@pytest.fixture(
    scope="module",
    params=[pytest.param(RELEASED, marks=pytest.mark.slow, id="released"), pytest.param(NARROW, id="narrow")],
)
def converted(request, tmp_path_factory):
    ngf, n_blocks = request.param
    tmp = tmp_path_factory.mktemp("c2")
    nets = _authors_networks(ngf, n_blocks)
    paths = _their_files(tmp, *nets)
    spec = {
        "model": "c2_matching",
        "params": {"channels": ngf},
        "components": {"restoration": {"name": "c2_dynamic_aggregation", "params": {"blocks": n_blocks}}},
    }
    if (ngf, n_blocks) == NARROW:  # aggregated in blocks of a few rows: the blocks must join exactly
        spec["components"]["restoration"]["params"]["column_budget"] = 2**15
    out = c2_matching.convert(paths["restoration"], tmp / "c2.safetensors", model=spec)
    return nets, paths, load_model(out).eval()


def test_the_converted_model_gives_their_outputs(converted) -> None:
    (net_g, extractor, vgg19), _, model = converted
    lr, up, ref = _pair()
    expected = authors_forward(net_g, extractor, vgg19, lr, up, ref)
    with torch.no_grad():
        got = model(lr, ref)
    assert got.shape == expected.shape == (1, 3, 160, 160)
    assert expected.std() > 0.1  # the network does something beyond the bilinear base
    diff = (got - expected).abs().max().item()
    print(f"max |ours - theirs| = {diff:.3g}")
    assert diff < 1e-4, f"max |ours − theirs| = {diff:.3g}"


def test_a_tensor_mapped_wrongly_breaks_the_equality(converted) -> None:
    """Swapping two same-shape tensors in the conversion changes the output far beyond the tolerance."""
    (net_g, extractor, vgg19), _, model = converted
    lr, up, ref = _pair()
    expected = authors_forward(net_g, extractor, vgg19, lr, up, ref)
    state = model.state_dict()
    swaps = (
        ("restoration.levels.0.body.0.body.0.weight", "restoration.levels.0.body.1.body.0.weight"),
        ("correspondence.query_extractor.levels.1.0.weight", "correspondence.ref_extractor.levels.1.0.weight"),
        ("restoration.levels.2.offset_mask.weight", "restoration.levels.1.offset_mask.weight"),
    )
    for a, b in swaps:
        if state[a].shape != state[b].shape:
            continue  # (the last pair differs in shape; listed to show the rule is shape-bound)
        wrong = build_model(model.spec).eval()
        wrong.load_state_dict({**state, a: state[b], b: state[a]})
        with torch.no_grad():
            diff = (wrong(lr, ref) - expected).abs().max().item()
        assert diff > 1e-3, f"swapping {a} and {b} left the output within {diff:.3g} (the tolerance is 1e-4)"


def test_their_parameter_count(converted) -> None:
    (net_g, extractor, vgg19), _, model = converted
    theirs = {
        "restoration": sum(p.numel() for p in net_g.parameters()),
        "correspondence": sum(p.numel() for p in extractor.parameters()),
        "extractor": sum(p.numel() for p in vgg19.parameters()),
    }
    ours = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in theirs}
    assert ours == theirs
    if model.spec["params"]["channels"] == RELEASED[0]:
        assert theirs == {"restoration": 8_865_547, "correspondence": 1_110_656, "extractor": 555_328}


def test_missing_files_and_foreign_tensors_are_named(converted, tmp_path) -> None:
    _, paths, model = converted
    spec = model.spec
    lone = tmp_path / "c2_matching_restoration.pth"
    lone.write_bytes(paths["restoration"].read_bytes())
    with pytest.raises(ConversionError, match="feature_extraction.pth"):
        c2_matching.convert(lone, tmp_path / "out.safetensors", model=spec)
    state = torch.load(paths["restoration"], weights_only=True)
    state["dyn_agg_restore.extra.weight"] = torch.zeros(1)
    torch.save(state, lone)
    with pytest.raises(ConversionError, match="dyn_agg_restore.extra.weight"):
        c2_matching.convert(
            lone, tmp_path / "out.safetensors", extractor=paths["extractor"], vgg19=paths["vgg19"], model=spec
        )


def test_the_command_line_converts_their_three_files(converted, tmp_path) -> None:
    import json

    from refsr_blocks.interop.command import main

    (net_g, _, _), paths, model = converted
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(model.spec))
    out = tmp_path / "cli.safetensors"
    args = [str(paths["restoration"]), "-o", str(out), "--model", str(spec), "--vgg19", str(paths["vgg19"])]
    assert main(["c2_matching", *args]) == 0  # --extractor: feature_extraction.pth beside SOURCE
    loaded = load_model(out)
    torch.testing.assert_close(
        loaded.restoration.levels[0].weight, net_g.dyn_agg_restore.small_dyn_agg.weight, atol=0, rtol=0
    )
    with pytest.raises(ConversionError, match="--extractor and --vgg19 apply to c2_matching"):
        main(["crossnet_authors", args[0], "-o", str(tmp_path / "x.safetensors"), "--extractor", args[0]])
