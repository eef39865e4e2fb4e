"""The reference controls of the evaluation and the reference gain.

Each test would fail if a control were not what its name says: the no-information references
must carry nothing of the real reference, the oracle must be the reference *warped* by the true
flow, and the reference gain must be the stated arithmetic over all the images.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from refsr_blocks import build_model
from refsr_blocks.data import SyntheticParallaxDataset, builtin_images
from refsr_blocks.evaluation import (
    CONTROLS,
    REFERENCES,
    EvalResult,
    Method,
    Row,
    bicubic,
    bicubic_lr_reference,
    evaluate,
    grey_reference,
    markdown_report,
    oracle_reference,
    reference_controls,
    refsr_model,
    write_report,
)


class Spy(torch.nn.Module):
    """A RefSR "model" that records each reference it is fed and returns the nearest upsample of lr."""

    upscale = 2

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, lr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        self.seen.append(ref.clone())
        return F.interpolate(lr, scale_factor=2)


def _item(ref: torch.Tensor, name: str) -> dict:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(3, 16, 16, generator=g)
    return {"lr": F.avg_pool2d(hr[None], 2)[0], "ref": ref, "hr": hr, "name": name}


def test_no_information_references_carry_nothing_of_the_real_reference() -> None:
    # two items identical but for the reference: a random image, and one full of NaNs (any
    # arithmetic on its values would show)
    refs = [torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.full((3, 16, 16), math.nan)]
    dataset = [_item(r, f"item{k}") for k, r in enumerate(refs)]
    spy = Spy()
    methods = [*reference_controls(spy, "spy", ("grey", "bicubic-lr")), refsr_model(spy, "spy")]
    assert [m.name for m in methods] == ["spy (ref=grey)", "spy (ref=bicubic-lr)", "spy"]
    evaluate(methods, dataset, progress=False)
    grey, bicubic_lr, real = spy.seen[0:3]
    grey2, bicubic_lr2, real2 = spy.seen[3:6]
    # the real row did see the two different references (the test can tell them apart) ...
    assert torch.equal(real[0], refs[0]) and real2.isnan().all()
    # ... the controls saw the same finite images for both, built from the LR alone
    assert torch.equal(grey, grey2) and torch.equal(grey, torch.full((1, 3, 16, 16), 0.5))
    assert torch.equal(bicubic_lr, bicubic_lr2) and bicubic_lr.isfinite().all()
    expected = bicubic(2)(dataset[0]["lr"][None], refs[0][None])
    assert torch.equal(bicubic_lr, expected)
    # the builders themselves, on a batch
    batch = {"lr": torch.rand(2, 3, 4, 5), "ref": torch.full((2, 3, 12, 15), math.nan)}
    assert torch.equal(grey_reference(batch), torch.full((2, 3, 12, 15), 0.5))
    assert bicubic_lr_reference(batch).shape == (2, 3, 12, 15) and bicubic_lr_reference(batch).isfinite().all()


def _shifted_item(sx: int, sy: int, size: int = 16) -> dict:
    """hr[y, x] = ref[y + sy, x + sx] exactly: ground-truth flow (sx, sy), valid where inside."""
    base = torch.rand(3, size + sy, size + sx, generator=torch.Generator().manual_seed(3))
    ref, hr = base[:, :size, :size], base[:, sy : sy + size, sx : sx + size]
    flow = torch.stack((torch.full((size, size), float(sx)), torch.full((size, size), float(sy))))
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    valid = ((xs + sx < size) & (ys + sy < size)).float()[None]
    return {"lr": F.avg_pool2d(hr[None], 2)[0], "ref": ref, "hr": hr, "flow": flow, "valid": valid, "name": "shift"}


def test_oracle_reference_is_the_reference_warped_by_the_true_flow() -> None:
    item = _shifted_item(sx=3, sy=1)  # different x and y shifts: a swapped flow channel fails
    spy = Spy()
    evaluate([refsr_model(spy, "spy"), *reference_controls(spy, "spy", ("oracle",))], [item], progress=False)
    real, oracle = spy.seen[0][0], spy.seen[1][0]
    valid = item["valid"].bool().expand(3, -1, -1)
    assert valid.float().mean() > 0.5
    assert torch.equal(oracle[valid], item["hr"][valid])  # integer shift: exact where valid
    assert not torch.allclose(real[valid], item["hr"][valid])  # the unwarped reference is not
    batched = {k: v[None] for k, v in item.items() if isinstance(v, torch.Tensor)}
    assert torch.equal(oracle_reference(batched)[0], oracle)


def test_oracle_on_synthetic_parallax_items_matches_the_hr() -> None:
    images = builtin_images("procedural", count=2, size=(48, 64), seed=5)
    dataset = SyntheticParallaxDataset(images, scale=2, crop=32, seed=0, crop_mode="center", photometric=None)
    identity = Method("ref", lambda lr, ref: ref, "the reference itself as the output")
    oracle = Method("ref (ref=oracle)", lambda lr, ref: ref, "", reference=REFERENCES["oracle"])
    result = evaluate([identity, oracle], dataset, progress=False)
    for index in range(len(dataset)):
        item = dataset[index]
        batched = {k: v[None] for k, v in item.items() if isinstance(v, torch.Tensor)}
        valid = item["valid"].bool().expand(3, -1, -1)
        warped = oracle_reference(batched)[0]
        assert (warped - item["hr"])[valid].abs().mean() < 0.25 * (item["ref"] - item["hr"])[valid].abs().mean()
    assert result.mean("ref (ref=oracle)") > result.mean("ref") + 3.0


def test_oracle_row_is_skipped_not_nan_when_items_have_no_flow() -> None:
    dataset = [_item(torch.rand(3, 16, 16), "a"), _item(torch.rand(3, 16, 16), "b")]
    spy = Spy()
    result = evaluate([refsr_model(spy, "spy"), *reference_controls(spy, "spy")], dataset, progress=False)
    assert result.methods == ["spy", "spy (ref=grey)", "spy (ref=bicubic-lr)"]
    assert "spy (ref=oracle)" in result.skipped and "flow" in result.skipped["spy (ref=oracle)"]
    assert all(r.method != "spy (ref=oracle)" for r in result.rows)
    report = markdown_report(result)
    assert "| spy (ref=oracle) |" not in report and "nan" not in report.lower()
    # a mix of items with and without flow: the oracle row covers those with flow, and says so
    methods = [refsr_model(spy, "m"), *reference_controls(spy, "m", ("oracle",))]
    mixed = evaluate(methods, [dataset[0], _shifted_item(2, 0)], progress=False)
    assert mixed.skipped == {} and mixed.summary()["m (ref=oracle)"]["count"] == 1
    assert mixed.summary()["m"]["count"] == 2 and "| 1 |" in markdown_report(mixed)


def test_controls_need_their_model_row_and_known_kinds() -> None:
    with pytest.raises(ValueError, match="control_of"):
        evaluate(reference_controls(Spy(), "m", ("grey",)), [_item(torch.rand(3, 16, 16), "a")], progress=False)
    with pytest.raises(ValueError, match="unknown reference control"):
        reference_controls(Spy(), "m", ("shuffled",))
    assert CONTROLS == ("grey", "bicubic-lr", "oracle")


# Per-item PSNRs (dB) of methods with known outputs: hr = 0, output = 10^(-p/20) everywhere.
REAL = [30.0, 34.0, 20.0]  # mean 28
GREY = [29.0, 28.0, 18.0]  # mean 25
BICUBIC_LR = [25.0, 31.0, 22.0]  # mean 26: the best no-information reference
BICUBIC = [20.0, 21.0, 22.0]  # mean 21


class KnownOutputs(torch.nn.Module):
    """Returns a constant image whose PSNR against a zero HR is the table's, for the reference given.

    Item k has lr = k / 10 everywhere; the real reference is 0.9 everywhere, the grey one 0.5,
    the bicubic-lr one k / 10.
    """

    def forward(self, lr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        k = round(lr.flatten()[0].item() * 10)
        r = ref.flatten()[0].item()
        table = GREY if r == 0.5 else REAL if r == pytest.approx(0.9) else BICUBIC_LR
        assert table is not BICUBIC_LR or r == pytest.approx(k / 10)
        return torch.full_like(ref, 10 ** (-table[k - 1] / 20))


def test_reference_gain_arithmetic(tmp_path) -> None:
    dataset = [
        {
            "lr": torch.full((3, 8, 8), k / 10),
            "ref": torch.full((3, 16, 16), 0.9),
            "hr": torch.zeros(3, 16, 16),
            "name": f"i{k}",
        }
        for k in (1, 2, 3)
    ]
    model = KnownOutputs()
    known_bicubic = Method(
        "bicubic", lambda lr, ref: torch.full_like(ref, 10 ** (-BICUBIC[round(lr.flatten()[0].item() * 10) - 1] / 20))
    )
    methods = [known_bicubic, *reference_controls(model, "m", ("grey", "bicubic-lr")), refsr_model(model, "m")]
    result = evaluate(methods, dataset, progress=False)
    assert result.mean("m") == pytest.approx(28.0, abs=1e-4)
    gain = result.reference_gain("m")
    assert gain is not None
    assert gain.best_control == "m (ref=bicubic-lr)"  # the higher mean, not the lower (grey, 25)
    assert gain.reference_gain == pytest.approx(28.0 - 26.0, abs=1e-4)
    # per item against that same reference: [30-25, 34-31, 20-22] = [5, 3, -2] (not against the
    # per-item best, [1, 3, -2], whose median would be 1)
    assert gain.per_item_min == pytest.approx(-2.0, abs=1e-4)
    assert gain.per_item_median == pytest.approx(3.0, abs=1e-4)
    assert gain.control_psnr == pytest.approx({"m (ref=grey)": 25.0, "m (ref=bicubic-lr)": 26.0}, abs=1e-4)
    assert gain.gain_over_bicubic == pytest.approx(28.0 - 21.0, abs=1e-4) and gain.items == 3
    # the files carry the same numbers
    write_report(result, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())["reference_gain"]["m"]
    assert summary["reference_gain"] == pytest.approx(2.0, abs=1e-4)
    assert summary["gain_over_bicubic"] == pytest.approx(7.0, abs=1e-4)
    assert (summary["per_item_min"], summary["per_item_median"]) == pytest.approx((-2.0, 3.0), abs=1e-4)
    markdown = (tmp_path / "results.md").read_text()
    assert "| m | 28.000 | `m (ref=bicubic-lr)` | 26.000 | **+2.000** | -2.000 / +3.000 | +7.000 | 3 |" in markdown


def test_reference_gain_from_rows_and_without_bicubic() -> None:
    rows = [
        Row(method, i, f"i{i}", None, psnr, 0.0, 0.0, 0.0)
        for method, values in (("m", REAL), ("m (ref=grey)", GREY), ("m (ref=bicubic-lr)", BICUBIC_LR))
        for i, psnr in enumerate(values)
    ]
    result = EvalResult(
        rows=rows,
        methods=["m (ref=grey)", "m (ref=bicubic-lr)", "m"],
        descriptions={},
        settings={},
        no_information={"m": ["m (ref=grey)", "m (ref=bicubic-lr)"]},
    )
    gain = result.reference_gain("m")
    assert gain is not None and gain.reference_gain == pytest.approx(2.0)
    assert gain.bicubic_psnr is None and gain.gain_over_bicubic is None
    assert result.reference_gain("m (ref=grey)") is None  # a control has no gain of its own
    assert set(result.reference_gains()) == {"m"}
    assert "| m | 28.000 | `m (ref=bicubic-lr)` | 26.000 | **+2.000** | -2.000 / +3.000 | – | 3 |" in markdown_report(
        result
    )


def test_default_controls_with_a_tiny_crossnet() -> None:
    torch.manual_seed(0)
    model = build_model("crossnet_lite", upscale=2, scales=3, channels=8, **{"flow.width": 0.125}).eval()
    images = builtin_images("procedural", count=1, size=(48, 48), seed=7)
    dataset = SyntheticParallaxDataset(images, scale=2, crop=32, seed=0, crop_mode="center", length=2)
    methods = [bicubic(2), *reference_controls(model, "net"), refsr_model(model, "net")]
    result = evaluate(methods, dataset, progress=False)
    assert result.skipped == {} and all(v["count"] == 2 for v in result.summary().values())
    gain = result.reference_gain("net")
    assert gain is not None and gain.items == 2 and math.isfinite(gain.reference_gain)
    assert gain.best_control in ("net (ref=grey)", "net (ref=bicubic-lr)")
