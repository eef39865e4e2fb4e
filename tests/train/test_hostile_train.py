"""Hostile conditions for training runs: concurrent trainers, damaged checkpoints,
interrupted pruning, unwritable run folders. See also ``tests/core/test_hostile.py``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import CheckpointError, build_model
from refsr_blocks.train import RunDirectory, RunLockedError, load_config, train, train_main
from refsr_blocks.train.state import RunLock


def _files(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture
def finished_run(make_config, tmp_path):
    config = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2}}))
    out = tmp_path / "run"
    train(config, out)
    return config, out


def test_a_second_trainer_on_a_running_folder_is_refused(finished_run) -> None:
    config, out = finished_run
    before = _files(out)
    with RunLock(out):  # stands for a trainer running in another process (flock is per open file)
        for mode in ("start", "resume", "force"):
            with pytest.raises(RunLockedError, match=r"in use by another training run \(\{\"pid\": \d+"):
                train(config, out, resume=mode == "resume", force=mode == "force")
    assert _files(out) == before  # nothing moved, truncated or appended
    assert train(config, out, resume=True).step == 2  # free again once the holder is gone


def test_the_lock_is_released_when_a_run_fails_to_start(finished_run) -> None:
    config, out = finished_run
    with pytest.raises(Exception, match="already holds a run"):
        train(config, out)
    with RunLock(out) as lock:  # not left locked by the refused start
        assert lock.held


def test_damaged_training_checkpoints_are_refused_on_resume(finished_run) -> None:
    config, out = finished_run
    ckpt = RunDirectory(out).latest_checkpoint()
    for target in (ckpt.state_file, ckpt.model_file):
        original = target.read_bytes()
        data = bytearray(original)
        data[len(data) - 20] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=rf"{target.name}.*(damaged|altered)"):
            train(config, out, resume=True)
        target.write_bytes(original)
    assert train(config, out, resume=True).step == 2


def test_a_schedule_state_of_an_older_version_is_one_error_naming_the_file(finished_run, monkeypatch) -> None:
    """A run whose checkpoints hold MultiStepLR's state (before the schedule was one LambdaLR)."""
    from refsr_blocks.core.errors import RefSRError
    from refsr_blocks.train.state import Checkpoint

    config, out = finished_run
    load = Checkpoint.load

    def old_schedule(self, map_location="cpu"):
        weights, state = load(self, map_location)
        scheduler = {k: v for k, v in state["scheduler"].items() if k != "lr_lambdas"}
        return weights, {**state, "scheduler": {**scheduler, "milestones": {4: 1}, "gamma": 0.5}}

    monkeypatch.setattr(Checkpoint, "load", old_schedule)
    state_file = RunDirectory(out).latest_checkpoint().state_file
    with pytest.raises(RefSRError, match=rf"{state_file.name}' holds a learning-rate schedule of an older"):
        train(config, out, resume=True)
    monkeypatch.undo()
    assert train(config, out, resume=True).step == 2


