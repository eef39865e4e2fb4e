"""The ``refsr-blocks`` command line, run in-process through ``refsr_blocks.tools.cli.main``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from small import TINY_CROSSNET

from refsr_blocks import assets, build_model, resolve_spec, save_model
from refsr_blocks.core.errors import SpecError
from refsr_blocks.core.spec import apply_overrides, get_preset
from refsr_blocks.data import load_image, save_image
from refsr_blocks.tools.cli import main

COMMANDS = ("list", "spec", "summary", "sr", "demo", "viz", "plugins", "train", "eval", "convert")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` → (status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(status: int, err: str, *fragments: str) -> None:
    """Exit status 2, one ``error: ...`` line on stderr, no traceback."""
    assert status == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line]
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("error:") or ": error: " in lines[-1], err
    assert len([line for line in lines if "error" in line]) == 1, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint_x4(tmp_path_factory) -> Path:
    """A ×4 tiny CrossNet checkpoint (the demo pair is ×4)."""
    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET, upscale=4)
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny_x4.safetensors")


def write_pair(folder: Path, scale: int, lr_size=(12, 16), with_hr: bool = True) -> dict[str, Path]:
    generator = torch.Generator().manual_seed(0)
    h, w = lr_size
    images = {
        "lr": torch.rand(3, h, w, generator=generator),
        "ref": torch.rand(3, h * scale, w * scale, generator=generator),
    }
    if with_hr:
        images["hr"] = torch.rand(3, h * scale, w * scale, generator=generator)
    paths = {}
    for name, img in images.items():
        paths[name] = folder / f"{name}.png"
        save_image(img, paths[name])
    return paths


# -- help -----------------------------------------------------------------------------------------
def test_help_lists_every_command(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert f"refsr-blocks {command}" in out
    assert len(out.splitlines()) > 3


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("refsr-blocks ")


def test_no_command_is_a_usage_error(capsys):
    status, _, err = run(capsys)
    assert_user_error(status, err, "COMMAND")


def test_unknown_command_is_a_usage_error(capsys):
    status, _, err = run(capsys, "lsit")
    assert_user_error(status, err, "lsit")


# -- list -----------------------------------------------------------------------------------------
def test_list_everything_groups_by_kind(capsys):
    from refsr_blocks.core.registry import REGISTRY

    status, out, _ = run(capsys, "list")
    assert status == 0
    headers = [line[:-1] for line in out.splitlines() if not line.startswith(" ")]
    assert headers == [kind for kind in REGISTRY.kinds if REGISTRY.list(kind)]
    assert {"upsampler", "flow", "warper", "loss", "model"} <= set(headers)
    assert "  flownets_plus" in out and "  crossnet_lite" in out


def test_list_one_kind_with_pattern(capsys):
    status, out, _ = run(capsys, "list", "flow", "--pattern", "flownets*")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(names) and {"flownets", "flownets_plus"} <= set(names)
    assert all(n.startswith("flownets") for n in names)


def model_listing(out: str) -> dict[str, str]:
    """``name -> the rest of its line`` of a ``list model`` output."""
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines()}


def test_list_model_says_which_names_are_architectures_and_presets(capsys):
    from refsr_blocks.core.spec import model_entries

    status, out, _ = run(capsys, "list", "model")
    assert status == 0
    listing = model_listing(out)
    assert list(listing) == [entry.name for entry in model_entries()]
    assert listing["crossnet"].startswith("architecture ")
    assert "CrossNet" in listing["crossnet"]  # the architecture's own description
    for preset in ("crossnet_lite", "crossnet_iw", "crossnet_flownets"):
        assert listing[preset].startswith("preset of crossnet "), listing[preset]


def test_list_preset_is_the_model_listing(capsys):
    _, models, _ = run(capsys, "list", "model", "--pattern", "crossnet*")
    status, presets, _ = run(capsys, "list", "preset", "--pattern", "crossnet*")
    assert status == 0 and presets == models
    assert {"crossnet", "crossnet_lite", "crossnet_iw", "crossnet_flownets"} <= set(model_listing(presets))


def test_list_no_match_exits_1(capsys):
    status, out, err = run(capsys, "list", "loss", "--pattern", "nothing*")
    assert status == 1 and out == ""
    assert "nothing*" in err


def test_list_unknown_kind(capsys):
    status, _, err = run(capsys, "list", "flows")
    assert_user_error(status, err, "flows", "Did you mean 'flow'", "model")


def test_list_shows_kinds_added_by_plugins(capsys, fresh_registry):
    fresh_registry.register_kind("texture_matcher", doc="matches textures", owner="refsr-cli-test")
    fresh_registry.register("texture_matcher", "cli_matcher", torch.nn.Identity, owner="refsr-cli-test")
    status, out, _ = run(capsys, "list", "texture_matcher")
    assert status == 0
    assert out.split()[0] == "cli_matcher" and "[refsr-cli-test]" in out
    status, out, _ = run(capsys, "list")
    assert status == 0 and "texture_matcher:" in out.splitlines()


def test_list_shows_plugin_owner(capsys, fresh_registry):
    fresh_registry.register("loss", "cli_test_loss", torch.nn.L1Loss, owner="refsr-cli-test")
    status, out, _ = run(capsys, "list", "loss", "--pattern", "cli_test*")
    assert status == 0
    assert "[refsr-cli-test]" in out


# -- spec -----------------------------------------------------------------------------------------
def test_spec_prints_the_resolved_spec(capsys):
    status, out, _ = run(capsys, "spec", "crossnet_lite")
    assert status == 0
    assert json.loads(out) == resolve_spec(get_preset("crossnet_lite"))


def test_spec_with_overrides_yaml(capsys):
    status, out, _ = run(
        capsys, "spec", "crossnet_lite", "upscale=8", "flow.width=0.5", "warper=nearest", "--format", "yaml"
    )
    assert status == 0
    spec = yaml.safe_load(out)
    expected = resolve_spec(
        apply_overrides(get_preset("crossnet_lite"), {"upscale": 8, "flow.width": 0.5, "warper": "nearest"})
    )
    assert spec == expected
    assert spec["params"]["upscale"] == 8 and spec["components"]["flow"]["params"]["width"] == 0.5


def test_spec_output_rebuilds_the_model(capsys, tmp_path):
    status, out, _ = run(capsys, "spec", "crossnet_lite", "channels=16", "--format", "yaml")
    assert status == 0
    path = tmp_path / "model.yaml"
    path.write_text(out)
    assert build_model(path).spec == yaml.safe_load(out)


def test_spec_reads_a_spec_file(capsys, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(TINY_CROSSNET))
    status, out, _ = run(capsys, "spec", str(path), "scales=2")
    assert status == 0
    assert json.loads(out)["params"]["scales"] == 2


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("spec", "crosnet"), ("crosnet", "Did you mean")),
        (("spec", "crossnet", "upscale"), ("KEY=VALUE",)),
        (("spec", "crossnet", "=8"), ("KEY=VALUE",)),
        (("spec", "crossnet", "flow.widht=0.5"), ("components.flow.params.widht", "width")),
        (("spec", "crossnet", "upscale=5"), ("params.upscale",)),
        (("spec", "crossnet", "chanels=3"), ("channels",)),
        (("spec", "missing.yaml"), ("missing.yaml", "does not exist")),
        (("spec", "crossnet", "--format", "toml"), ("toml",)),
    ],
)
def test_spec_mistakes_are_one_line_errors(capsys, argv, fragments):
    status, out, err = run(capsys, *argv)
    assert out == ""
    assert_user_error(status, err, *fragments)


# -- summary --------------------------------------------------------------------------------------
def test_summary_table(capsys):
    status, out, _ = run(capsys, "summary", "crossnet_lite", "channels=16")
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0] == "| part | component | parameters |"
    assert lines[-1].startswith("| total | crossnet |")
    model = build_model("crossnet_lite", channels=16)
    assert f"{sum(p.numel() for p in model.parameters()):,}" in lines[-1]


def test_summary_bad_override(capsys):
    status, _, err = run(capsys, "summary", "crossnet_lite", "flow=nope")
    assert_user_error(status, err, "components.flow.name", "nope")


# -- sr -------------------------------------------------------------------------------------------
def test_sr_writes_the_super_resolved_image(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    out_path = tmp_path / "out" / "sr.png"
    status, out, err = run(
        capsys,
        "sr",
        "--checkpoint",
        str(tiny_checkpoint),
        "--lr",
        str(pair["lr"]),
        "--ref",
        str(pair["ref"]),
        "--out",
        str(out_path),
    )
    assert status == 0, err
    assert "wrote" in out
    sr = load_image(out_path)
    assert sr.shape == (3, 24, 32)
    # the same as running the model directly (8-bit rounding aside)
    from refsr_blocks import load_model

    model = load_model(tiny_checkpoint).eval()
    with torch.inference_mode():
        expected = model(load_image(pair["lr"])[None], load_image(pair["ref"])[None]).clamp(0, 1)[0]
    assert (sr - expected).abs().max() <= 1 / 255 + 1e-6


def test_sr_sliding_windows_cover_the_image(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2, lr_size=(20, 24), with_hr=False)
    out_path = tmp_path / "sr.png"
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(out_path), "--window", "16", "--stride", "8")
    assert status == 0, err
    assert load_image(out_path).shape == (3, 40, 48)


def test_sr_keeps_freed_memory_for_reuse(capsys, tmp_path, tiny_checkpoint, retain_calls):
    pair = write_pair(tmp_path, scale=2, lr_size=(20, 24), with_hr=False)
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "sr.png"))
    assert status == 0, err
    assert retain_calls == [True]


def test_sr_bad_window(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"), "--window", "15")
    assert_user_error(status, err, "window")


def test_sr_missing_input(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(tmp_path / "nope.png"), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"))
    assert_user_error(status, err, "nope.png", "does not exist")


def test_sr_missing_checkpoint(capsys, tmp_path):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    argv = [
        "sr",
        "--checkpoint",
        str(tmp_path / "none.safetensors"),
        "--lr",
        str(pair["lr"]),
        "--ref",
        str(pair["ref"]),
    ]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"))
    assert_user_error(status, err, "none.safetensors")


def test_sr_corrupt_checkpoint(capsys, tmp_path):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    argv = ["sr", "--checkpoint", str(bad), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"))
    assert_user_error(status, err, "bad.safetensors")


def test_sr_wrong_reference_size(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=4, with_hr=False)  # the checkpoint is ×2
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"))
    assert_user_error(status, err, "×2", "32×24 (width×height)")


def test_sr_not_an_image(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    argv = ["sr", "--checkpoint", str(tiny_checkpoint), "--lr", str(text), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "x.png"))
    assert_user_error(status, err, "notes.png")


def test_sr_needs_all_its_options(capsys):
    status, _, err = run(capsys, "sr", "--lr", "a.png")
    assert_user_error(status, err, "--checkpoint")


# -- demo -----------------------------------------------------------------------------------------
@pytest.fixture
def no_shipped_assets(monkeypatch, tmp_path):
    """Pretend the package ships neither weights nor demo pair (whatever the checkout has)."""
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path / "absent")


def test_demo_without_weights_says_what_to_do(capsys, no_shipped_assets):
    status, _, err = run(capsys, "demo")
    assert_user_error(status, err, f"{assets.DEFAULT_PRETRAINED}.safetensors", "--checkpoint")


def test_demo_with_a_checkpoint_on_a_synthetic_pair(capsys, tmp_path, tiny_checkpoint_x4, no_shipped_assets):
    out_path = tmp_path / "demo.png"
    status, out, err = run(
        capsys, "demo", "--checkpoint", str(tiny_checkpoint_x4), "--out", str(out_path), "--size", "32", "48"
    )
    assert status == 0, err
    assert "synthetic pair" in err
    assert "bicubic" in out and "CrossNet" in out and "gain" in out
    with Image.open(out_path) as picture:
        width, height = picture.size
    assert width > 3 * 48 and height > 32  # three labelled panels


def test_demo_uses_the_shipped_weights_and_pair_when_present(capsys, monkeypatch, tmp_path, tiny_checkpoint_x4):
    """When the weights file and the demo pair appear in the package, `demo` just works."""
    assets_dir = tmp_path / "assets"
    demo_dir = assets_dir / "demo"
    demo_dir.mkdir(parents=True)
    write_pair(demo_dir, scale=4)
    shutil.copy(tiny_checkpoint_x4, assets_dir / f"{assets.DEFAULT_PRETRAINED}.safetensors")
    monkeypatch.setattr(assets, "ASSETS_DIR", assets_dir)
    out_path = tmp_path / "demo.png"
    status, out, err = run(capsys, "demo", "--out", str(out_path))
    assert status == 0, err
    assert "synthetic" not in err
    # the printed PSNRs are those of the shipped pair
    from refsr_blocks import load_model
    from refsr_blocks.evaluation.metrics import psnr
    from refsr_blocks.tools.viz import bicubic_upsample

    lr, hr = load_image(demo_dir / "lr.png")[None], load_image(demo_dir / "hr.png")[None]
    bicubic_line = next(line for line in out.splitlines() if line.strip().startswith("bicubic"))
    assert f"{psnr(bicubic_upsample(lr, 4), hr).item():6.2f}" in bicubic_line
    model = load_model(tiny_checkpoint_x4).eval()
    with torch.inference_mode():
        sr = model(lr, load_image(demo_dir / "ref.png")[None])
    crossnet_line = next(line for line in out.splitlines() if line.split()[:1] == ["CrossNet"])
    assert f"{psnr(sr, hr).item():6.2f}" in crossnet_line
    assert any("grey reference" in line for line in out.splitlines()), "the demo must print its control"
    assert out_path.is_file()


def test_demo_with_an_explicit_pair(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2)
    argv = ["demo", "--checkpoint", str(tiny_checkpoint), "--ref", str(pair["ref"]), "--hr", str(pair["hr"])]
    status, out, err = run(capsys, *argv, "--out", str(tmp_path / "demo.png"))
    assert status == 0, err
    assert "PSNR" in out


def test_demo_needs_the_ground_truth(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2)
    argv = ["demo", "--checkpoint", str(tiny_checkpoint), "--lr", str(pair["lr"]), "--ref", str(pair["ref"])]
    status, _, err = run(capsys, *argv, "--out", str(tmp_path / "demo.png"))
    assert_user_error(status, err, "--hr")


# -- viz ------------------------------------------------------------------------------------------
def test_viz_writes_the_pictures(capsys, tmp_path, tiny_checkpoint):
    out_dir = tmp_path / "pictures"
    status, out, err = run(
        capsys, "viz", "--checkpoint", str(tiny_checkpoint), "--out-dir", str(out_dir), "--size", "32", "48"
    )
    assert status == 0, err
    for name in ("flows", "warp", "comparison", "errors"):
        path = out_dir / f"{name}.png"
        assert path.is_file() and str(path) in out
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size[0] >= 160


def test_viz_random_model_with_overrides_and_files(capsys, tmp_path):
    pair = write_pair(tmp_path, scale=2, with_hr=False)
    out_dir = tmp_path / "pictures"
    argv = [
        "viz",
        "--model",
        "crossnet_lite",
        "upscale=2",
        "scales=3",
        "--lr",
        str(pair["lr"]),
        "--ref",
        str(pair["ref"]),
    ]
    status, _, err = run(capsys, *argv, "--out-dir", str(out_dir))
    assert status == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "comparison.png",
        "flows.png",
        "warp.png",
    ]  # no errors.png without --hr


def test_viz_checkpoint_and_model_conflict(capsys, tiny_checkpoint):
    status, _, err = run(capsys, "viz", "--checkpoint", str(tiny_checkpoint), "--model", "crossnet")
    assert_user_error(status, err, "--checkpoint", "--model")


def test_viz_reference_without_lr(capsys, tmp_path, tiny_checkpoint):
    pair = write_pair(tmp_path, scale=2)
    status, _, err = run(capsys, "viz", "--checkpoint", str(tiny_checkpoint), "--ref", str(pair["ref"]))
    assert_user_error(status, err, "--lr")


# -- plugins --------------------------------------------------------------------------------------
def test_plugins_table(capsys):
    from refsr_blocks.core.plugins import list_plugins
    from refsr_blocks.tools.cli import format_plugin_table

    status, out, _ = run(capsys, "plugins")
    assert status == 0
    assert out.strip() == format_plugin_table(list_plugins()).strip()


def test_plugins_json(capsys):
    from refsr_blocks.core.plugins import list_plugins

    status, out, _ = run(capsys, "plugins", "--json")
    assert status == 0
    assert json.loads(out) == [r.as_dict() for r in list_plugins()]


# -- train, eval -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "option"), [("train", "--max-steps"), ("eval", "--controls"), ("convert", "--upscale")]
)
def test_delegated_help_is_argparse_help(capsys, command, option):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: refsr-blocks {command} [-h]")
    assert option in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("train", "config.yaml", "--bogus"), ("usage: refsr-blocks train", "unrecognized arguments: --bogus")),
        (("train", "config.yaml", "--max-steps", "many"), ("usage: refsr-blocks train", "--max-steps", "many")),
        (("train",), ("usage: refsr-blocks train", "config")),
        (("eval", "--out", "x"), ("usage: refsr-blocks eval", "--data")),
    ],
)
def test_train_and_eval_bad_options_are_usage_errors(capsys, argv, fragments):
    status, out, err = run(capsys, *argv)
    assert out == ""
    assert_user_error(status, err, *fragments)


def test_train_runs_with_the_parsed_options(capsys, monkeypatch):
    seen = []

    def run_train(args):
        seen.append(args)
        return 3  # the trainer's "diverged" status comes back unchanged

    monkeypatch.setattr("refsr_blocks.train.command.run_train", run_train)
    assert main(["train", "config.yaml", "--max-steps", "3", "--set", "a.b=1", "--set", "c=2", "--resume"]) == 3
    (args,) = seen
    assert args.config == Path("config.yaml") and args.max_steps == 3 and args.resume
    assert args.assignments == ["a.b=1", "c=2"] and args.out is None


def test_eval_runs_with_the_parsed_options(capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("refsr_blocks.evaluation.command.run_eval", lambda args: seen.append(args) or 0)
    argv = ["eval", "--checkpoint", "a=x.safetensors", "--checkpoint", "y.safetensors", "--data", "d", "--out", "o"]
    assert main([*argv, "--window", "64"]) == 0
    (args,) = seen
    assert args.checkpoint == ["a=x.safetensors", "y.safetensors"] and args.window == 64 and args.out == Path("o")


def test_library_errors_are_one_line(capsys, monkeypatch):
    def fails(args):
        raise SpecError("model", "bad spec")

    monkeypatch.setattr("refsr_blocks.train.command.run_train", fails)
    status, _, err = run(capsys, "train", "x.yaml")
    assert_user_error(status, err, "model: bad spec")


@pytest.mark.parametrize("error", [ValueError("a bug"), FileNotFoundError("a bug"), RuntimeError("a bug")])
def test_other_errors_are_not_swallowed(capsys, monkeypatch, error):
    """Only the library's own errors are user mistakes; anything else is a bug, with its traceback."""

    def fails(args):
        raise error

    monkeypatch.setattr("refsr_blocks.train.command.run_train", fails)
    with pytest.raises(type(error), match="a bug"):
        main(["train", "x.yaml"])


