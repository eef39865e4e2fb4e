"""Specs: resolution, overrides, files, round trips and every error path."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from small import TINY_CROSSNET
from support import assert_refuses_bad_files

from refsr_blocks import SpecError, build_model, resolve_spec
from refsr_blocks.core.spec import apply_overrides, get_preset


def resolved(**overrides):
    return resolve_spec(apply_overrides(get_preset("crossnet"), overrides))


def test_paper_defaults() -> None:
    spec = resolve_spec(get_preset("crossnet"))
    assert spec["params"]["upscale"] == 4 and spec["params"]["scales"] == 4
    assert spec["params"]["shared_encoder"] is False
    names = {slot: entry["name"] for slot, entry in spec["components"].items()}
    assert names == {
        "upsampler": "mdsr",
        "prealign": "none",  # the paper has no pre-alignment
        "flow": "flownets_plus",
        "lr_encoder": "crossnet",
        "ref_encoder": "crossnet",  # defaults to the LR encoder's spec
        "warper": "bilinear",
        "aligner": "flow_warp",  # the paper's alignment, built from prealign, flow and warper
        "decoder": "unet_fusion",
    }
    assert spec["components"]["upsampler"]["params"]["num_blocks"] == 80
    # injected parameters are not duplicated in the component entries
    assert "scales" not in spec["components"]["flow"]["params"]


def test_resolution_is_idempotent_and_plain() -> None:
    spec = resolve_spec(TINY_CROSSNET)
    assert resolve_spec(spec) == spec
    assert json.loads(json.dumps(spec)) == spec
    assert yaml.safe_load(yaml.safe_dump(spec)) == spec


def test_overrides_global_swap_and_params() -> None:
    spec = resolved(upscale=8, scales=5, flow="flownets", **{"upsampler.num_blocks": 2})
    assert spec["params"]["upscale"] == 8 and spec["params"]["scales"] == 5
    assert spec["components"]["flow"]["name"] == "flownets"
    assert spec["components"]["upsampler"]["params"]["num_blocks"] == 2
    nested = resolved(flow={"params": {"width": 0.5}})
    assert nested["components"]["flow"] == {"name": "flownets_plus", "params": {"width": 0.5}}


def test_swapping_a_component_drops_the_old_parameters() -> None:
    spec = resolve_spec(apply_overrides(get_preset("crossnet_lite"), {"upsampler": "bicubic"}))
    assert spec["components"]["upsampler"] == {"name": "bicubic", "params": {"clamp": True}}


def _crossnet_with(slot: str, name: str, **params: object) -> dict[str, object]:
    """A crossnet spec whose ``slot`` is the component ``name`` with ``params``."""
    return {"model": "crossnet", "components": {slot: {"name": name, "params": params}}}


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"model": "crossnet", "params": {"scale": 4}}, "params.scale", "Did you mean 'scales'"),
        ({"model": "crossnet", "params": {"upscale": 5}}, "params.upscale", "one of [2, 3, 4, 8]"),
        ({"model": "crossnet", "params": {"upscale": "4"}}, "params.upscale", "expected int"),
        ({"model": "crossnet", "params": {"scales": 9}}, "params.scales", "in [1, 7]"),
        ({"model": "crossnet", "components": {"flow": "flownet"}}, "components.flow.name", "'flownets'"),
        (_crossnet_with("flow", "flownets", widht=1), "components.flow.params.widht", "Did you mean 'width'"),
        (
            _crossnet_with("flow", "flownets", scales=3),
            "components.flow.params.scales",
            "set by the 'crossnet' architecture",
        ),
        (
            _crossnet_with("lr_encoder", "crossnet", channels=8),
            "components.lr_encoder.params.channels",
            "global parameters",
        ),
        (
            _crossnet_with("decoder", "unet_fusion", kernel_size=2.5),
            "components.decoder.params.kernel_size",
            "expected int",
        ),
        ({"model": "crossnet", "components": {"flows": "flownets"}}, "components.flows", "Did you mean 'flow'"),
        (
            {"model": "crossnet", "components": {"flow": {"nmae": "x"}}},
            "components.flow.nmae",
            "Accepted: name, params",
        ),
        ({"model": "crossnet", "components": {"flow": 3}}, "components.flow", "component name"),
        ({"model": "crossnett"}, "model", "Did you mean 'crossnet'"),
        ({"modle": "crossnet"}, "modle", "top-level spec key"),
        ({"model": "crossnet", "version": 3}, "version", "spec versions [2]"),
        (
            {"model": "crossnet", "params": {"shared_encoder": True}, "components": {"ref_encoder": "timm"}},
            "components.ref_encoder",
            "shared_encoder=True",
        ),
        ({"model": "crossnet", "params": {"residual": True}}, "components.decoder.params.output_activation", "'none'"),
        ({"model": "crossnet", "params": {"channels": object()}}, "params.channels", "not plain data"),
    ],
)
def test_errors_name_the_path(spec, path, fragment) -> None:
    with pytest.raises(SpecError) as err:
        resolve_spec(spec)
    assert err.value.path == path
    assert fragment in str(err.value)


def test_bad_override_names_what_is_accepted() -> None:
    with pytest.raises(SpecError, match="Did you mean 'upscale'") as err:
        build_model("crossnet", upscal=8)
    assert "flow.<param>" in str(err.value)


def test_constructor_rejection_becomes_spec_error() -> None:
    # 5 is within mdsr's PARAM_BOUNDS (2..8) but not a scale it supports: the constructor says so.
    with pytest.raises(SpecError, match="components.upsampler.*supports scales"):
        build_model(TINY_CROSSNET, upsampler={"name": "mdsr", "params": {"extra_scales": [5]}})


def test_param_bounds_reject_before_the_constructor() -> None:
    with pytest.raises(SpecError, match=r"components.flow.params.width: -1.0 is out of range.*\[0.001, 8.0\]"):
        build_model(TINY_CROSSNET, flow={"params": {"width": -1.0}})


def test_validation_happens_before_building(monkeypatch) -> None:
    from refsr_blocks.components.flows import flownets

    def explode(*args, **kwargs):
        raise AssertionError("a module was built before validation finished")

    monkeypatch.setattr(flownets.FlowNetSPlus, "__init__", explode)
    with pytest.raises(SpecError):
        build_model("crossnet", **{"decoder.bogus": 1})


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_build_from_file_round_trip(tmp_path, suffix) -> None:
    model = build_model(TINY_CROSSNET)
    path = tmp_path / f"spec{suffix}"
    dump = json.dumps if suffix == ".json" else yaml.safe_dump
    path.write_text(dump(model.spec))
    again = build_model(path)
    assert again.spec == model.spec
    again.load_state_dict(model.state_dict(), strict=True)
    assert build_model(str(path)).spec == model.spec


def test_file_errors(tmp_path) -> None:
    assert_refuses_bad_files(build_model, SpecError, tmp_path)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(SpecError, match="must hold a mapping"):
        build_model(listing)


def test_unknown_preset() -> None:
    with pytest.raises(KeyError, match="Did you mean 'crossnet_iw'"):
        build_model("crossnet_wi")


def test_model_spec_is_resolved_and_rebuilds() -> None:
    model = build_model("crossnet_lite", scales=3)
    assert model.spec == resolve_spec(model.spec)
    again = build_model(model.spec)
    again.load_state_dict(model.state_dict(), strict=True)


# -- spec versions, architectures by name, create_component, slot declarations --------------
def test_an_unreadable_spec_version_is_named() -> None:
    with pytest.raises(SpecError, match=r"version.*reads spec versions \[2\], got 1"):
        resolve_spec({"version": 1, "model": "crossnet"})


def test_every_architecture_builds_by_name(fresh_registry) -> None:
    from refsr_blocks.components.models.crossnet import CROSSNET
    from refsr_blocks.core.spec import model_entries

    fresh_registry.register("model", "crossnet_copy", CROSSNET)  # an architecture with no preset
    entries = {e.name: e for e in model_entries("crossnet*")}
    assert entries["crossnet_copy"].type == "architecture" and entries["crossnet_iw"].type == "preset"
    assert entries["crossnet_iw"].architecture == "crossnet"
    assert get_preset("crossnet_copy") == {"model": "crossnet_copy"}
    with pytest.raises(Exception, match=r"Architectures and presets: (\w+, )*crossnet, (\w+, )*crossnet_copy"):
        get_preset("crossnet_cpy")


def test_create_component_validates_like_a_spec() -> None:
    from refsr_blocks import create_component

    flow = create_component("flow", "flownets_plus", scales=3, width=0.125)
    assert flow(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))[2].shape == (1, 2, 4, 4)
    with pytest.raises(SpecError) as err:
        create_component("flow", "flownets_plus", widht=0.5)
    assert err.value.path == "flow.flownets_plus.widht" and "Did you mean 'width'" in str(err.value)
    with pytest.raises(SpecError, match="expected float"):
        create_component("flow", "flownets_plus", width="wide")


def test_slot_declarations_are_checked_when_the_architecture_is_made() -> None:
    from refsr_blocks import RegistryError
    from refsr_blocks.core.spec import Architecture, GlobalParam, Slot

    with pytest.raises(RegistryError, match="injected from 'scale', which is not a global parameter"):
        Architecture("bad", {"upscale": GlobalParam(4)}, {"up": Slot("upsampler", "mdsr", {"scale": "scale"})}, dict)


def test_builder_and_slot_must_agree_on_built_arguments(fresh_registry) -> None:
    from refsr_blocks import RegistryError
    from refsr_blocks.core.build import instantiate

    spec = resolve_spec(TINY_CROSSNET)
    with pytest.raises(RegistryError, match="declares \\['lr_channels', 'ref_channels'\\] as BUILT"):
        instantiate(spec, "decoder", lr_channels=[8, 8, 8])
    with pytest.raises(RegistryError, match="declares \\[\\] as BUILT"):
        instantiate(spec, "flow", scales=3)
