"""``refsr-blocks sr``: the shipped weights by default, folders and several pairs, device errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from refsr_blocks.assets import pretrained_path
from refsr_blocks.core.errors import InputError
from refsr_blocks.data import load_image, save_image
from refsr_blocks.tools.cli import main, sr_pairs


@pytest.fixture
def checkpoint(tiny_checkpoint: Path) -> Path:
    return tiny_checkpoint


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
    assert status == 2 and "the reference must be 32×24 (width×height) for a 16×12 LR image, got 32×20" in err


@pytest.mark.slow
@pytest.mark.skipif(not pretrained_path().is_file(), reason="default weights not installed")
def test_the_shipped_weights_are_the_default(capsys, tmp_path, retain_calls) -> None:
    from refsr_blocks.assets import demo_pair_files

    files = demo_pair_files()
    out = tmp_path / "sr.png"
    status, stdout, err = _run(
        capsys, "sr", "--lr", str(files["lr"]), "--ref", str(files["ref"]), "--out", str(out), "--device", "cpu"
    )
    assert status == 0, err
    assert f"wrote {out} (640×480)" in stdout and load_image(out).shape == (3, 480, 640)
    assert retain_calls == [True]


# -- nothing a user made is replaced without --force ------------------------------------------------------


def _hashes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (symlinks not followed) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def pair_dir(tmp_path) -> Path:
    """``d/lr.png`` and ``d/ref.png``: a one-pair folder (the tiny checkpoint is ×2)."""
    _write(tmp_path / "d", "lr.png", 12, 16, 0)
    _write(tmp_path / "d", "ref.png", 24, 32, 1)
    return tmp_path / "d"


def _sr(capsys, checkpoint: Path, lr: Path | str, ref: Path | str, out: Path | str, *extra: str):
    argv = ["sr", "--checkpoint", str(checkpoint), "--lr", str(lr), "--ref", str(ref), "--out", str(out)]
    return _run(capsys, *argv, "--device", "cpu", *extra)


@pytest.mark.parametrize("target", ["lr.png", "ref.png", "lr_link.png", "lr_hardlink.png"])
@pytest.mark.parametrize("force", [False, True])
def test_an_output_never_replaces_an_input(capsys, pair_dir, checkpoint, target, force) -> None:
    """`--out` = the LR image, the reference, a symlink or a hard link to one: refused even with --force."""
    (pair_dir / "lr_link.png").symlink_to(pair_dir / "lr.png")
    (pair_dir / "lr_hardlink.png").hardlink_to(pair_dir / "lr.png")
    before = _hashes(pair_dir)
    status, stdout, err = _sr(
        capsys,
        checkpoint,
        pair_dir / "lr.png",
        pair_dir / "ref.png",
        pair_dir / target,
        *(["--force"] if force else []),
    )
    assert status == 2 and stdout == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the output "), err
    assert str(pair_dir / target) in err and "would replace your input" in err and "choose another output" in err
    assert _hashes(pair_dir) == before, "no input changed"


def test_the_out_folder_may_not_be_the_lr_folder(capsys, tmp_path, checkpoint) -> None:
    for i, stem in enumerate(("a", "b")):
        _write(tmp_path / "lr", f"{stem}.png", 12, 16, i)
    ref = _write(tmp_path, "ref.png", 24, 32, 5)
    before = _hashes(tmp_path / "lr")
    for out in (tmp_path / "lr", tmp_path / "lr" / "."):
        status, _, err = _sr(capsys, checkpoint, tmp_path / "lr", ref, out, "--force")
        assert status == 2 and "is the input folder" in err and "choose another --out folder" in err, err
    assert _hashes(tmp_path / "lr") == before


def test_an_existing_output_needs_force(capsys, pair_dir, checkpoint, tmp_path) -> None:
    out = tmp_path / "sr.png"
    out.write_bytes(b"the user's own file")
    status, _, err = _sr(capsys, checkpoint, pair_dir / "lr.png", pair_dir / "ref.png", out)
    assert status == 2 and f"error: the output file {str(out)!r} already exists: pass --force to replace it" in err
    assert out.read_bytes() == b"the user's own file"
    status, stdout, err = _sr(capsys, checkpoint, pair_dir / "lr.png", pair_dir / "ref.png", out, "--force")
    assert status == 0 and "wrote" in stdout, err
    assert load_image(out).shape == (3, 24, 32)


def test_an_existing_output_in_a_folder_is_refused_before_any_work(capsys, tmp_path, checkpoint, monkeypatch) -> None:
    """The check runs before the model is loaded: a refusal costs no compute."""
    for i, stem in enumerate(("a", "b")):
        _write(tmp_path / "lr", f"{stem}.png", 12, 16, i)
    ref = _write(tmp_path, "ref.png", 24, 32, 5)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").write_bytes(b"mine")
    loaded: list[object] = []
    monkeypatch.setattr("refsr_blocks.inference.predictor.Predictor.__init__", lambda *a, **k: loaded.append(a))
    status, _, err = _sr(capsys, checkpoint, tmp_path / "lr", ref, tmp_path / "out")
    assert status == 2 and "out/b.png' already exists: pass --force" in err, err
    assert loaded == [] and not (tmp_path / "out" / "a.png").exists(), "nothing loaded or written before refusing"


def test_an_unknown_output_extension_is_an_error_not_a_folder(capsys, pair_dir, checkpoint, tmp_path) -> None:
    status, _, err = _sr(capsys, checkpoint, pair_dir / "lr.png", pair_dir / "ref.png", tmp_path / "o.xyz")
    assert status == 2 and f"error: --out {str(tmp_path / 'o.xyz')!r}" in err
    assert "unknown image extension '.xyz'" in err and ".png" in err, err
    assert not (tmp_path / "o.xyz").exists()


def test_ambiguous_stems_in_a_reference_folder_are_an_error(tmp_path) -> None:
    for i, stem in enumerate(("a", "b")):
        _write(tmp_path / "lr", f"{stem}.png", 12, 16, i)
        _write(tmp_path / "ref", f"{stem}.png", 24, 32, 10 + i)
    _write(tmp_path / "ref", "a.jpg", 24, 32, 20)
    with pytest.raises(InputError, match=r"'.*a.jpg' and '.*a.png' have the same name stem 'a'.*ambiguous"):
        sr_pairs([tmp_path / "lr"], [tmp_path / "ref"], tmp_path / "out")
    _write(tmp_path / "lr", "a.jpg", 12, 16, 3)  # two LR images would both become out/a.png
    with pytest.raises(InputError, match=r"LR files .* have the same name stem 'a'"):
        sr_pairs([tmp_path / "lr"], [tmp_path / "ref" / "b.png"], tmp_path / "out")


def test_a_fifo_given_as_an_image_says_what_it_is(capsys, tmp_path, checkpoint) -> None:
    """Not "does not exist", and never opened (opening a FIFO blocks until a writer comes)."""
    import os

    ref = _write(tmp_path, "ref.png", 24, 32, 5)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    status, _, err = _sr(capsys, checkpoint, fifo, ref, tmp_path / "o.png")
    assert status == 2 and f"error: LR image {str(fifo)!r} is a FIFO (named pipe), not an image file" in err, err
