"""Configuration validation: every mistake names its key; valid configs round-trip."""

from __future__ import annotations

import json

import pytest
import torch
from support import assert_refuses_bad_files

from refsr_blocks import list_components, register_component
from refsr_blocks.core.errors import SpecError
from refsr_blocks.core.overrides import parse_override, parse_overrides, parse_value
from refsr_blocks.core.registry import REGISTRY
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.train import ConfigError, load_config
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
        # strict types: YAML's true is not a number, "0" is not an integer, .nan is not finite
        ({"seed": "0"}, "seed", "expected an integer, got str '0'"),
        ({"schedule": {"milestones": [True]}}, "schedule.milestones[0]", "an integer or a number, got bool"),
        ({"schedule": {"lr": float("nan")}}, "schedule.lr", "finite"),
        ({"schedule": {"betas": [0.9, 0.99, 0.999]}}, "schedule.betas", "at most 2 values"),
        ({"schedule": {"loss": 3}}, "schedule.loss", "expected a mapping or a string, got int 3"),
        ({"schedule": {"loss": {"nme": "l1"}}}, "schedule.loss.nme", "Did you mean 'name'"),
        ({"runtime": {"progress": "no"}}, "runtime.progress", "expected true or false, got str 'no'"),
        ({"init": {"pth": "x.safetensors"}}, "init.pth", "Did you mean 'path'"),
        # dataset entries are checked against the dataset's signature before anything is built
        ({"data": {"train": {"max_disparity": "big"}}}, "data.train.max_disparity", "expected float"),
        ({"data": {"train": {"transform": 1}}}, "data.train.transform", "not here"),
        ({"data": {"train": {"augment": {"parallax_shift": -2}}}}, "data.train.augment.parallax_shift", ">= 0"),
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
    assert_refuses_bad_files(load_config, ConfigError, tmp_path)


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


def test_config_error_is_the_spec_error(make_config) -> None:
    """One path-carrying error: ``except ConfigError`` and ``except SpecError`` catch the same."""
    assert ConfigError is SpecError
    err = _error(make_config({"schedule": {"steps": 0}}))
    assert (err.path, err.message) == ("schedule.steps", "expected a number > 0, got 0")
    assert str(err) == "schedule.steps: expected a number > 0, got 0"


def test_one_override_syntax_for_every_command() -> None:
    """``--set`` and the spec/summary/viz overrides read values the same way (YAML, JSON-like numbers)."""
    import refsr_blocks.tools.summary
    from refsr_blocks.tools.cli import _override

    assert refsr_blocks.tools.summary.parse_overrides is parse_overrides
    assert _override("flow.width=1e-4") == ("flow.width", 1e-4)  # the CLI's argparse type
    assert _override("decoder={a: 1}") == ("decoder", {"a": 1})
    cases = {
        "8": 8,
        "0.5": 0.5,
        "1e-4": 1e-4,
        "true": True,
        "no": "no",
        "null": None,
        "": None,
        "[1, 2]": [1, 2],
        "{a: 1}": {"a": 1},
        "flownets": "flownets",
        "'8'": "8",
        "2024-01-01": "2024-01-01",
    }
    for text, value in cases.items():
        assert parse_value(text) == value and type(parse_value(text)) is type(value), text
    assert parse_overrides(["upscale=8", "flow.width=0.5", "upscale=4"]) == {"upscale": 4, "flow.width": 0.5}
    assert parse_override(" schedule.lr = 1e-4") == ("schedule.lr", 1e-4)
    for bad in ("upscale", "=8", "a..b=1"):
        with pytest.raises(SpecError, match="must look like KEY=VALUE"):
            parse_override(bad)
    with pytest.raises(SpecError, match="cannot read the value") as info:
        parse_override("flow.width=[0.5")
    assert info.value.path == "flow.width"
    assert apply_assignments({}, ["schedule.lr=1e-4", "schedule.milestones=[0.5]"]) == {
        "schedule": {"lr": 1e-4, "milestones": [0.5]}
    }


def test_set_values_are_validated_like_file_values(tiny_config) -> None:
    config = load_config(tiny_config, ["schedule.lr=2e-4", "runtime.progress=true"])
    assert config.schedule.lr == 2e-4 and config.runtime.progress is True
    with pytest.raises(ConfigError, match="expected true or false, got str 'yes'"):
        load_config(tiny_config, ["runtime.progress=yes"])
    with pytest.raises(ConfigError, match="cannot read the value") as info:
        load_config(tiny_config, ["schedule.milestones=[1,"])
    assert info.value.path == "schedule.milestones"


