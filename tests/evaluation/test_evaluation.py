"""The evaluation harness and its command line: files, per-view rows, baselines, refusals."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml

from refsr_blocks import build_model, save_model
from refsr_blocks.data import LightFieldDataset, save_image, views_to_lenslet
from refsr_blocks.evaluation import bicubic, eval_main, evaluate, psnr, refsr_model, ssim
from refsr_blocks.evaluation.references import REFERENCE_METADATA_KEY


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=2, scales=3, channels=8, **{"flow.width": 0.125})
    return save_model(model, tmp_path / "tiny" / "model.safetensors")


@pytest.fixture
def light_fields(tmp_path):
    """Two 4×4-view light fields of 24×36 views, as lenslet PNGs."""
    root = tmp_path / "lf"
    g = torch.Generator().manual_seed(0)
    for k in range(2):
        base = torch.rand(3, 24, 44, generator=g)
        views = torch.stack([torch.stack([base[:, :, u + v : u + v + 36] for v in range(4)]) for u in range(4)])
        save_image(views_to_lenslet(views), root / f"scene{k}.png")
    entry = {"kind": "lightfield", "root": str(root), "angular": 4, "block": 4, "views": [1, 2, 3]}
    path = tmp_path / "lf.yaml"
    path.write_text(yaml.safe_dump(entry))
    return path, entry


def _rows(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def test_command_writes_markdown_csv_and_summary(checkpoint, light_fields, tmp_path) -> None:
    data, entry = light_fields
    out = tmp_path / "eval"
    argv = ["--checkpoint", f"net={checkpoint}", "--data", str(data), "--out", str(out), "--border", "scale"]
    assert eval_main([*argv, "--no-progress"]) == 0
    rows = _rows(out)
    # the default set: baselines, then the model with each no-information reference and the real
    # one; light fields carry no ground-truth flow, so no oracle row (not a row of NaNs)
    methods = ["bicubic", "net:upsampler", "net (ref=grey)", "net (ref=bicubic-lr)", "net"]
    assert [r["method"] for r in rows[: len(methods)]] == methods
    assert len(rows) == 2 * 3 * len(methods)  # light fields × views × methods
    assert {r["view"] for r in rows} == {"1", "2", "3"}
    markdown = (out / "results.md").read_text()
    assert "| (2, 2) |" in markdown and "| method | PSNR RGB (dB) |" in markdown
    assert "## Reference gain" in markdown and "ref=oracle" not in markdown.split("Not evaluated:")[0]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == set(methods) and set(summary["per_view"]) == {"1", "2", "3"}
    assert summary["settings"]["border"] == 2
    assert set(summary["reference_gain"]) == {"net"} and set(summary["skipped"]) == {"net (ref=oracle)"}
    gain = summary["reference_gain"]["net"]
    means = {m: summary["methods"][m]["psnr"] for m in methods}
    best = max(means["net (ref=grey)"], means["net (ref=bicubic-lr)"])
    assert gain["reference_gain"] == pytest.approx(means["net"] - best, abs=1e-9)
    assert gain["gain_over_bicubic"] == pytest.approx(means["net"] - means["bicubic"], abs=1e-9)
    assert gain["items"] == 6

    # the bicubic numbers are the metrics of bicubic upsampling, recomputed independently
    item = LightFieldDataset(entry["root"], scale=2, views=[1, 2, 3], angular=4, block=4)[0]
    up = torch.nn.functional.interpolate(item["lr"][None], scale_factor=2, mode="bicubic").clamp(0, 1)
    first = rows[0]
    assert (first["image"], first["view"]) == ("scene0", "1")
    assert float(first["psnr"]) == pytest.approx(psnr(up, item["hr"][None], border=2).item(), abs=1e-9)
    assert float(first["ssim_y"]) == pytest.approx(
        ssim(up, item["hr"][None], border=2, y_channel=True).item(), abs=1e-9
    )

    # existing results are not overwritten without --force
    assert eval_main([*argv, "--no-progress"]) == 2
    tiled = ["--window", "16", "--stride", "8"]  # 24×36 views go through sliding windows
    only_net = ["--baselines", "none", "--controls", "none", "--limit", "1"]
    assert eval_main([*argv, *tiled, "--no-progress", "--force", *only_net]) == 0
    assert [r["method"] for r in _rows(out)] == ["net"]
    assert json.loads((out / "summary.json").read_text())["reference_gain"] == {}
    assert eval_main([*argv, "--no-progress", "--force", "--baselines", "none", "--controls", "grey"]) == 0
    assert {r["method"] for r in _rows(out)} == {"net (ref=grey)", "net"}


def test_data_from_a_training_config_and_kind_path(checkpoint, tmp_path, make_config) -> None:
    config = make_config(
        {
            "data": {
                "test": {
                    "kind": "synthetic",
                    "images": {"builtin": "procedural", "count": 1, "size": [32, 48]},
                    "length": 2,
                }
            }
        }
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "eval"
    assert eval_main(["--checkpoint", str(checkpoint), "--data", str(path), "--out", str(out), "--no-progress"]) == 0
    # synthetic-parallax items carry ground-truth flow: the oracle row is there, on every item
    methods = ["bicubic", "tiny:upsampler", "tiny (ref=grey)", "tiny (ref=bicubic-lr)", "tiny", "tiny (ref=oracle)"]
    rows = _rows(out)
    assert [r["method"] for r in rows][: len(methods)] == methods and len(rows) == 2 * len(methods)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == {} and summary["methods"]["tiny (ref=oracle)"]["count"] == 2
    assert "`tiny (ref=oracle)`: tiny fed the reference backward-warped" in (out / "results.md").read_text()
    assert (
        eval_main(
            [
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(path),
                "--split",
                "val",
                "--out",
                str(tmp_path / "v"),
                "--no-progress",
            ]
        )
        == 0
    )
    # no such split, unknown baseline or control, bicubic without a scale: clear errors, exit status 2
    assert (
        eval_main(["--checkpoint", str(checkpoint), "--data", f"pairs:{tmp_path}/none", "--out", str(tmp_path / "x")])
        == 2
    )
    assert (
        eval_main(
            ["--checkpoint", str(checkpoint), "--data", str(path), "--out", str(tmp_path / "y"), "--baselines", "srcnn"]
        )
        == 2
    )
    assert (
        eval_main(
            ["--checkpoint", str(checkpoint), "--data", str(path), "--out", str(tmp_path / "y"), "--controls", "noise"]
        )
        == 2
    )
    assert eval_main(["--data", str(path), "--out", str(tmp_path / "z"), "--baselines", "bicubic"]) == 2


def test_blank_reference_models_get_a_blank_reference(tmp_path) -> None:
    seen = []

    class Spy(torch.nn.Module):
        upscale = 2

        def forward(self, lr, ref):
            seen.append(ref)
            return torch.nn.functional.interpolate(lr, scale_factor=2)

    dataset = [{"lr": torch.rand(3, 8, 8), "ref": torch.rand(3, 16, 16), "hr": torch.rand(3, 16, 16), "name": "a"}]
    result = evaluate([bicubic(2), refsr_model(Spy(), "spy", "blank")], dataset, progress=False)
    assert torch.equal(seen[0], torch.full_like(seen[0], 0.5))
    assert result.summary()["spy"]["count"] == 1
    assert "blank reference" in result.descriptions["spy"]
    assert REFERENCE_METADATA_KEY.startswith("refsr_blocks")


def test_harness_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        evaluate([bicubic(2), bicubic(2)], [], progress=False)


# -- every bad option or image is one error line, exit 2, nothing written ------------
@pytest.fixture
def pair_folder(tmp_path):
    """``pairs:`` data: two scenes of 40×32 random images, and a maker for other sizes."""
    from refsr_blocks.data import save_image

    def make(name: str, width: int = 40, height: int = 32):
        root = tmp_path / name
        g = torch.Generator().manual_seed(0)
        for scene in ("s1", "s2"):
            for f in ("target", "ref"):
                save_image(torch.rand(3, height, width, generator=g), root / scene / f"{f}.png")
        return f"pairs:{root}"

    return make


def _refused(argv, capsys, *contains) -> None:
    assert eval_main([*argv, "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert all(c in err for c in contains), err


@pytest.mark.parametrize(
    "extra, contains",
    [
        (["--limit", "0"], ["--limit", "N >= 1"]),
        (["--limit", "-1"], ["--limit", "N >= 1"]),
        (["--window", "7"], ["--window", "multiple of the upscale factor 2", "try 6 or 8"]),
        (["--stride", "0"], ["--stride", "positive"]),
        (["--border", "1000"], ["item 0 (s1)", "border 1000", "--border"]),
        (["--protocol", "crossnet-eccv2018"], ["item 0 (s1)", "320×512", "--protocol"]),
    ],
)
def test_options_that_evaluate_nothing_or_crash_are_one_error(
    checkpoint, pair_folder, tmp_path, capsys, extra, contains
):
    out = tmp_path / "eval"
    _refused(
        ["--checkpoint", str(checkpoint), "--data", pair_folder("pairs"), "--out", str(out), *extra], capsys, *contains
    )
    assert not (out / "results.md").exists()


def test_images_too_small_to_measure_and_damaged_files_are_named(checkpoint, pair_folder, tmp_path, capsys) -> None:
    ckpt = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "eval")]
    _refused([*ckpt, "--data", pair_folder("tiny", 3, 3)], capsys, "item 0 (s1)", "11×11", "larger images")
    data = pair_folder("damaged")
    target = tmp_path / "damaged" / "s2" / "target.png"
    target.write_bytes(target.read_bytes()[:60])
    _refused([*ckpt, "--data", data], capsys, str(target))
    target.write_bytes(b"junk")
    _refused([*ckpt, "--data", data], capsys, str(target))


def test_out_must_be_a_folder_and_a_file_there_is_never_replaced(checkpoint, pair_folder, tmp_path, capsys) -> None:
    mine = tmp_path / "notes.md"
    mine.write_text("mine")
    for force in ([], ["--force"]):
        argv = ["--checkpoint", str(checkpoint), "--data", pair_folder("pairs"), "--out", str(mine), *force]
        _refused(argv, capsys, "--out", str(mine), "is a file")
    assert mine.read_text() == "mine"


def test_shipped_names_are_accepted_as_checkpoints(pair_folder, tmp_path, capsys) -> None:
    from refsr_blocks.assets import list_pretrained, pretrained_path
    from refsr_blocks.evaluation.command import _checkpoint_argument

    for name in list_pretrained():
        assert _checkpoint_argument(name) == (name, pretrained_path(name))
    assert _checkpoint_argument("mine=a.safetensors") == (
        "mine",
        tmp_path.joinpath("a.safetensors").relative_to(tmp_path),
    )
