"""Direct tests of the PWC-Net pieces: cost volume, output pyramid, parameters, plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from refsr_pwcnet import PWCNet, local_correlation
from refsr_pwcnet.model import pyramid_channels

from refsr_blocks.core.plugins import PluginManager
from refsr_blocks.core.registry import Registry
from refsr_blocks.ops import level_size, resize_flow

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SMALL = {"pyramid_levels": 4, "max_displacement": 2, "width": 8, "base_channels": 8}


def naive_correlation(f1: torch.Tensor, f2: torch.Tensor, d: int) -> torch.Tensor:
    """Pixel-by-pixel definition of the cost volume, zero outside the image."""
    b, c, h, w = f1.shape
    out = torch.zeros(b, (2 * d + 1) ** 2, h, w, dtype=f1.dtype)
    for i, (dy, dx) in enumerate((dy, dx) for dy in range(-d, d + 1) for dx in range(-d, d + 1)):
        for y in range(h):
            for x in range(w):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    out[:, i, y, x] = (f1[:, :, y, x] * f2[:, :, y + dy, x + dx]).sum(1) / c
    return out


# -- cost volume ---------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "d"), [((2, 3, 5, 7), 2), ((1, 4, 6, 4), 1), ((1, 2, 3, 3), 0)])
def test_cost_volume_matches_the_naive_definition(shape: tuple[int, ...], d: int) -> None:
    gen = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    torch.testing.assert_close(local_correlation(f1, f2, d), naive_correlation(f1, f2, d))


@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (2, -3), (-4, 4), (1, 0), (-3, -1)])
def test_cost_volume_peaks_at_the_true_shift(dy: int, dx: int) -> None:
    d = 4
    # unit-norm features: <a, a> = 1 beats <a, b> for any other feature b
    f2 = torch.nn.functional.normalize(torch.randn(1, 16, 24, 28, generator=torch.Generator().manual_seed(1)), dim=1)
    f1 = torch.roll(f2, shifts=(-dy, -dx), dims=(2, 3))  # f1[y, x] = f2[y + dy, x + dx]
    best = local_correlation(f1, f2, d).argmax(dim=1)[0, d:-d, d:-d]  # away from the border
    expected = (dy + d) * (2 * d + 1) + (dx + d)
    assert (best == expected).all(), f"peak at {best.unique().tolist()}, expected {expected}"


def test_cost_volume_rejects_mismatched_features() -> None:
    with pytest.raises(ValueError, match="same shape"):
        local_correlation(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5), 1)


# -- output pyramid ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(37, 53), (64, 96), (1, 5)])
@pytest.mark.parametrize("scales", [1, 3, 5])
def test_flows_are_finest_first_with_ceil_sizes(size: tuple[int, int], scales: int) -> None:
    net = PWCNet(scales=scales, **SMALL).eval()
    with torch.no_grad():
        flows = net(torch.rand(2, 3, *size), torch.rand(2, 3, *size))
    assert [tuple(f.shape) for f in flows] == [(2, 2, *level_size(*size, k)) for k in range(scales)]
    assert all(torch.isfinite(f).all() for f in flows)


def test_the_default_configuration_runs_on_an_odd_size() -> None:
    net = PWCNet().eval()
    with torch.no_grad():
        flows = net(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 37, 53))
    assert [tuple(f.shape) for f in flows] == [(1, 2, *level_size(37, 53, k)) for k in range(4)]


def test_finer_levels_are_bilinear_upsamplings_of_level_two() -> None:
    # 64×96 is a multiple of 2^4, so no padding: level k-1 is exactly level k resized ×2.
    net = PWCNet(scales=4, **SMALL).eval()
    with torch.no_grad():
        flows = net(torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96))
    for k in (1, 0):
        torch.testing.assert_close(flows[k], resize_flow(flows[k + 1], tuple(flows[k].shape[-2:])))
    assert not torch.allclose(flows[2], resize_flow(flows[3], tuple(flows[2].shape[-2:])))


# -- parameters ----------------------------------------------------------------------------
def test_default_model_is_light() -> None:
    n = sum(p.numel() for p in PWCNet().parameters())
    assert 1_000_000 < n < 3_000_000, n


def test_pyramid_channels_follow_pwcnet() -> None:
    assert pyramid_channels(6, 16) == [16, 32, 64, 96, 128, 160]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scales": 8}, "scales must be between 1 and pyramid_levels"),
        ({"scales": 0}, "scales must be between"),
        ({"pyramid_levels": 1}, "pyramid_levels must be >= 2"),
        ({"max_displacement": -1}, "max_displacement must be >= 0"),
        ({"width": 0}, "width must be >= 1"),
    ],
)
def test_bad_parameters_are_rejected(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PWCNet(**params)


def test_bad_inputs_are_rejected() -> None:
    net = PWCNet(**SMALL)
    with pytest.raises(ValueError, match="same shape"):
        net(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="in_channels=3"):
        net(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


# -- the plugin ----------------------------------------------------------------------------
def test_pyproject_declares_the_entry_point_and_it_registers_pwcnet() -> None:
    meta = tomllib.loads((PACKAGE_ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["refsr_blocks"] == {"pwcnet": "refsr_pwcnet.plugin"}
    import refsr_pwcnet.plugin

    registry = Registry()
    registry.register_kind("flow")
    manager = PluginManager(registry, discover=list)
    manager.register_plugin(refsr_pwcnet.plugin, name="refsr-pwcnet")
    (info,) = manager.list_plugins()
    assert (info.status, info.components) == ("loaded", ("flow/pwcnet",))
    component = registry.get("flow", "pwcnet")
    assert component.factory is PWCNet and component.owner == "refsr-pwcnet"
