"""The trainer: learning, bit-exact resume, atomic checkpoints, no overwriting, NaN handling."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from refsr_blocks import CheckpointError, build_model, load_model
from refsr_blocks.core.checkpoint import read_metadata
from refsr_blocks.core.registry import register_component
from refsr_blocks.data.entries import build_dataset
from refsr_blocks.evaluation.references import REFERENCE_METADATA_KEY, prepare_reference
from refsr_blocks.train import RunDirectory, RunExistsError, TrainingDivergedError, load_config, train, train_main


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _assert_same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def _events(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def test_training_reduces_the_loss(make_config, tmp_path) -> None:
    config = load_config(make_config({"schedule": {"steps": 12, "milestones": [10]}, "runtime": {"val_every": 12}}))
    dataset = build_dataset(config.data.train, scale=2, default_seed=123, path="data.train")
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    loss = nn.L1Loss()

    def fixed_batch_loss(model: nn.Module) -> float:
        with torch.no_grad():
            return loss(model.eval()(batch["lr"], batch["ref"]), batch["hr"]).item()

    torch.manual_seed(config.seed)
    before = fixed_batch_loss(build_model(config.model))
    result = train(config, tmp_path / "run")
    after = fixed_batch_loss(load_model(result.final_model))
    assert result.finished and result.step == 12
    assert after < 0.9 * before, (before, after)
    train_losses = [e["loss"] for e in _events(tmp_path / "run", "train")]
    assert sum(train_losses[-3:]) < sum(train_losses[:3])


def test_resume_reaches_the_same_weights_bit_for_bit(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}}))
    straight = train(config, tmp_path / "straight")
    half = train(config, tmp_path / "resumed", max_steps=2)
    assert (half.step, half.finished) == (2, False)
    resumed = train(config, tmp_path / "resumed", resume=True)
    assert (resumed.step, resumed.finished) == (4, True)
    _assert_same_weights(straight.final_model, resumed.final_model)
    state_a = torch.load(straight.checkpoint / "training_state.pt", weights_only=True)
    state_b = torch.load(resumed.checkpoint / "training_state.pt", weights_only=True)
    for key in ("step", "epoch", "sampler", "scheduler"):
        assert state_a[key] == state_b[key]
    for sa, sb in zip(state_a["optimizer"]["state"].values(), state_b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the log of the resumed run has each step once
    assert [e["step"] for e in _events(tmp_path / "resumed", "train")] == [1, 2, 3, 4]
    # a different seed gives different weights: the comparison above can fail
    other = _weights(
        train(load_config(make_config({"seed": 1, "data": {"val": None}})), tmp_path / "seed1").final_model
    )
    first = _weights(straight.final_model)
    assert any(not torch.equal(other[k], first[k]) for k in first)


def test_checkpoints_hold_the_schedule_state(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}}))
    result = train(config, tmp_path / "run")
    run = RunDirectory(tmp_path / "run")
    assert [c.step for c in run.list_checkpoints()] == [2, 4]
    _, state = run.latest_checkpoint().load()
    assert state["step"] == 4 and state["scheduler"]["last_epoch"] == 4
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.5)
    assert set(state["rng"]) >= {"python", "numpy", "torch", "generators"}
    model = load_model(result.checkpoint / "model.safetensors")  # the weights alone rebuild the model
    assert model.spec == config.model
    assert read_metadata(result.final_model)[REFERENCE_METADATA_KEY] == "real"


def test_old_checkpoints_are_pruned(make_config, tmp_path) -> None:
    config = load_config(
        make_config({"data": {"val": None}, "runtime": {"checkpoint_every": 1, "keep_checkpoints": 2}})
    )
    train(config, tmp_path / "run")
    assert [c.step for c in RunDirectory(tmp_path / "run").list_checkpoints()] == [3, 4]


def test_refuses_to_overwrite_a_run(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2}}))
    out = tmp_path / "run"
    train(config, out)
    # (.lock is the folder's lock, not part of the run: it stays when --force moves the run aside)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(RunExistsError, match="--resume"):
        train(config, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert before == after
    # the command line reports it as an error, without a traceback
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(config.to_dict()))
    assert train_main([str(config_file), "--out", str(out)]) == 2
    # --force keeps the old run in a replaced-* folder
    train(config, out, force=True)
    (backup,) = out.glob("replaced-*")
    for relative, data in before.items():
        assert (backup / relative).read_bytes() == data, relative


def test_resume_without_checkpoint_starts_fresh_and_resume_rejects_changes(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2}}))
    result = train(config, tmp_path / "run", resume=True)
    assert result.step == 2
    changed = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2, "batch_size": 4}}))
    with pytest.raises(Exception, match="schedule.batch_size"):
        train(changed, tmp_path / "run", resume=True)
    # the number of steps may grow on resume
    longer = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 3}}))
    assert train(longer, tmp_path / "run", resume=True).step == 3


def test_interrupted_checkpoint_write_keeps_the_previous_one(make_config, tmp_path, monkeypatch) -> None:
    config = load_config(make_config({"data": {"val": None}}))
    out = tmp_path / "run"
    train(config, out, max_steps=2)
    run = RunDirectory(out)
    good = run.latest_checkpoint()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*step-00000004.*simulated.*intact"):
        train(config, out, resume=True)
    monkeypatch.undo()
    assert run.latest_checkpoint() == good
    assert not list(run.checkpoints.glob(".partial-*"))
    _, state = good.load()
    assert state["step"] == 2
    # a folder left half-written by a killed process is ignored, then cleaned up
    stale = run.checkpoints / "step-00000004"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"torn")
    (run.checkpoints / ".partial-step-00000004-999").mkdir()
    assert run.latest_checkpoint() == good
    result = train(config, out, resume=True)
    assert result.step == 4 and not list(run.checkpoints.glob(".partial-*"))


def test_latest_falls_back_to_the_newest_complete_checkpoint(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}}))
    train(config, tmp_path / "run")
    run = RunDirectory(tmp_path / "run")
    (run.checkpoints / "latest").unlink()
    assert run.latest_checkpoint().step == 4


class _NaNAfter(nn.Module):
    """L1 loss that turns NaN from its ``after``-th call on."""

    calls = 0

    def __init__(self, after: int = 3) -> None:
        super().__init__()
        self.after = after

    def forward(self, pred, target):
        type(self).calls += 1
        loss = (pred - target).abs().mean()
        return loss * float("nan") if type(self).calls >= self.after else loss


def test_nan_loss_stops_with_a_clear_error(make_config, tmp_path, fresh_registry) -> None:
    register_component("loss", "test_nan_after", _NaNAfter)
    _NaNAfter.calls = 0
    config = load_config(
        make_config({"data": {"val": None}, "schedule": {"loss": {"name": "test_nan_after", "params": {"after": 4}}}})
    )
    with pytest.raises(TrainingDivergedError, match="step-00000002") as info:
        train(config, tmp_path / "run")
    assert "step 4" in str(info.value)
    run = RunDirectory(tmp_path / "run")
    assert [c.step for c in run.list_checkpoints()] == [2]
    assert not run.final_model.exists()


def test_stops_at_the_time_limit_with_a_checkpoint(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}, "runtime": {"time_limit_minutes": 1e-9}}))
    result = train(config, tmp_path / "run")
    assert (result.step, result.finished) == (1, False)
    assert RunDirectory(tmp_path / "run").latest_checkpoint().step == 1


def test_blank_reference_run(make_config, tmp_path) -> None:
    ref = torch.rand(2, 3, 8, 8)
    assert prepare_reference(ref, "real") is ref
    assert torch.equal(prepare_reference(ref, "blank"), torch.full_like(ref, 0.5))
    config = load_config(make_config({"reference": "blank", "schedule": {"steps": 1}}))
    result = train(config, tmp_path / "run")
    assert read_metadata(result.final_model)[REFERENCE_METADATA_KEY] == "blank"
    assert _events(tmp_path / "run", "val")[-1]["psnr"] > 0


def test_bf16_autocast_on_cpu_trains(make_config, tmp_path) -> None:
    config = load_config(make_config({"data": {"val": None}, "schedule": {"steps": 2}, "runtime": {"amp": "bf16"}}))
    result = train(config, tmp_path / "run")
    assert result.step == 2
    assert all(torch.isfinite(w).all() for w in _weights(result.final_model).values())


def test_fingerprint_of_channels_last_weights() -> None:
    """1×1 conv weights in channels_last are not contiguous-viewable; the fingerprint must not crash."""
    from torch import nn

    from refsr_blocks.train.trainer import _fingerprint

    plain = nn.Conv2d(16, 4, 1)
    fast = nn.Conv2d(16, 4, 1)
    fast.load_state_dict(plain.state_dict())
    fast.to(memory_format=torch.channels_last)
    assert _fingerprint(fast) == _fingerprint(plain)
