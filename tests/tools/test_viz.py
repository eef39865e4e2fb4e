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


# -- layout, colour and panel helpers ----------------------------------------------------------------
def test_layout_helpers_sizes():
    import torch

    from refsr_blocks.tools.viz import grid, hstack, labelled, vstack

    a, b = torch.rand(3, 10, 20), torch.rand(1, 14, 6)  # grey images are expanded to RGB
    assert hstack([a, b], gap=2).shape == (3, 14, 28)
    assert vstack([a, b], gap=2).shape == (3, 26, 20)
    g = grid([a, b, a], columns=2, gap=2)
    assert g.shape == (3, 14 + 2 + 14, 20 + 2 + 20)
    assert torch.equal(g[:, 16:26, :20], a) and torch.equal(g[:, :14, 22:28], b.expand(3, -1, -1))  # top-left in cells
    assert bool((g[:, 16:, 22:] == 1).all())  # the empty cell is background
    strip = labelled(a, "x", font_size=10)
    assert strip.shape == (3, 10 + 18, 20)
    assert torch.equal(strip[:, 18:], a)  # the image itself is untouched below the label
    with pytest.raises(ValueError, match="batch"):
        hstack([torch.rand(2, 3, 4, 4)])


def test_colorize_scale():
    import torch

    from refsr_blocks.tools.viz import HEAT_ANCHORS, colorize

    values = torch.tensor([[0.0, 0.5, 1.0, 2.0]])
    rgb = colorize(values, vmax=1.0)
    assert rgb.shape == (3, 1, 4)
    assert torch.allclose(rgb[:, 0, 0] * 255, torch.tensor(HEAT_ANCHORS[0], dtype=torch.float32))
    assert torch.allclose(rgb[:, 0, 2] * 255, torch.tensor(HEAT_ANCHORS[-1], dtype=torch.float32))
    assert torch.equal(rgb[:, 0, 2], rgb[:, 0, 3])  # saturates above vmax
    brightness = rgb.sum(0)[0]
    assert brightness[0] < brightness[1] < brightness[2]


def test_flow_wheel_follows_the_convention():
    import torch

    from refsr_blocks.ops import flow_to_color
    from refsr_blocks.tools.viz import flow_wheel

    wheel = flow_wheel(33)
    assert torch.allclose(wheel[:, 16, 16], torch.ones(3), atol=0.02)  # zero flow is white
    assert torch.equal(wheel[:, 0, 0], torch.ones(3))  # outside the disc
    right = flow_to_color(torch.tensor([[[1.0]], [[0.0]]])).float()[:, 0, 0] / 255  # a +x flow
    assert torch.allclose(wheel[:, 16, 32], right, atol=0.05)  # the rim: full length, +x


def test_warp_panel_layout_and_checks():
    import torch

    from refsr_blocks.tools.viz import MIN_PANEL_WIDTH, display_factor, synthetic_pair, warp_panel

    pair = synthetic_pair(scale=4, size=(32, 48))
    panel = warp_panel(pair["hr"], pair["ref"], pair["flow"])
    factor = display_factor(48)
    assert 48 * factor >= MIN_PANEL_WIDTH
    assert panel.shape[-1] == 3 * 48 * factor + 2 * 6  # three columns
    assert panel.shape[-2] > 2 * 32 * factor  # two labelled rows
    with pytest.raises(ValueError, match="grid"):
        warp_panel(pair["hr"], pair["ref"], torch.zeros(2, 16, 24))


def test_flow_levels_panel_one_tile_per_level():
    import torch

    from refsr_blocks.tools.viz import display_factor, flow_levels_panel

    flows = [torch.randn(1, 2, 20 // 2**k + 1, 30 // 2**k + 1) for k in range(3)]
    panel = flow_levels_panel(flows)
    width = flows[0].shape[-1] * display_factor(flows[0].shape[-1])
    assert panel.shape[-1] == 3 * width + 2 * 6
    with pytest.raises(ValueError, match="2×H×W"):
        flow_levels_panel([torch.randn(3, 4, 4)])


def test_render_intermediates_needs_a_crossnet_output(tmp_path):
    import torch

    from refsr_blocks.tools.viz import render_intermediates

    class Plain(torch.nn.Module):
        def forward(self, lr, ref):
            return ref

    with pytest.raises(ValueError, match="intermediates"):
        render_intermediates(Plain(), torch.rand(3, 4, 4), torch.rand(3, 16, 16), tmp_path)
    with pytest.raises(ValueError, match="one"):
        render_intermediates(Plain(), torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16), tmp_path)