def test_train_reports_the_real_trainers_errors(capsys, tmp_path):
    """The real trainer's validation errors come back as one line."""
    config = tmp_path / "config.yaml"
    config.write_text("model: crossnet_lite\ndata: {train: {kind: synthetic, images: {builtin: procedural}}}\n")
    status, _, err = run(
        capsys, "train", str(config), "--set", "schedule.milestons=[0.5]", "--out", str(tmp_path / "run")
    )
    assert_user_error(status, err, "schedule.milestons", "milestones")
    assert not (tmp_path / "run").exists()


def test_eval_reports_the_real_evaluations_errors(capsys, tmp_path):
    argv = ["eval", "--checkpoint", str(tmp_path / "none.safetensors"), "--data", "synthetic:x", "--out", str(tmp_path)]
    status, _, err = run(capsys, *argv)
    assert_user_error(status, err, "none.safetensors")


@pytest.mark.parametrize(
    ("entry", "prog"),
    [
        ("refsr_blocks.train.command:train_main", "python -m refsr_blocks.train"),
        ("refsr_blocks.evaluation.command:eval_main", "python -m refsr_blocks.evaluation"),
    ],
)
def test_python_m_entry_points_still_work(capsys, entry, prog):
    import importlib

    module, _, function = entry.partition(":")
    entry_point = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as exit_:
        entry_point(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} [-h]")


# -- import cost ----------------------------------------------------------------------------------
def test_help_imports_no_heavy_module():
    """``refsr-blocks --help`` adds no torch-using module to what ``import refsr_blocks`` loads."""
    code = (
        "import sys, refsr_blocks\n"
        "before = set(sys.modules)\n"
        "from refsr_blocks.tools.cli import main\n"
        "assert main(['--help']) == 0\n"
        "heavy = ('torch', 'timm', 'kornia', 'torchvision', 'refsr_blocks.train', 'refsr_blocks.evaluation',\n"
        "         'refsr_blocks.inference.tiling', 'refsr_blocks.tools.viz', 'refsr_blocks.tools.summary',\n"
        "         'refsr_blocks.interop')\n"
        "added = sorted(m for m in set(sys.modules) - before if m.startswith(heavy))\n"
        "assert not added, added\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
