"""Configuration validation: every mistake names its key; valid configs round-trip."""

from __future__ import annotations

import json

import pytest

from refsr_blocks.train import ConfigError, build_dataset, load_config
from refsr_blocks.train.config import apply_assignments


def _error(raw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return info.value


def test_tiny_config_loads_with_paper_defaults(tiny_config) -> None:
    del tiny_config["schedule"]
    config = load_config(tiny_config)
    s = config.schedule
    assert (s.lr, s.betas, s.gamma, s.loss["name"], s.steps) == (1e-4, (0.9, 0.999), 0.1, "charbonnier", 200_000)
    assert s.milestone_steps() == [150_000]
    assert config.model["params"]["upscale"] == 2 and config.model["components"]["flow"]["params"]["width"] == 0.125


def test_round_trip_through_json(tiny_config, tmp_path) -> None:
    config = load_config(tiny_config)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"schedul": {}}, "schedul", "Did you mean 'schedule'"),
        ({"schedule": {"batch_size": "four"}}, "schedule.batch_size", "expected an integer"),
        ({"schedule": {"lr": -1.0}}, "schedule.lr", "> 0"),
        ({"schedule": {"milestones": [3, 2]}}, "schedule.milestones", "increase"),
        ({"schedule": {"milestones": [0.5, 3]}}, "schedule.milestones", "not both"),
        ({"schedule": {"milestones": [1.5]}}, "schedule.milestones[0]", "(0, 1)"),
        ({"schedule": {"betas": [0.9]}}, "schedule.betas", "2 values"),
        ({"schedule": {"loss": "charbonier"}}, "schedule.loss.name", "charbonnier"),
        (
            {"schedule": {"loss": {"name": "charbonnier", "params": {"epsilon": 1}}}},
            "schedule.loss.params.epsilon",
            "eps",
        ),
        ({"runtime": {"amp": "fp32"}}, "runtime.amp", "'none', 'bf16', 'fp16'"),
        ({"runtime": {"amp": "fp16", "device": "cpu"}}, "runtime.amp", "CUDA"),
        ({"runtime": {"device": "gpu"}}, "runtime.device", "'cuda'"),
        ({"runtime": {"chekpoint_every": 5}}, "runtime.chekpoint_every", "checkpoint_every"),
        ({"reference": "none"}, "reference", "'real', 'blank'"),
        ({"model": {"preset": "crossnet_lit"}}, "model.preset", "crossnet_lite"),
        ({"model": {"overrides": {"upscal": 4}}}, "model.overrides.upscal", "upscale"),
        ({"model": {"overrides": {"flow.widht": 0.5}}}, "model.components.flow.params.widht", "width"),
        ({"data": {"train": {"kind": "synthetc"}}}, "data.train.kind", "synthetic"),
        ({"data": {"train": {"cropp": 16}}}, "data.train.cropp", "Did you mean 'crop'"),
        ({"data": {"train": {"augment": {"flip": True}}}}, "data.train.augment.flip", "dihedral"),
        ({"data": {"val": {"images": {"builtin": "procedural", "cnt": 2}}}}, "data.val.images.cnt", "count"),
        ({"data": {"num_workers": -1}}, "data.num_workers", ">= 0"),
    ],
)
def test_errors_name_the_key(make_config, change, path, words) -> None:
    err = _error(make_config(change))
    assert err.path == path, str(err)
    assert words in str(err)


def test_missing_sections(tiny_config) -> None:
    assert _error({"data": tiny_config["data"]}).path == "model"
    assert _error({"model": "crossnet_lite"}).path == "data"
    assert _error({"model": "crossnet_lite", "data": {}}).path == "data.train"


def test_fractional_milestones_follow_steps(make_config) -> None:
    config = load_config(make_config({"schedule": {"steps": 1000, "milestones": [0.5, 0.75]}}))
    assert config.schedule.milestone_steps() == [500, 750]


def test_assignments_override_before_validation(tiny_config) -> None:
    config = load_config(tiny_config, ["schedule.steps=9", "reference=blank", "runtime.amp=bf16"])
    assert (config.schedule.steps, config.reference, config.runtime.amp) == (9, "blank", "bf16")
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        apply_assignments({}, ["schedule.steps"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_assignments({"seed": 1}, ["seed.x=2"])


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)


def test_dataset_scale_must_match_the_model(tiny_config) -> None:
    entry = {**tiny_config["data"]["train"], "scale": 4}
    with pytest.raises(ConfigError, match="upscale factor is 2") as info:
        build_dataset(entry, scale=2, default_seed=0, path="data.train")
    assert info.value.path == "data.train.scale"


def test_dataset_errors_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="data.test"):
        build_dataset({"kind": "pairs", "root": str(tmp_path / "nowhere")}, scale=2, default_seed=0, path="data.test")
    entry = {"kind": "synthetic", "images": {"builtin": "procedural", "count": 1, "size": [16, 16]}, "crop": 64}
    with pytest.raises(ConfigError, match="cannot build the 'synthetic' dataset"):
        build_dataset(entry, scale=2, default_seed=0)


def test_builtin_indices_select_images() -> None:
    entry = {"kind": "synthetic", "images": {"builtin": "procedural", "count": 3, "size": [16, 16], "indices": [2]}}
    ds = build_dataset(entry, scale=2, default_seed=0)
    assert len(ds) == 1
    with pytest.raises(ConfigError, match="indices"):
        build_dataset({**entry, "images": {**entry["images"], "indices": [3]}}, scale=2, default_seed=0)
