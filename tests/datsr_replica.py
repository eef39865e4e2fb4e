"""A functional replica of the DATSR authors' test-time forward (caojiezhang/DATSR), written
from reading their code, in plain PyTorch on a state dict in their key layout.

Their pipeline at test time (``RefRestorationModel.test``):

1. ``ContrasExtractorSep``: two VGG16 layouts up to ``conv3_1`` (no final ReLU, ImageNet
   normalisation) on the bicubic ``LR↑`` and on the reference;
2. ``FlowSimCorrespondenceGenerationArch``: per-pixel L2-normalised features, every valid 3×3
   patch of ``LR↑``'s matched to the valid reference patch of highest correlation (reference
   patches divided by their norm + 1e-5, the best value by the input patch's norm + 1e-5);
   the index becomes a flow to the matched top-left (decoded with the input's width, padded
   by two at the bottom and right), the value a similarity (padded by one all round); both
   are repeated ×2, ×4 for relu2_1, relu1_1 (flows scaled), and the flow shifted by
   (i·f, j·f) for the nine taps; VGG19 ``relu1_1/2_1/3_1`` of the reference;
3. ``SwinUnetv3RestorationNet``: the U-Net of ``DCN_sep_pre_multi_offset_flow_similarity``
   (offsets ``10·tanh`` + the shifted flows, mask ``sigmoid(logit·similarity)``) and Swin
   bodies (``RSTB``s with window attention, relative position bias, shifted windows with
   −100 masks), plus the bilinear ×4 LR.

mmcv's ``modulated_deform_conv2d`` is replaced by torchvision's ``deform_conv2d`` (same offset
layout: (y, x) per tap, group-major; same bilinear sampling with zeros outside).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
VGG = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")
TORCHVISION_VGG19 = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10}
STAGES = (("down", "large"), ("down", "medium"), ("up", "small"), ("up", "medium"), ("up", "large"))


# -- the layouts of their three files ----------------------------------------------------
def restoration_layout(
    ngf: int = 128,
    n_blocks: int = 8,
    groups: int = 8,
    depths: tuple[int, ...] = (4, 4),
    heads: tuple[int, ...] = (4, 4),
    window: int = 8,
    vgg: int = 64,
    img_sizes: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of their ``SwinUnetv3RestorationNet(ngf, n_blocks, groups, ...)``.

    ``img_sizes``: the ``img_size`` each SwinBlock is built with (160, 80, 40), which sets
    the shapes of the stored ``attn_mask`` buffers of shifted blocks.
    """
    img_sizes = dict(img_sizes or {"large": 160, "medium": 80, "small": 40})
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, 3, 3), (cout,)

    def linear(name: str, cin: int, cout: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin), (cout,)

    def norm(name: str) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (ngf,), (ngf,)

    conv("content_extractor.conv_first", 3, ngf)
    for i in range(n_blocks):
        conv(f"content_extractor.body.{i}.conv1", ngf, ngf)
        conv(f"content_extractor.body.{i}.conv2", ngf, ngf)
    p = "dyn_agg_restore."
    conv(p + "unet_head", 3, ngf)
    tex = {"large": vgg, "medium": 2 * vgg, "small": 4 * vgg}
    for path, size in STAGES:
        c = tex[size]
        conv(f"{p}{path}_{size}_offset_conv1", ngf + 2 * c, c)
        conv(f"{p}{path}_{size}_offset_conv2", c, c)
        shapes[f"{p}{path}_{size}_dyn_agg.weight"], shapes[f"{p}{path}_{size}_dyn_agg.bias"] = (c, c, 3, 3), (c,)
        conv(f"{p}{path}_{size}_dyn_agg.conv_offset_mask", c, 27 * groups)
        conv(f"{p}{path}_head_{size}.0", ngf + c, ngf)
        body = f"{p}{path}_body_{size}"
        norm(body + ".patch_embed.norm")
        for i, (depth, h) in enumerate(zip(depths, heads)):
            for j in range(depth):
                b = f"{body}.layers.{i}.residual_group.blocks.{j}"
                norm(b + ".norm1")
                shapes[b + ".attn.relative_position_bias_table"] = ((2 * window - 1) ** 2, h)
                shapes[b + ".attn.relative_position_index"] = (window * window, window * window)
                linear(b + ".attn.qkv", ngf, 3 * ngf)
                linear(b + ".attn.proj", ngf, ngf)
                norm(b + ".norm2")
                linear(b + ".mlp.fc1", ngf, 2 * ngf)
                linear(b + ".mlp.fc2", 2 * ngf, ngf)
                if j % 2:
                    shapes[b + ".attn_mask"] = ((img_sizes[size] // window) ** 2, window * window, window * window)
            conv(f"{body}.layers.{i}.conv", ngf, ngf)
        norm(body + ".norm")
        if path == "down":
            conv(f"{p}down_tail_{size}", ngf, ngf)
        elif size != "large":
            conv(f"{p}up_tail_{size}.0", ngf, 4 * ngf)
        else:
            conv(f"{p}up_tail_large.0", ngf, ngf // 2)
            conv(f"{p}up_tail_large.2", ngf // 2, 3)
    return shapes


def vgg_layout(prefix: str, vgg: int = 64, torchvision: bool = False) -> dict[str, tuple[int, ...]]:
    """Their VGG head (conv1_1 … conv3_1) with names ``{prefix}{layer}`` or torchvision's ``features.N``."""
    channels = {"conv1_1": (3, vgg), "conv1_2": (vgg, vgg), "conv2_1": (vgg, 2 * vgg), "conv2_2": (2 * vgg, 2 * vgg)}
    channels["conv3_1"] = (2 * vgg, 4 * vgg)
    shapes = {}
    for layer, (cin, cout) in channels.items():
        name = f"features.{TORCHVISION_VGG19[layer]}" if torchvision else f"{prefix}{layer}"
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, 3, 3), (cout,)
    return shapes


def parameter_count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Elements of the learnable tensors (their buffers left out)."""
    skip = (".relative_position_index", ".attn_mask")
    return sum(math.prod(s) for k, s in shapes.items() if not k.endswith(skip))


def random_state(shapes: Mapping[str, tuple[int, ...]], seed: int, window: int = 8) -> dict[str, Tensor]:
    """A state dict of ``shapes`` with random values of sensible scale (their buffers computed)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        if name.endswith("relative_position_index"):
            state[name] = relative_position_index(window)
        elif name.endswith("attn_mask"):
            side = math.isqrt(shape[0]) * window
            state[name] = shift_mask(side, side, window)
        elif name.split(".")[-2] in ("norm", "norm1", "norm2"):
            base = 1.0 if name.endswith("weight") else 0.0
            state[name] = base + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("bias"):
            state[name] = 0.01 * torch.randn(shape, generator=g)
        elif "conv_offset_mask" in name:
            state[name] = 0.002 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            state[name] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return state


# -- their forward ----------------------------------------------------------------------
def _conv(x: Tensor, sd: Mapping[str, Tensor], name: str, stride: int = 1) -> Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=stride, padding=1)


def vgg_head(x: Tensor, sd: Mapping[str, Tensor], name: callable, relu_last: bool) -> dict[str, Tensor]:
    """relu1_1, relu2_1 and conv3_1 (or relu3_1) of a VGG head; ``name(layer)`` gives the tensor prefix."""
    x = (x - MEAN) / STD
    out = {}
    x = F.relu(_conv(x, sd, name("conv1_1")))
    out["relu1_1"] = x
    x = F.max_pool2d(F.relu(_conv(x, sd, name("conv1_2"))), 2, 2)
    x = F.relu(_conv(x, sd, name("conv2_1")))
    out["relu2_1"] = x
    x = F.max_pool2d(F.relu(_conv(x, sd, name("conv2_2"))), 2, 2)
    x = _conv(x, sd, name("conv3_1"))
    out["relu3_1"] = F.relu(x) if relu_last else x
    return out


def match(feat_in: Tensor, feat_ref: Tensor) -> tuple[Tensor, Tensor]:
    """Their ``feature_match_index`` on one item (C×h×w, same size): index and value, (h−2)×(w−2)."""
    c, h, w = feat_in.shape
    patches = feat_ref.unfold(1, 3, 1).unfold(2, 3, 1).reshape(c, -1, 3, 3).permute(0, 2, 3, 1)
    patches = patches / (patches.norm(p=2, dim=(0, 1, 2)) + 1e-5)
    corr = F.conv2d(feat_in[None], patches.permute(3, 0, 1, 2))[0]
    value, index = corr.max(dim=0)
    norm = feat_in.unfold(1, 3, 1).unfold(2, 3, 1).reshape(c, -1, 3, 3).permute(0, 2, 3, 1)
    value = value / (norm.norm(p=2, dim=(0, 1, 2)) + 1e-5).view(h - 2, w - 2)
    return index, value


def correspondence(feat_in: Tensor, feat_ref: Tensor) -> tuple[dict, dict, dict]:
    """Their pre-offsets (B×9×h×w×2 per level), flows (B×h×w×2) and similarities (B×1×h×w)."""
    offsets, flows, sims = {}, {}, {}
    per_item = []
    for i in range(feat_in.shape[0]):
        a = F.normalize(feat_in[i].flatten(1), dim=0).view_as(feat_in[i])
        b = F.normalize(feat_ref[i].flatten(1), dim=0).view_as(feat_ref[i])
        index, value = match(a, b)
        h, w = index.shape  # their decoding uses the input's patch grid width
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        flow = torch.stack((index % w - xs, index // w - ys), dim=2).float()[None]
        flow = F.pad(flow, (0, 0, 0, 2, 0, 2))
        per_item.append((flow, F.pad(value, (1, 1, 1, 1))[None]))
    for level, f in (("relu3_1", 1), ("relu2_1", 2), ("relu1_1", 4)):
        lv_flows, lv_offsets, lv_sims = [], [], []
        for flow, sim in per_item:
            flow = flow.repeat_interleave(f, 1).repeat_interleave(f, 2) * f
            sim = sim.repeat_interleave(f, 1).repeat_interleave(f, 2)
            shifted = []
            for i in range(3):
                for j in range(3):
                    s = torch.zeros_like(flow)
                    s[:, i * f :, j * f :] = flow[:, : flow.shape[1] - i * f, : flow.shape[2] - j * f]
                    shifted.append(s)
            lv_flows.append(flow)
            lv_offsets.append(torch.cat(shifted))
            lv_sims.append(sim)
        flows[level] = torch.cat(lv_flows)
        offsets[level] = torch.stack(lv_offsets)
        sims[level] = torch.stack(lv_sims)
    return offsets, flows, sims


def flow_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Their ``flow_warp``: bilinear, zeros outside, align_corners=True (flow B×h×w×2)."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    gx = 2.0 * (xs + flow[..., 0]) / max(w - 1, 1) - 1.0
    gy = 2.0 * (ys + flow[..., 1]) / max(h - 1, 1) - 1.0
    return F.grid_sample(x, torch.stack((gx, gy), 3), mode="bilinear", padding_mode="zeros", align_corners=True)


def dyn_agg(
    x: Tensor, steer: Tensor, pre: Tensor, sim: Tensor, sd: Mapping[str, Tensor], name: str, groups: int
) -> Tensor:
    """Their ``DCN_sep_pre_multi_offset_flow_similarity`` (max_residue_magnitude 10, use_sim)."""
    from torchvision.ops import deform_conv2d

    out = _conv(steer, sd, f"{name}.conv_offset_mask")
    o1, o2, mask = torch.chunk(out, 3, dim=1)
    offset = 10 * torch.tanh(torch.cat((o1, o2), dim=1))
    pre = pre.repeat(1, groups, 1, 1, 1)
    reorder = torch.zeros_like(offset)
    reorder[:, 0::2] = pre[..., 1]
    reorder[:, 1::2] = pre[..., 0]
    mask = torch.sigmoid(mask * sim)
    return deform_conv2d(x, offset + reorder, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1, mask=mask)


def relative_position_index(window: int) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack((ys.flatten(), xs.flatten()))
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shift_mask(h: int, w: int, window: int) -> Tensor:
    shift = window // 2
    label = torch.zeros(h, w)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    n = 0
    for a in cuts:
        for b in cuts:
            label[a, b] = n
            n += 1
    wins = label.view(h // window, window, w // window, window).permute(0, 2, 1, 3).reshape(-1, window * window)
    diff = wins[:, None, :] - wins[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


def _layer_norm(x: Tensor, sd: Mapping[str, Tensor], name: str) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"])


def swin_block(x: Tensor, sd: Mapping[str, Tensor], name: str, heads: int, window: int, shifted: bool) -> Tensor:
    """One ``SwinTransformerBlock`` on B×H×W×C (mlp_ratio 2, GELU)."""
    b, h, w, c = x.shape
    y = _layer_norm(x, sd, f"{name}.norm1")
    shift = window // 2 if shifted else 0
    if shift:
        y = torch.roll(y, (-shift, -shift), (1, 2))
    wins = y.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, window**2, c)
    qkv = F.linear(wins, sd[f"{name}.attn.qkv.weight"], sd[f"{name}.attn.qkv.bias"])
    q, k, v = qkv.view(wins.shape[0], window**2, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
    table = sd[f"{name}.attn.relative_position_bias_table"]
    bias = table[relative_position_index(window).flatten()].view(window**2, window**2, heads).permute(2, 0, 1)
    attn = attn + bias[None]
    if shift:
        mask = shift_mask(h, w, window)
        n = mask.shape[0]
        attn = (attn.view(-1, n, heads, window**2, window**2) + mask[None, :, None]).view(
            -1, heads, window**2, window**2
        )
    out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(-1, window**2, c)
    out = F.linear(out, sd[f"{name}.attn.proj.weight"], sd[f"{name}.attn.proj.bias"])
    out = out.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    if shift:
        out = torch.roll(out, (shift, shift), (1, 2))
    x = x + out
    y = _layer_norm(x, sd, f"{name}.norm2")
    y = F.linear(
        F.gelu(F.linear(y, sd[f"{name}.mlp.fc1.weight"], sd[f"{name}.mlp.fc1.bias"])),
        sd[f"{name}.mlp.fc2.weight"],
        sd[f"{name}.mlp.fc2.bias"],
    )
    return x + y


def swin_body(x: Tensor, sd: Mapping[str, Tensor], name: str, depths, heads, window: int) -> Tensor:
    """Their ``SwinBlock`` on B×C×H×W."""
    y = _layer_norm(x.permute(0, 2, 3, 1), sd, f"{name}.patch_embed.norm")
    for i, (depth, h) in enumerate(zip(depths, heads)):
        z = y
        for j in range(depth):
            z = swin_block(z, sd, f"{name}.layers.{i}.residual_group.blocks.{j}", h, window, j % 2 == 1)
        y = y + _conv(z.permute(0, 3, 1, 2), sd, f"{name}.layers.{i}.conv").permute(0, 2, 3, 1)
    return _layer_norm(y, sd, f"{name}.norm").permute(0, 3, 1, 2)


def restoration(lr: Tensor, pre: tuple, refs: Mapping[str, Tensor], sd, groups, depths, heads, window) -> Tensor:
    """Their ``SwinUnetv3RestorationNet.forward`` (``content_extractor``'s output is not used there)."""
    offsets, flows, sims = pre
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    p = "dyn_agg_restore."
    level = {"large": "relu1_1", "medium": "relu2_1", "small": "relu3_1"}
    warped = {k: flow_warp(refs[k], flows[k]) for k in level.values()}
    base = F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False)
    x0 = _conv(base, sd, p + "unet_head")

    def attend(x: Tensor, path: str, size: str) -> Tensor:
        k = level[size]
        steer = lrelu(_conv(torch.cat([x, warped[k], refs[k]], 1), sd, f"{p}{path}_{size}_offset_conv1"))
        steer = lrelu(_conv(steer, sd, f"{p}{path}_{size}_offset_conv2"))
        return lrelu(dyn_agg(refs[k], steer, offsets[k], sims[k], sd, f"{p}{path}_{size}_dyn_agg", groups))

    def body(h: Tensor, path: str, size: str) -> Tensor:
        h = lrelu(_conv(h, sd, f"{p}{path}_head_{size}.0"))
        return swin_body(h, sd, f"{p}{path}_body_{size}", depths, heads, window)

    h = body(torch.cat([x0, attend(x0, "down", "large")], 1), "down", "large") + x0
    x1 = _conv(h, sd, p + "down_tail_large", stride=2)
    h = body(torch.cat([x1, attend(x1, "down", "medium")], 1), "down", "medium") + x1
    x2 = _conv(h, sd, p + "down_tail_medium", stride=2)
    h = body(torch.cat([x2, attend(x2, "up", "small")], 1), "up", "small") + x2
    x = lrelu(F.pixel_shuffle(_conv(h, sd, p + "up_tail_small.0"), 2))
    h = body(torch.cat([x + x1, attend(x, "up", "medium")], 1), "up", "medium") + x
    x = lrelu(F.pixel_shuffle(_conv(h, sd, p + "up_tail_medium.0"), 2))
    h = body(torch.cat([x + x0, attend(x, "up", "large")], 1), "up", "large") + x
    x = _conv(lrelu(_conv(h, sd, p + "up_tail_large.0")), sd, p + "up_tail_large.2")
    return x + base


def forward(lr: Tensor, lr_up: Tensor, ref: Tensor, states: Mapping[str, Mapping[str, Tensor]], **widths) -> Tensor:
    """Their test-time output for ``lr`` (B×3×h×w), their ``img_in_up`` and a reference of ``lr_up``'s size.

    ``states``: ``restoration`` (their net_g), ``extractor`` (ContrasExtractorSep) and ``vgg19``
    (torchvision layout); ``widths``: ``groups``, ``depths``, ``heads``, ``window``.
    """
    ext = states["extractor"]
    feat_in = vgg_head(lr_up, ext, lambda n: f"feature_extraction_image1.model.{n}", relu_last=False)["relu3_1"]
    feat_ref = vgg_head(ref, ext, lambda n: f"feature_extraction_image2.model.{n}", relu_last=False)["relu3_1"]
    pre = correspondence(feat_in, feat_ref)
    textures = vgg_head(ref, states["vgg19"], lambda n: f"features.{TORCHVISION_VGG19[n]}", relu_last=True)
    return restoration(lr, pre, textures, states["restoration"], **widths)
