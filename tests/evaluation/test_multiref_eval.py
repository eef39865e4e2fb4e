"""CUFED5-layout and reference-folder datasets, named evaluation protocols, and an
evaluation of a CUFED5-layout folder under a named protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from refsr_blocks import build_model, save_model
from refsr_blocks.data import CUFED5Dataset, DataError, DataNotFoundError, ReferenceFolderDataset, save_image
from refsr_blocks.data.degradation import matlab_downsample
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.evaluation.command import eval_main
from refsr_blocks.evaluation.protocols import PROTOCOLS, Protocol, get_protocol, register_protocol

REF_SIZES = ((40, 56), (64, 48), (24, 80), (48, 64), (30, 30))


def _texture(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w), mode="bilinear")[0]


@pytest.fixture
def cufed(tmp_path: Path) -> Path:
    """Three CUFED5-layout scenes: ``NNN_0`` 48×64 (50×66 for 001: not a multiple of 4), five references."""
    root = tmp_path / "cufed5"
    root.mkdir()
    for scene in range(3):
        h, w = (50, 66) if scene == 1 else (48, 64)
        save_image(_texture(h, w, scene), root / f"{scene:03d}_0.png")
        for level, (rh, rw) in enumerate(REF_SIZES, start=1):
            save_image(_texture(rh, rw, 100 * scene + level), root / f"{scene:03d}_{level}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_cufed5_items(cufed: Path) -> None:
    data = CUFED5Dataset(cufed, scale=4)
    assert len(data) == 3
    item = data[1]
    assert item["name"] == "001" and tuple(item["hr"].shape) == (3, 48, 64) and tuple(item["lr"].shape) == (3, 12, 16)
    assert [tuple(r.shape[-2:]) for r in item["refs"]] == list(REF_SIZES)
    assert torch.equal(item["ref"], item["refs"][0])
    only = CUFED5Dataset(cufed, levels=[3, 1])
    assert [tuple(r.shape[-2:]) for r in only[0]["refs"]] == [REF_SIZES[2], REF_SIZES[0]]
    matlab = CUFED5Dataset(cufed, lr_kernel="matlab")[0]
    assert torch.equal(matlab["lr"], matlab_downsample(matlab["hr"][None], 4)[0])
    # Registered as a dataset kind, as training and evaluation configurations name it.
    built = build_dataset({"kind": "cufed5", "root": str(cufed), "levels": [1, 2]}, scale=4, default_seed=0)
    assert len(built[2]["refs"]) == 2


def test_cufed5_errors(cufed: Path, tmp_path: Path) -> None:
    (cufed / "002_4.png").unlink()
    with pytest.raises(DataError, match=r"'002'.*\[4\]"):
        CUFED5Dataset(cufed)
    assert len(CUFED5Dataset(cufed, levels=[1, 2])) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="NNN_0"):
        CUFED5Dataset(empty)


def test_reference_folder_with_hr_or_lr_scenes(tmp_path: Path) -> None:
    for scene, role in (("a", "hr"), ("b", "lr")):
        (tmp_path / scene).mkdir()
        save_image(_texture(32, 40, 1), tmp_path / scene / f"{role}.png")
        save_image(_texture(20, 24, 2), tmp_path / scene / "ref_2.png")
        save_image(_texture(44, 28, 3), tmp_path / scene / "ref_1.png")
    data = ReferenceFolderDataset(tmp_path, scale=4)
    a, b = data[0], data[1]
    assert tuple(a["lr"].shape) == (3, 8, 10) and "hr" in a
    assert "hr" not in b and tuple(b["lr"].shape) == (3, 32, 40)
    assert [tuple(r.shape[-2:]) for r in a["refs"]] == [(44, 28), (20, 24)]  # sorted by name
    (tmp_path / "c").mkdir()
    save_image(_texture(8, 8, 4), tmp_path / "c" / "hr.png")
    with pytest.raises(DataError, match="ref"):
        ReferenceFolderDataset(tmp_path)


def test_protocol_definitions() -> None:
    white, black = torch.ones(1, 3, 4, 4, dtype=torch.float64), torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    from refsr_blocks.evaluation.protocols import y_matlab

    assert y_matlab(white).flatten()[0].item() == pytest.approx(235 / 255)
    assert y_matlab(black).flatten()[0].item() == pytest.approx(16 / 255)
    # MATLAB Y compresses the range to 219/255: the same error scores 20·log10(255/219) dB higher.
    hr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sr = (hr + 0.01).clamp(0, 1)
    y = Protocol("y-test", 1, channel="y-matlab").measure(sr, hr)[0]
    from refsr_blocks.evaluation.metrics import psnr

    assert y.item() == pytest.approx(
        psnr(sr, hr, y_channel=True).item() + 20 * torch.log10(torch.tensor(255 / 219)).item(), abs=1e-6
    )
    # The crop protocol ignores the border; rounding to 8 bits changes the figure.
    spoilt = sr.clone()
    spoilt[..., :4, :] = 0
    assert get_protocol("y-matlab-crop4").measure(spoilt, hr)[0] > get_protocol("y-matlab").measure(spoilt, hr)[0]
    assert get_protocol("y-matlab").measure(sr, hr)[0] != Protocol("y-raw", 1, channel="y-matlab").measure(sr, hr)[0]
    # MATLAB-style downsampling keeps a constant image and equals PIL's kernel away from the border.
    assert torch.allclose(matlab_downsample(torch.full((1, 3, 32, 32), 0.3), 4), torch.full((1, 3, 8, 8), 0.3))
    pil = F.interpolate(hr, size=(8, 8), mode="bicubic", antialias=True, align_corners=False)
    assert torch.allclose(matlab_downsample(hr, 4)[..., 2:-2, 2:-2], pil.clamp(0, 1)[..., 2:-2, 2:-2], atol=1e-6)
    with pytest.raises(ValueError, match="already registered"):
        register_protocol(Protocol("rgb", 1, border=4))
    assert {"rgb", "y-matlab", "y-matlab-crop4", "y-matlab-all", "crossnet-eccv2018"} <= set(PROTOCOLS)


@pytest.mark.slow
def test_a_cufed5_folder_evaluates_under_a_named_protocol(cufed: Path, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ttsr = build_model(
        "ttsr",
        channels=8,
        residual=True,
        **{"extractor.channels": 4, "fusion.blocks": [1, 1, 1, 1]},
    )
    crossnet = build_model("crossnet_lite", scales=3, channels=8, **{"flow.width": 0.125})
    save_model(ttsr, tmp_path / "ttsr.safetensors")
    save_model(crossnet, tmp_path / "crossnet.safetensors")
    common = [
        "--data",
        f"cufed5:{cufed}",
        "--device",
        "cpu",
        "--no-progress",
        "--controls",
        "grey",
        "--baselines",
        "bicubic",
    ]
    models = [
        "--checkpoint",
        f"ttsr={tmp_path / 'ttsr.safetensors'}",
        "--checkpoint",
        f"crossnet={tmp_path / 'crossnet.safetensors'}",
    ]
    out = tmp_path / "crop4"
    assert eval_main([*models, *common, "--protocol", "y-matlab-crop4", "--out", str(out)]) == 0
    markdown = (out / "results.md").read_text()
    assert "**Protocol y-matlab-crop4 v1**" in markdown and "PSNR Y (MATLAB) (dB)" in markdown
    assert "| ttsr (ref=grey) |" in markdown and "| crossnet |" in markdown  # CrossNet: reference resized (its policy)
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("protocol,") and all(r.startswith("y-matlab-crop4 v1,") for r in rows[1:])
    # Per image: bicubic, and per model the real reference and the grey one.
    assert len(rows) == 1 + 3 * (1 + 2 * 2)
    # All five references: TTSR matches them jointly; CrossNet (one reference) is skipped, with the reason.
    out_all = tmp_path / "all"
    assert eval_main([*models, *common, "--protocol", "y-matlab-all", "--out", str(out_all)]) == 0
    markdown = (out_all / "results.md").read_text()
    assert "**Protocol y-matlab-all v1**" in markdown and "all references of each item" in markdown
    assert "| ttsr |" in markdown and "`crossnet`: it refused the inputs of protocol y-matlab-all v1" in markdown
    assert eval_main([*models, *common, "--protocol", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown evaluation protocol 'nope'" in capsys.readouterr().err