def test_datasets_are_registered_components() -> None:
    """The registry is the one list of datasets: a plugin's dataset is a config ``kind`` at once."""
    assert {"synthetic", "lightfield", "pairs"} <= set(list_components("dataset"))
    assert not REGISTRY.get_kind("dataset").model_part

    class Constant(torch.utils.data.Dataset):
        """A dataset of ``length`` grey items."""

        def __init__(self, scale: int = 4, *, size: int = 8, length: int = 2, seed=None, transform=None) -> None:
            self.scale, self.size, self.length = scale, size, length

        def __len__(self) -> int:
            return self.length

        def __getitem__(self, i: int) -> dict:
            hr = torch.full((3, self.size, self.size), 0.5)
            return {"lr": hr[:, :: self.scale, :: self.scale], "ref": hr, "hr": hr}

    register_component("dataset", "constant_test", Constant)
    try:
        ds = build_dataset({"kind": "constant_test", "size": 16, "length": 3}, scale=2, default_seed=0)
        assert len(ds) == 3 and ds[0]["lr"].shape == (3, 8, 8)
        with pytest.raises(ConfigError, match="Did you mean 'size'") as info:
            build_dataset({"kind": "constant_test", "sise": 16}, scale=2, default_seed=0, path="data.val")
        assert info.value.path == "data.val.sise"
        with pytest.raises(ConfigError, match="expected int") as info:
            build_dataset({"kind": "constant_test", "length": "3"}, scale=2, default_seed=0)
        assert info.value.path == "data.length"
        assert "constant_test" in list_components("dataset")
    finally:
        REGISTRY.unregister("dataset", "constant_test")
    with pytest.raises(
        ConfigError, match="Registered dataset components: cufed5, lightfield, pairs, ref_folder, synthetic"
    ):
        build_dataset({"kind": "constant_test"}, scale=2, default_seed=0)


def test_dataset_entries_need_a_kind_and_their_required_parameters() -> None:
    with pytest.raises(
        ConfigError, match="required: one of cufed5, lightfield, pairs, ref_folder, synthetic, viewpoint_pairs, mix"
    ) as info:
        build_dataset({"images": "x"}, scale=2, default_seed=0, path="data.train")
    assert info.value.path == "data.train.kind"
    with pytest.raises(ConfigError, match="requires this parameter") as info:
        build_dataset({"kind": "pairs"}, scale=2, default_seed=0, path="data.test")
    assert info.value.path == "data.test.root"
    with pytest.raises(ConfigError, match="unknown setting. Did you mean 'repeats'") as info:
        build_dataset(
            {"kind": "mix", "parts": [{"kind": "pairs", "root": "x"}], "repeat": [2]}, scale=2, default_seed=0
        )
    assert info.value.path == "data.repeat"
    with pytest.raises(ConfigError, match="non-empty list"):
        build_dataset({"kind": "mix", "parts": []}, scale=2, default_seed=0)


def test_photometric_amounts_in_a_config_entry() -> None:
    entry = {"kind": "synthetic", "images": {"builtin": "procedural", "count": 1, "size": [16, 16]}, "crop": 8}
    ds = build_dataset({**entry, "photometric": {"noise": 0.0}}, scale=2, default_seed=0)
    assert ds.photometric.noise == 0.0 and ds.photometric.gamma == 0.1
    assert build_dataset({**entry, "photometric": None}, scale=2, default_seed=0).photometric is None
    with pytest.raises(ConfigError, match="unknown amount 'nois'. Did you mean 'noise'"):
        build_dataset({**entry, "photometric": {"nois": 0.0}}, scale=2, default_seed=0)


def test_one_decay_factor_per_milestone(make_config) -> None:
    """The paper's generalisation schedule: 7e-5, then x0.5, x0.2, x0.1 (cumulative) at 50K, 100K, 150K."""
    config = load_config(
        make_config(
            {
                "schedule": {
                    "steps": 200_000,
                    "lr": 7e-5,
                    "milestones": [50_000, 100_000, 150_000],
                    "gamma": [0.5, 0.2, 0.1],
                }
            }
        )
    )
    s = config.schedule
    lrs = [s.lr * s.lr_factor(step) for step in (0, 49_999, 50_000, 100_000, 150_000, 199_999)]
    assert lrs == pytest.approx([7e-5, 7e-5, 3.5e-5, 7e-6, 7e-7, 7e-7])
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=s.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: s.lr_factor(step))  # as the trainer does
    for _ in range(50_000):
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3.5e-5)
    with pytest.raises(ConfigError, match="one factor per milestone") as err:
        load_config(make_config({"schedule": {"milestones": [10, 20], "gamma": [0.5]}}))
    assert err.value.path == "schedule.gamma"
