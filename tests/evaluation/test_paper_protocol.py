"""The CrossNet paper's evaluation protocol (``crossnet-eccv2018``): what the model is fed and
what is measured, checked against the definition in the authors' code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from refsr_blocks.evaluation.baselines import Method
from refsr_blocks.evaluation.harness import evaluate
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.evaluation.protocols import Protocol, get_protocol

SCALE = 4
HR = (336, 528)  # a light-field view larger than the protocol's 320×512 window


def _view(seed: int, size: tuple[int, int] = HR) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size[0] // 8, size[1] // 8, generator=g)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).clamp(0, 1)[0]


def _items() -> list[dict]:
    """Two light fields × views (1, 1) and (7, 7): the LR made from the whole view, as the authors did."""
    items = []
    for image in range(2):
        for view in (1, 7):
            hr = _view(10 * image + view)
            lr = F.interpolate(hr[None], scale_factor=1 / SCALE, mode="bicubic", antialias=True)[0].clamp(0, 1)
            items.append({"lr": lr, "hr": hr, "ref": _view(100 + image), "view": view, "name": f"lf{image}"})
    return items


class Recorder:
    """A method that keeps what it was fed and returns a bicubic upsampling slightly off the 8-bit grid."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, lr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        self.seen.append((lr.clone(), ref.clone()))
        return F.interpolate(lr, scale_factor=SCALE, mode="bicubic", align_corners=False) + 0.3 / 255


def test_the_model_sees_the_top_left_window_of_the_whole_view_lr_and_the_reference() -> None:
    items, recorder = _items(), Recorder()
    result = evaluate([Method("rec", recorder)], items, protocol="crossnet-eccv2018", window=1024, progress=False)
    assert result.settings["protocol"] == "crossnet-eccv2018 v1"
    assert len(recorder.seen) == len(items)
    for item, (lr, ref), row in zip(items, recorder.seen, result.rows, strict=True):
        # LR: the top-left 80×128 of the LR made from the whole view (not the LR of a 320×512 crop).
        torch.testing.assert_close(lr[0], item["lr"][:, :80, :128], rtol=0, atol=0)
        assert not torch.allclose(lr[0], F.interpolate(item["hr"][None, :, :320, :512], scale_factor=0.25)[0])
        torch.testing.assert_close(ref[0], item["ref"][:, :320, :512], rtol=0, atol=0)
        # RGB PSNR of the output clamped and rounded to 8 bits, on the window, no border crop.
        sr = (F.interpolate(lr, scale_factor=SCALE, mode="bicubic", align_corners=False) + 0.3 / 255).clamp(0, 1)
        expected = psnr(torch.round(sr.double() * 255) / 255, item["hr"][None, :, :320, :512].double())
        assert row.psnr == pytest.approx(expected.item(), abs=1e-6)
        assert row.psnr != pytest.approx(psnr(sr, item["hr"][None, :, :320, :512]).item(), abs=1e-4)
        assert row.view == item["view"]
    # Per (i, i): the mean over the light fields at that position.
    assert result.views() == [1, 7]
    for view in (1, 7):
        per_image = [r.psnr for r in result.rows if r.view == view]
        assert result.mean("rec", "psnr", view) == pytest.approx(sum(per_image) / len(per_image))


def test_the_definition_is_stated_and_small_images_are_refused() -> None:
    protocol = get_protocol("crossnet-eccv2018")
    text = protocol.describe()
    assert "top-left 320×512" in text and "RGB" in text and "no border crop" in text and "rounded to 8 bits" in text
    small = {"hr": torch.zeros(1, 3, 200, 600), "lr": torch.zeros(1, 3, 50, 150)}
    with pytest.raises(ValueError, match=r"top-left 320×512 .* 200×600: use a protocol without a crop"):
        protocol.crop_inputs(small, SCALE)
    with pytest.raises(ValueError, match="not a multiple of the scale 3"):
        protocol.crop_inputs({"hr": torch.zeros(1, 3, 330, 513), "lr": torch.zeros(1, 3, 110, 171)}, 3)
    with pytest.raises(ValueError, match="crop must be a positive"):
        Protocol("bad", 1, crop=(0, 512))
    # Tensors of other sizes (a reference of another size, indices) pass through untouched.
    other = torch.zeros(1, 3, 100, 100)
    out = protocol.crop_inputs({"hr": torch.zeros(1, 3, 336, 528), "lr": torch.zeros(1, 3, 84, 132), "ref": other}, 4)
    assert out["ref"] is other and out["hr"].shape[-2:] == (320, 512) and out["lr"].shape[-2:] == (80, 128)


@pytest.mark.slow  # about 4 s: a light field of 8×8 views of 336×528, written and read as a lenslet PNG
def test_the_evaluation_command_reports_the_paper_protocol_per_view(tmp_path) -> None:
    """``refsr-blocks eval --protocol crossnet-eccv2018`` on a light field: tables per (i, i), the
    bicubic row equal to bicubic of the top-left LR window against the ground-truth window."""
    import json

    from refsr_blocks import build_model, save_model
    from refsr_blocks.data import LightFieldDataset, save_image, views_to_lenslet
    from refsr_blocks.evaluation.command import eval_main

    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(64, 3, HR[0] // 8, HR[1] // 8, generator=g)
    views = F.interpolate(coarse, size=HR, mode="bilinear", align_corners=False).view(8, 8, 3, *HR)
    root = tmp_path / "flowers"
    save_image(views_to_lenslet(views), root / "lf0.png")
    entry = tmp_path / "test.yaml"
    entry.write_text(
        f"kind: lightfield\nroot: {root}\nangular: 8\nblock: 8\nblock_offset: 0\nviews: [1, 7]\nsampling: all\n"
    )
    torch.manual_seed(0)
    save_model(build_model("crossnet_lite", scales=3, channels=8, **{"flow.width": 0.125}), tmp_path / "m.safetensors")
    out = tmp_path / "eval"
    argv = ["--checkpoint", f"tiny={tmp_path / 'm.safetensors'}", "--data", str(entry), "--out", str(out)]
    argv += ["--protocol", "crossnet-eccv2018", "--controls", "grey", "--baselines", "bicubic", "--no-progress"]
    assert eval_main([*argv, "--device", "cpu"]) == 0
    markdown = (out / "results.md").read_text()
    assert "**Protocol crossnet-eccv2018 v1**" in markdown and "top-left 320×512" in markdown
    assert "per LR view position (i, i)" in markdown
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["per_view"]) == ["1", "7"]
    dataset = LightFieldDataset(root, scale=SCALE, angular=8, block=8, block_offset=0, views=[1, 7], sampling="all")
    for view in (1, 7):
        item = dataset[[1, 7].index(view)]
        lr, hr = item["lr"][None, :, :80, :128], item["hr"][None, :, :320, :512]
        sr = F.interpolate(lr, scale_factor=SCALE, mode="bicubic", align_corners=False).clamp(0, 1)
        expected = psnr(torch.round(sr.double() * 255) / 255, hr.double()).item()
        assert summary["per_view"][str(view)]["bicubic"]["psnr"] == pytest.approx(expected, abs=1e-3)
