"""``refsr-blocks sr``: the shipped weights by default, folders and several pairs, device errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model, save_model
from refsr_blocks.assets import pretrained_path
from refsr_blocks.core.errors import InputError
from refsr_blocks.data import load_image, save_image
from refsr_blocks.tools.cli import main, sr_pairs


@pytest.fixture(autouse=True)
def no_process_wide_retention(monkeypatch) -> list[bool]:
    """`sr` keeps freed memory for its whole process; record that instead of changing this one's allocator."""
    calls: list[bool] = []
    monkeypatch.setattr("refsr_blocks.inference.runtime.retain_freed_memory", lambda: calls.append(True) or True)
    return calls


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(build_model(TINY_CROSSNET), tmp_path_factory.mktemp("ckpt") / "tiny_x2.safetensors")


def _write(folder: Path, name: str, h: int, w: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save_image(torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed)), path)
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_folders_are_matched_by_stem(capsys, tmp_path, checkpoint) -> None:
    for i, stem in enumerate(("a", "b")):
        _write(tmp_path / "lr", f"{stem}.png", 12, 16, i)
        _write(tmp_path / "ref", f"{stem}.png", 24, 32, 10 + i)
    _write(tmp_path / "ref", "unused.png", 24, 32, 99)
    out = tmp_path / "out"
    status, stdout, err = _run(
        capsys,
        "sr",
        "--checkpoint",
        str(checkpoint),
        "--lr",
        str(tmp_path / "lr"),
        "--ref",
        str(tmp_path / "ref"),
        "--out",
        str(out),
    )
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert stdout.count("wrote") == 2 and load_image(out / "a.png").shape == (3, 24, 32)
    # each output used its own reference: the two differ
    assert not torch.equal(load_image(out / "a.png"), load_image(out / "b.png"))


def test_several_files_with_one_reference(capsys, tmp_path, checkpoint) -> None:
    lrs = [_write(tmp_path, f"{n}.png", 12, 16, i) for i, n in enumerate(("x", "y", "z"))]
    ref = _write(tmp_path, "ref.png", 24, 32, 7)
    argv = ["sr", "--checkpoint", str(checkpoint), "--lr", *map(str, lrs), "--ref", str(ref)]
    status, _, err = _run(capsys, *argv, "--out", str(tmp_path / "out"))
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.png", "y.png", "z.png"]


def test_pairing_mistakes_are_one_line_errors(tmp_path) -> None:
    lrs = [_write(tmp_path / "lr", f"{n}.png", 12, 16, i) for i, n in enumerate(("a", "b"))]
    _write(tmp_path / "ref", "a.png", 24, 32, 5)
    with pytest.raises(InputError, match="no reference in .* named like the LR image\\(s\\) b.png"):
        sr_pairs([tmp_path / "lr"], [tmp_path / "ref"], tmp_path / "out")
    with pytest.raises(InputError, match="need --out to be a folder"):
        sr_pairs(lrs, [tmp_path / "ref" / "a.png"], tmp_path / "out.png")
    refs = [_write(tmp_path, f"r{i}.png", 24, 32, i) for i in range(3)]
    with pytest.raises(InputError, match="2 LR image\\(s\\) but 3 references"):
        sr_pairs(lrs, refs, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image files"):
        sr_pairs([tmp_path / "empty"], refs[:1], tmp_path / "out")
    assert sr_pairs(lrs[:1], refs[:1], tmp_path / "one.png") == [(lrs[0], refs[0], tmp_path / "one.png")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_an_unavailable_device_is_named(capsys, tmp_path, checkpoint) -> None:
    lr, ref = _write(tmp_path, "lr.png", 12, 16, 0), _write(tmp_path, "ref.png", 24, 32, 1)
    argv = ["sr", "--checkpoint", str(checkpoint), "--lr", str(lr), "--ref", str(ref), "--out", str(tmp_path / "o.png")]
    status, _, err = _run(capsys, *argv, "--device", "cuda")
    assert status == 2 and "Traceback" not in err
    assert "error: device 'cuda' is not available" in err and str(checkpoint) not in err
    status, _, err = _run(capsys, *argv, "--device", "tpu")
    assert status == 2 and "unknown device 'tpu'" in err


def test_a_wrong_reference_size_is_a_one_line_error(capsys, tmp_path, checkpoint) -> None:
    lr, ref = _write(tmp_path, "lr.png", 12, 16, 0), _write(tmp_path, "ref.png", 20, 32, 1)
    argv = ["sr", "--checkpoint", str(checkpoint), "--lr", str(lr), "--ref", str(ref), "--out", str(tmp_path / "o.png")]
    status, _, err = _run(capsys, *argv, "--device", "cpu")
    assert status == 2 and "the reference must be 24×32 for a 12×16 LR image, got 20×32" in err


@pytest.mark.slow
@pytest.mark.skipif(not pretrained_path().is_file(), reason="default weights not installed")
def test_the_shipped_weights_are_the_default(capsys, tmp_path, no_process_wide_retention) -> None:
    from refsr_blocks.assets import demo_pair_files

    files = demo_pair_files()
    out = tmp_path / "sr.png"
    status, stdout, err = _run(
        capsys, "sr", "--lr", str(files["lr"]), "--ref", str(files["ref"]), "--out", str(out), "--device", "cpu"
    )
    assert status == 0, err
    assert f"wrote {out} (480×640)" in stdout and load_image(out).shape == (3, 480, 640)
    assert no_process_wide_retention == [True]