def test_a_kill_inside_pruning_leaves_no_half_checkpoint(make_config, tmp_path, monkeypatch) -> None:
    config = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2}}))
    out = tmp_path / "run"
    train(config, out, max_steps=2)
    run = RunDirectory(out)
    model = build_model(config.model)
    for step in (3, 4):
        run.save_checkpoint(step, model, {"step": step})
    real_rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):  # dies after deleting one file of the folder
        next(p for p in sorted(path.iterdir())).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr("refsr_blocks.train.state.shutil.rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        run.prune(keep=2)
    monkeypatch.setattr("refsr_blocks.train.state.shutil.rmtree", real_rmtree)
    names = sorted(p.name for p in run.checkpoints.iterdir())
    assert [c.step for c in run.list_checkpoints()] == [3, 4]
    assert any(n.startswith(".deleting-step-00000002") for n in names) and "step-00000002" not in names
    run.prepare(resume=True, force=False)
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest", "step-00000003", "step-00000004"]


def test_train_command_reports_unusable_out_folders_in_one_line(make_config, tmp_path, capsys) -> None:
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(load_config(make_config({"data": {"val": None}})).to_dict()))
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    for out in (a_file, a_file / "run"):
        assert train_main([str(config_file), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert str(a_file) in err
    assert a_file.read_text() == "mine"


def test_disk_full_while_writing_the_state_is_one_error(make_config, tmp_path, monkeypatch) -> None:
    run = RunDirectory(tmp_path / "run")
    model = build_model(TINY_CROSSNET)
    run.save_checkpoint(1, model, {"step": 1})

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"step-00000002.*disk full.*previous checkpoint is intact"):
        run.save_checkpoint(2, model, {"step": 2})
    assert run.latest_checkpoint().step == 1 and not list(run.checkpoints.glob(".partial-*"))


# -- damaged run folders, half-written files, unreadable images, the console --------
_ALIAS_BOMB = "\n".join(
    ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    + [f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
)


def _damage(out, how: str):
    """Damage a finished run's folder; returns the file the error must name."""
    config, metrics = out / "config.yaml", out / "metrics.jsonl"
    if how == "missing config":
        config.unlink()
    elif how == "garbage config":
        config.write_text("{{{ not yaml: [")
    elif how == "alias bomb":
        config.write_text(_ALIAS_BOMB)
    else:  # a null step in the metrics
        lines = metrics.read_text().splitlines()
        entry = json.loads(lines[-1])
        metrics.write_text("\n".join([*lines[:-1], json.dumps({**entry, "step": None})]) + "\n")
        return metrics
    return config


@pytest.mark.parametrize("how", ["missing config", "garbage config", "alias bomb", "null step"])
def test_resuming_a_damaged_run_folder_is_one_error_naming_the_file(finished_run, how, capsys) -> None:
    config, out = finished_run
    named = _damage(out, how)
    config_file = out.parent / "c.json"
    config_file.write_text(json.dumps(config.to_dict()))
    assert train_main([str(config_file), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(named) in err, err
    expected = {"missing config": "is missing", "alias bomb": "aliases", "null step": "integer 'step'"}
    assert expected.get(how, "cannot parse") in err


def test_train_set_values_refuse_yaml_aliases(make_config, tmp_path, capsys) -> None:
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(make_config({"data": {"val": None}})))
    assert train_main([str(config_file), "--out", str(tmp_path / "run"), "--set", "seed=[&a [1, 1], *a, *a]"]) == 2
    err = capsys.readouterr().err
    assert "aliases (*name) are not supported" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_half_written_files_of_a_killed_run_are_removed_on_the_next_start(finished_run) -> None:
    config, out = finished_run
    ours = [out / ".config.yaml.k3_x9qa1.tmp", out / ".model.safetensors.abc.tmp", out / "checkpoints/.latest.q1.tmp"]
    theirs = [out / "notes.tmp", out / ".my.yaml.abc.tmp", out / ".config.yaml.keep.me.tmp"]
    for path in ours + theirs:
        path.write_bytes(b"half")
    assert train(config, out, resume=True).step == 2
    assert not any(p.exists() for p in ours) and all(p.read_bytes() == b"half" for p in theirs)


def test_an_unreadable_training_image_is_named_not_blamed_on_the_disk(
    make_config, tmp_path, monkeypatch, capsys
) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 48, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    config = make_config({"data": {"val": None}})
    config["data"]["train"]["images"] = str(folder)
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(config))
    import refsr_blocks.data.synthetic as synthetic

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(synthetic, "load_image", unreadable)
    assert train_main([str(config_file), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "photos/" in err and "cannot be read" in err and "disk" not in err, err


def test_the_console_shows_a_loss_line_every_log_every_steps_with_progress(make_config, tmp_path, capsys) -> None:
    config = load_config(make_config({"data": {"val": None}, "runtime": {"log_every": 2, "progress": True}}))
    train(config, tmp_path / "run")
    lines = [x for x in capsys.readouterr().out.splitlines() if "loss" in x and x.startswith("step")]
    assert [x.split(":")[0] for x in lines] == ["step 2/4", "step 4/4"] and "PSNR" in lines[0]
    train(config, tmp_path / "quiet", progress=False)
    assert "loss" not in "".join(capsys.readouterr())
