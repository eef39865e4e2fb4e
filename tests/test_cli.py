"""The ``refsr-blocks`` command line, run in-process through ``refsr_blocks.cli.main``."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from small import TINY_CROSSNET

from refsr_blocks import build_model, cli, resolve_spec, save_model
from refsr_blocks.cli import main
from refsr_blocks.data import load_image, save_image
from refsr_blocks.errors import SpecError
from refsr_blocks.spec import apply_overrides, get_preset

PASSTHROUGH = ("train", "eval", "bench")
COMMANDS = ("list", "spec", "summary", "sr", "demo", "viz", "plugins", *PASSTHROUGH)


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
@pytest.fixture(autouse=True)
def retain_calls(monkeypatch) -> list[bool]:
    """Record calls of retain_freed_memory instead of changing this test process's allocator."""
    calls: list[bool] = []
    monkeypatch.setattr("refsr_blocks.runtime.retain_freed_memory", lambda: calls.append(True) or True)
    return calls


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A ×2 tiny CrossNet checkpoint."""
    torch.manual_seed(0)
    return save_model(build_model(TINY_CROSSNET), tmp_path_factory.mktemp("ckpt") / "tiny_x2.safetensors")


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


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in PASSTHROUGH])
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
    status, out, _ = run(capsys, "list")
    assert status == 0
    for header in ("upsampler:", "flow:", "warper:", "loss:", "model:", "preset:"):
        assert header in out.splitlines()
    assert "  flownets_plus" in out and "  crossnet_lite" in out


def test_list_one_kind_with_pattern(capsys):
    status, out, _ = run(capsys, "list", "flow", "--pattern", "flownets*")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["flownets", "flownets_plus"]


def test_list_presets(capsys):
    status, out, _ = run(capsys, "list", "preset")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"crossnet", "crossnet_lite", "crossnet_iw", "crossnet_flownets"} <= set(names)


def test_list_no_match_exits_1(capsys):
    status, out, err = run(capsys, "list", "loss", "--pattern", "nothing*")
    assert status == 1 and out == ""
    assert "nothing*" in err


def test_list_unknown_kind(capsys):
    status, _, err = run(capsys, "list", "flows")
    assert_user_error(status, err, "flows")


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
    assert_user_error(status, err, "×2", "24×32")


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
    monkeypatch.setattr(cli, "shipped_weights", lambda: tmp_path / "absent" / cli.SHIPPED_WEIGHTS)
    monkeypatch.setattr(cli, "DEMO_DIR", tmp_path / "absent" / "demo")


def test_demo_without_weights_says_what_to_do(capsys, no_shipped_assets):
    status, _, err = run(capsys, "demo")
    assert_user_error(status, err, cli.SHIPPED_WEIGHTS, "--checkpoint")


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
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    write_pair(demo_dir, scale=4)
    monkeypatch.setattr(cli, "shipped_weights", lambda: tiny_checkpoint_x4)
    monkeypatch.setattr(cli, "DEMO_DIR", demo_dir)
    out_path = tmp_path / "demo.png"
    status, out, err = run(capsys, "demo", "--out", str(out_path))
    assert status == 0, err
    assert "synthetic" not in err
    # the printed PSNRs are those of the shipped pair
    from refsr_blocks import load_model
    from refsr_blocks.viz import bicubic_upsample, psnr

    lr, hr = load_image(demo_dir / "lr.png")[None], load_image(demo_dir / "hr.png")[None]
    bicubic_line = next(line for line in out.splitlines() if line.strip().startswith("bicubic"))
    assert f"{psnr(bicubic_upsample(lr, 4), hr):6.2f}" in bicubic_line
    model = load_model(tiny_checkpoint_x4).eval()
    with torch.inference_mode():
        sr = model(lr, load_image(demo_dir / "ref.png")[None])
    crossnet_line = next(line for line in out.splitlines() if line.split()[:1] == ["CrossNet"])
    assert f"{psnr(sr, hr):6.2f}" in crossnet_line
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
    from refsr_blocks.plugins import format_plugin_table, list_plugins

    status, out, _ = run(capsys, "plugins")
    assert status == 0
    assert out.strip() == format_plugin_table(list_plugins()).strip()


def test_plugins_json(capsys):
    from refsr_blocks.plugins import list_plugins

    status, out, _ = run(capsys, "plugins", "--json")
    assert status == 0
    assert json.loads(out) == [r.as_dict() for r in list_plugins()]


# -- delegations ----------------------------------------------------------------------------------
def fake_entry(monkeypatch, package: str, function: str, behaviour):
    """Install ``package.__main__.function`` as a fake module; returns the recorded calls."""
    calls: list[list[str]] = []

    def entry(argv):
        calls.append(list(argv))
        return behaviour(argv)

    parent = types.ModuleType(package)
    parent.__path__ = []  # a package
    child = types.ModuleType(f"{package}.__main__")
    setattr(child, function, entry)
    monkeypatch.setitem(sys.modules, package, parent)
    monkeypatch.setitem(sys.modules, f"{package}.__main__", child)
    return calls


DELEGATED = [("train", "refsr_blocks.train", "train_main"), ("eval", "refsr_blocks.evaluation", "eval_main")]


@pytest.mark.parametrize(("command", "package", "function"), DELEGATED)
def test_delegation_passes_every_argument(capsys, monkeypatch, command, package, function):
    calls = fake_entry(monkeypatch, package, function, lambda argv: 0)
    argv = ["config.yaml", "--max-steps", "3", "--help", "--set", "a.b=1"]
    assert main([command, *argv]) == 0
    assert calls == [argv]


@pytest.mark.parametrize(("command", "package", "function"), DELEGATED)
def test_delegation_returns_the_status(capsys, monkeypatch, command, package, function):
    fake_entry(monkeypatch, package, function, lambda argv: 3)
    assert main([command, "x"]) == 3

    def argparse_exit(argv):
        raise SystemExit(2)

    fake_entry(monkeypatch, package, function, argparse_exit)
    assert main([command]) == 2


@pytest.mark.parametrize(("command", "package", "function"), DELEGATED)
def test_delegation_user_errors_are_one_line(capsys, monkeypatch, command, package, function):
    def fails(argv):
        raise SpecError("model", "bad spec")

    fake_entry(monkeypatch, package, function, fails)
    status, _, err = run(capsys, command, "x")
    assert_user_error(status, err, "model: bad spec")


@pytest.mark.parametrize(("command", "package", "function"), DELEGATED)
def test_delegation_to_a_missing_module(capsys, monkeypatch, command, package, function):
    monkeypatch.setitem(sys.modules, f"{package}.__main__", None)  # importing it raises ModuleNotFoundError
    status, _, err = run(capsys, command, "x")
    assert_user_error(status, err, "not available", package)


def test_train_delegates_to_the_real_trainer(capsys, tmp_path):
    """The real entry point is found and its validation errors come back as one line."""
    pytest.importorskip("refsr_blocks.train.__main__")
    config = tmp_path / "config.yaml"
    config.write_text("model: crossnet_lite\ndata: {train: {kind: synthetic, images: {builtin: procedural}}}\n")
    status, _, err = run(
        capsys, "train", str(config), "--set", "schedule.milestons=[0.5]", "--out", str(tmp_path / "run")
    )
    assert_user_error(status, err, "schedule.milestons", "milestones")
    assert not (tmp_path / "run").exists()


def test_eval_delegates_to_the_real_evaluation(capsys, tmp_path):
    pytest.importorskip("refsr_blocks.evaluation.__main__")
    status, _, err = run(
        capsys,
        "eval",
        "--checkpoint",
        str(tmp_path / "none.safetensors"),
        "--data",
        "synthetic:x",
        "--out",
        str(tmp_path),
    )
    assert_user_error(status, err, "none.safetensors")


def test_bench_runs_the_script_as_main(capsys, monkeypatch, tmp_path):
    script = tmp_path / "benchmarks" / "run.py"
    script.parent.mkdir()
    record = tmp_path / "argv.json"
    script.write_text(
        "import argparse, json, sys\n"
        "def main(argv=None):\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--only', default='')\n"
        "    parser.add_argument('--repeats', type=int, default=5)\n"
        "    args = parser.parse_args(argv)\n"
        f"    open({str(record)!r}, 'w').write(json.dumps([sys.argv[0], vars(args), sys.path[0]]))\n"
        "    return 0\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )
    monkeypatch.chdir(tmp_path)
    argv_before = list(sys.argv)
    assert main(["bench", "--only", "bf16", "--repeats", "1"]) == 0
    program, args, path0 = json.loads(record.read_text())
    assert Path(program).resolve() == script.resolve()
    assert args == {"only": "bf16", "repeats": 1}
    assert Path(path0).resolve() == script.parent.resolve()
    assert sys.argv == argv_before
    status, _, err = run(capsys, "bench", "--bogus")
    assert status == 2 and "--bogus" in err


def test_bench_runs_a_script_without_main(capsys, monkeypatch, tmp_path):
    script = tmp_path / "benchmarks" / "run.py"
    script.parent.mkdir()
    script.write_text("import sys\nprint('argv', sys.argv[1:])\nsys.exit(4)\n")
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(capsys, "bench", "--full")
    assert status == 4
    assert "argv ['--full']" in out


def test_bench_outside_a_checkout(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "PACKAGE_DIR", tmp_path / "site-packages" / "refsr_blocks")
    status, _, err = run(capsys, "bench")
    assert_user_error(status, err, "source checkout")


def test_bench_finds_the_repository_script():
    """From this checkout, ``bench`` finds ``benchmarks/run.py`` next to the package."""
    script = cli.benchmark_script()
    if not (Path(cli.PACKAGE_DIR).parent / "benchmarks" / "run.py").is_file():
        pytest.skip("no benchmarks/run.py in this checkout")
    assert script is not None and script.name == "run.py"
