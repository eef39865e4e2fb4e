"""Pictures of a model's intermediates: drawn from ``forward_intermediates``, whatever it holds."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from small import TINY_CROSSNET
from torch import Tensor, nn

from refsr_blocks import build_model
from refsr_blocks.evaluation.metrics import psnr
from refsr_blocks.tools.viz import _psnr_db, comparison_panel, model_intermediates, render_intermediates, synthetic_pair


@pytest.fixture(scope="module")
def pair() -> dict[str, Tensor]:
    return synthetic_pair(scale=2, size=(32, 48), seed=1)


class OnlyOutput(nn.Module):
    """A model whose intermediates are only its output (no flows, no upsampled image)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward_intermediates(self, lr: Tensor, ref: Tensor) -> dict[str, Tensor | None]:
        up = torch.nn.functional.interpolate(lr, size=ref.shape[-2:], mode="nearest")
        return {"sr": up * self.scale, "flows": None, "shift": None}


def test_crossnet_gets_every_picture(pair, tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET)
    paths = render_intermediates(model, pair["lr"], pair["ref"], tmp_path, hr=pair["hr"], prefix="x_")
    assert set(paths) == {"flows", "warp", "comparison", "errors"}
    for name, path in paths.items():
        assert path == tmp_path / f"x_{name}.png"
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.width >= 160
    out = model_intermediates(model, pair["lr"], pair["ref"])
    assert len(out["flows"]) == 3 and out["sr"].shape == (1, 3, 32, 48) and not out["sr"].requires_grad


def test_a_model_without_flows_gets_no_flow_pictures(pair, tmp_path) -> None:
    paths = render_intermediates(OnlyOutput(), pair["lr"], pair["ref"], tmp_path, hr=pair["hr"])
    assert set(paths) == {"comparison", "errors"}
    assert set(render_intermediates(OnlyOutput(), pair["lr"], pair["ref"], tmp_path / "no_hr")) == {"comparison"}


def test_models_without_intermediates_are_refused_clearly(pair, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"Identity has no forward_intermediates\(lr, ref\) method"):
        render_intermediates(nn.Identity(), pair["lr"], pair["ref"], tmp_path)

    class ReturnsATensor(OnlyOutput):
        def forward_intermediates(self, lr: Tensor, ref: Tensor) -> Tensor:  # type: ignore[override]
            return lr

    with pytest.raises(ValueError, match=r"returned Tensor; expected a dict with at least 'sr'"):
        render_intermediates(ReturnsATensor(), pair["lr"], pair["ref"], tmp_path)
    with pytest.raises(ValueError, match="not a batch"):
        model_intermediates(OnlyOutput(), pair["lr"][None].expand(2, -1, -1, -1), pair["ref"][None])
    assert not list(tmp_path.iterdir()), "nothing is written when the model cannot be drawn"


def test_labels_use_the_evaluation_psnr(pair) -> None:
    """The one PSNR: picture labels measure what the evaluation measures, border included."""
    noisy = (pair["hr"] + 0.05 * torch.randn_like(pair["hr"])).clamp(0, 1)
    for border in (0, 3):
        expected = float(psnr(noisy[None], pair["hr"][None], border=border)[0])
        assert _psnr_db(noisy, pair["hr"], border=border) == expected
    assert _psnr_db(pair["hr"], pair["hr"]) == float("inf")
    wide = comparison_panel({"a": noisy}, pair["hr"], border=3)
    assert wide.shape[0] == 3


def test_a_reference_of_another_size_gets_its_warp_and_confidence_pictures(tmp_path) -> None:
    """match_flow: the reference has its own size, the flow points into it, the confidence is drawn."""
    from refsr_blocks.tools.viz import confidence_panel

    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET, aligner="match_flow").eval()
    lr, ref = torch.rand(3, 24, 32), torch.rand(3, 60, 44)  # output 48×64, reference 44 wide × 60 high
    paths = render_intermediates(model, lr, ref, tmp_path)
    assert {"warp", "confidence", "comparison"} <= set(paths)
    for name in ("warp", "confidence"):
        assert Image.open(paths[name]).size[0] > 0
    target = torch.full((3, 16, 16), 0.5)
    dark = confidence_panel(target, torch.zeros(1, 8, 8), min_width=16)
    bright = confidence_panel(target, torch.ones(1, 8, 8), min_width=16)
    assert dark.shape == bright.shape and not torch.equal(dark, bright)  # the map shows the confidence
