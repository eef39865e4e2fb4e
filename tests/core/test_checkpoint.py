"""save_model / load_model: one file rebuilds the model; bad files give clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from small import TINY_CROSSNET

from refsr_blocks import CheckpointError, build_model, load_model, save_model
from refsr_blocks.core.checkpoint import read_metadata


@pytest.fixture
def model():
    return build_model(TINY_CROSSNET).eval()


def test_round_trip_gives_the_same_outputs(model, tmp_path) -> None:
    path = save_model(model, tmp_path / "m.safetensors", metadata={"step": 7})
    loaded = load_model(path).eval()
    assert loaded.spec == model.spec
    lr, ref = torch.rand(1, 3, 9, 11), torch.rand(1, 3, 18, 22)
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr, ref), model(lr, ref), rtol=0, atol=0)
    assert read_metadata(path)["step"] == "7"


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_file(model, tmp_path) -> None:
    path = save_model(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_foreign_files(tmp_path) -> None:
    pickle_like = tmp_path / "model.pt"
    pickle_like.write_bytes(b"\x80\x04\x95not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(pickle_like)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without a refsr-blocks spec"):
        load_model(plain)


def test_weights_not_matching_spec(model, tmp_path) -> None:
    path = tmp_path / "mismatch.safetensors"
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(path), metadata={"refsr_blocks.spec": json.dumps(model.spec)})
    with pytest.raises(CheckpointError, match="do not match its spec"):
        load_model(path)


def test_invalid_spec_in_file(model, tmp_path) -> None:
    path = tmp_path / "badspec.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"refsr_blocks.spec": '{"model": "nope"}'})
    with pytest.raises(CheckpointError, match="invalid spec"):
        load_model(path)


def test_model_without_spec_cannot_be_saved(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no .spec"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_failed_save_keeps_the_previous_file(model, tmp_path, monkeypatch) -> None:
    path = save_model(model, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("refsr_blocks.core.checkpoint.save_file", broken)
    with pytest.raises(CheckpointError, match=r"cannot write '.*m\.safetensors'.*No space left on device"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_saved_file_has_the_usual_permissions(model, tmp_path) -> None:
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    path = save_model(model, tmp_path / "m.safetensors")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_loaded_spec_never_downloads_pretrained_weights(tmp_path, monkeypatch) -> None:
    import timm.models._builder
    from safetensors.torch import load_file

    from refsr_blocks.core.checkpoint import SPEC_KEY

    spec = json.loads(json.dumps(TINY_CROSSNET))
    spec["components"]["lr_encoder"] = {"name": "timm", "params": {}}
    path = save_model(build_model(spec), tmp_path / "timm.safetensors")
    meta = read_metadata(path)
    hostile = json.loads(meta[SPEC_KEY])
    hostile["components"]["lr_encoder"]["params"]["pretrained"] = True
    save_file(load_file(str(path)), str(path), metadata={**meta, SPEC_KEY: json.dumps(hostile)})

    def no_network(*args, **kwargs):
        pytest.fail("load_model asked for pretrained weights (a download)")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.warns(UserWarning, match=r"timm\.safetensors.*components\.lr_encoder\.params\.pretrained set to false"):
        model = load_model(path)
    assert model.spec["components"]["lr_encoder"]["params"]["pretrained"] is False


def test_a_safetensors_error_on_a_full_disk_keeps_the_previous_file(model, tmp_path, monkeypatch) -> None:
    from safetensors import SafetensorError

    path = save_model(model, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, message: "No space left on device" })')

    monkeypatch.setattr("refsr_blocks.core.checkpoint.save_file", full)
    with pytest.raises(CheckpointError, match=r"cannot write '.*m\.safetensors' \(disk full.*No space left"):
        save_model(model, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_a_checkpoint_needing_a_plugin_that_is_not_installed_says_which(fresh_registry, tmp_path) -> None:
    from refsr_blocks.components.flows.flownets import FlowNetSPlus

    class PluginFlow(FlowNetSPlus):
        """A plugin's flow estimator."""

    fresh_registry.register("flow", "gone_flow", PluginFlow, owner="refsr-gone-plugin")
    spec = json.loads(json.dumps(TINY_CROSSNET))
    spec["components"]["flow"] = {"name": "gone_flow", "params": {"width": 0.125}}
    path = save_model(build_model(spec), tmp_path / "m.safetensors")
    fresh_registry.unregister("flow", "gone_flow")
    with pytest.raises(
        CheckpointError, match=r"unknown flow 'gone_flow'.*components of refsr-gone-plugin, not installed"
    ):
        load_model(path)
