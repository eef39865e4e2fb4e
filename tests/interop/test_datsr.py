"""The DATSR converter against a functional replica of the authors' forward (tests/datsr_replica.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datsr_replica import forward, random_state, restoration_layout, vgg_layout

from refsr_blocks import build_model
from refsr_blocks.components.models import datsr as _datsr  # noqa: F401 - registers the datsr presets
from refsr_blocks.core.checkpoint import load_model
from refsr_blocks.core.spec import get_preset
from refsr_blocks.interop import datsr
from refsr_blocks.interop._common import ConversionError

#: A narrow variant of their network (same code paths): widths as their constructor arguments.
NARROW = {"ngf": 16, "n_blocks": 1, "groups": 2, "depths": (1, 1), "heads": (2, 2), "window": 8, "vgg": 8}
NARROW_SPEC = get_preset("datsr_small")
NARROW_SPEC["components"]["restoration"]["params"]["content_blocks"] = 1


def _states(widths: dict, lr_side: int, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    sizes = {"large": 4 * lr_side, "medium": 2 * lr_side, "small": lr_side}
    layout = restoration_layout(**widths, img_sizes=sizes)
    extractor = {
        **vgg_layout("feature_extraction_image1.model.", widths["vgg"]),
        **vgg_layout("feature_extraction_image2.model.", widths["vgg"]),
    }
    states = {
        "restoration": random_state(layout, seed, widths["window"]),
        "extractor": random_state(extractor, seed + 1),
        "vgg19": random_state(vgg_layout("", widths["vgg"], torchvision=True), seed + 2),
    }
    for i in (1, 2):  # their ImageNet statistics buffers
        states["extractor"][f"feature_extraction_image{i}.mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        states["extractor"][f"feature_extraction_image{i}.std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return states


def _pair(lr_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured HR image, its LR (area ÷4) and a reference: the HR shifted, brighter."""
    g = torch.Generator().manual_seed(7)
    side = 4 * lr_side
    hr = F.interpolate(torch.rand(1, 3, side // 8, side // 8, generator=g), size=(side, side), mode="bicubic")
    hr = (0.7 * hr + 0.3 * torch.rand(1, 3, side, side, generator=g)).clamp(0, 1)
    lr = F.avg_pool2d(hr, 4)
    ref = (torch.roll(hr, (6, -10), (2, 3)) * 1.1).clamp(0, 1)
    return lr, ref


def _compare(tmp_path, widths: dict, spec, lr_side: int, swap: tuple[str, str] | None = None) -> float:
    states = _states(widths, lr_side)
    for part, files in (
        ("restoration", "r.pth"),
        ("extractor", "feature_extraction.pth"),
        ("vgg19", "vgg19-dcbb9e9d.pth"),
    ):
        state = dict(states[part])
        if swap and part == "restoration":
            state[swap[0]], state[swap[1]] = state[swap[1]], state[swap[0]]
        torch.save(state, tmp_path / files)
    out = datsr.convert(tmp_path / "r.pth", tmp_path / "datsr.safetensors", model=spec)
    model = load_model(out).eval()
    lr, ref = _pair(lr_side)
    with torch.no_grad():
        ours = model(lr, ref)
        up = model.upsampler(lr)  # their img_in_up is an input (PIL bicubic in their loader): the same here
        theirs = forward(
            lr,
            up,
            ref,
            states,
            groups=widths["groups"],
            depths=widths["depths"],
            heads=widths["heads"],
            window=widths["window"],
        )
    return (ours - theirs).abs().max().item()


def test_converted_narrow_network_matches_the_replica(tmp_path) -> None:
    assert _compare(tmp_path, NARROW, NARROW_SPEC, lr_side=16) < 1e-4


def test_a_wrongly_mapped_tensor_changes_the_output(tmp_path) -> None:
    swapped = (
        "dyn_agg_restore.down_large_dyn_agg.weight",
        "dyn_agg_restore.up_large_dyn_agg.weight",
    )
    assert _compare(tmp_path, NARROW, NARROW_SPEC, lr_side=16, swap=swapped) > 1e-2


@pytest.mark.slow  # the released widths at LR 40×40, reference 160×160: about a minute on 2 cores
def test_converted_released_network_matches_the_replica(tmp_path) -> None:
    widths = {"ngf": 128, "n_blocks": 8, "groups": 8, "depths": (4, 4), "heads": (4, 4), "window": 8, "vgg": 64}
    assert _compare(tmp_path, widths, "datsr", lr_side=40) < 1e-4


def test_unknown_and_missing_tensors_are_refused(tmp_path) -> None:
    states = _states(NARROW, 16)
    with pytest.raises(ConversionError, match="unexpected tensor 'dyn_agg_restore.extra.weight'"):
        datsr.convert_state_dict(
            {**states["restoration"], "dyn_agg_restore.extra.weight": torch.zeros(1)},
            states["extractor"],
            states["vgg19"],
        )
    vgg = dict(states["vgg19"])
    del vgg["features.7.weight"]
    with pytest.raises(ConversionError, match="features.7.weight"):
        datsr.convert_state_dict(states["restoration"], states["extractor"], vgg)
    torch.save(states["restoration"], tmp_path / "r.pth")
    with pytest.raises(ConversionError, match="--extractor"):
        datsr.convert(tmp_path / "r.pth", tmp_path / "o.safetensors", model=NARROW_SPEC)
    assert build_model(NARROW_SPEC) is not None


def test_the_command_line_converts_with_its_companion_files(tmp_path) -> None:
    import json

    from refsr_blocks.interop.command import main

    states = _states(NARROW, 16)
    for part, state in states.items():
        torch.save(state, tmp_path / f"{part}.pth")
    spec = tmp_path / "narrow.json"
    spec.write_text(json.dumps(NARROW_SPEC))
    out = tmp_path / "datsr.safetensors"
    args = ["datsr", str(tmp_path / "restoration.pth"), "-o", str(out), "--model", str(spec)]
    args += ["--extractor", str(tmp_path / "extractor.pth"), "--vgg19", str(tmp_path / "vgg19.pth")]
    assert main(args) == 0
    model = load_model(out)
    weight = states["restoration"]["dyn_agg_restore.up_small_dyn_agg.weight"]
    assert torch.equal(model.restoration.up[2].attention.weight, weight)


def test_the_datsr_protocol_measures_as_their_test_code() -> None:
    """``datsr-eccv2022``: their PSNR_Y (``bgr2ycbcr`` of the 8-bit images, ``crop_border`` = 4)."""
    from refsr_blocks.evaluation.protocols import get_protocol

    g = torch.Generator().manual_seed(5)
    hr = torch.round(torch.rand(1, 3, 40, 48, generator=g) * 255) / 255  # a dataset image is 8-bit
    sr = (hr + 0.05 * torch.randn(1, 3, 40, 48, generator=g)).clamp(0, 1)

    def their_y(img: torch.Tensor) -> torch.Tensor:  # tensor2img, then bgr2ycbcr(x / 255.) * 255
        rgb = torch.round(img[0].double().clamp(0, 1) * 255)
        return (rgb[0] * 65.481 + rgb[1] * 128.553 + rgb[2] * 24.966) / 255 + 16

    diff = (their_y(sr) - their_y(hr))[4:-4, 4:-4]
    theirs = 20 * torch.log10(255 / diff.square().mean().sqrt())
    psnr, _ = get_protocol("datsr-eccv2022").measure(sr, hr)
    assert abs(psnr.item() - theirs.item()) < 1e-6
