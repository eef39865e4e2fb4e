"""EDSR-PyTorch MDSR → refsr-blocks mdsr: a source-layout network in 0–255 with mean shift, outputs equal."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from torch import nn

from refsr_blocks import load_model
from refsr_blocks.components.upsamplers.mdsr import MDSR, RGB_MEAN
from refsr_blocks.interop import ConversionError, edsr_mdsr
from refsr_blocks.interop.command import add_convert_arguments, run_convert
from refsr_blocks.interop.command import main as command_main
from refsr_blocks.tools.cli import main as cli_main

SMALL_TARGET = {
    "model": "crossnet",
    "params": {"channels": 8, "scales": 3},
    "components": {"flow": {"name": "flownets", "params": {"width": 0.125}}},
}


class _SourceResBlock(nn.Module):
    """EDSR-PyTorch's ResBlock layout: body = [conv, ReLU, conv], res_scale 1."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2), nn.ReLU(True), nn.Conv2d(c, c, k, padding=k // 2))

    def forward(self, x):
        return x + self.body(x)


class _SourceMDSR(nn.Module):
    """A network with EDSR-PyTorch MDSR's module names and value conventions (0–255, MeanShift convs)."""

    def __init__(self, scales: list[int], blocks: int, c: int, rgb_range: float = 255.0) -> None:
        super().__init__()
        mean = torch.tensor(RGB_MEAN)
        self.sub_mean = nn.Conv2d(3, 3, 1)
        self.add_mean = nn.Conv2d(3, 3, 1)
        for conv, sign in ((self.sub_mean, -1), (self.add_mean, 1)):
            conv.weight.data = torch.eye(3).view(3, 3, 1, 1)
            conv.bias.data = sign * rgb_range * mean
        self.head = nn.Sequential(nn.Conv2d(3, c, 3, padding=1))
        self.pre_process = nn.ModuleList(nn.Sequential(_SourceResBlock(c, 5), _SourceResBlock(c, 5)) for _ in scales)
        self.body = nn.Sequential(*(_SourceResBlock(c, 3) for _ in range(blocks)), nn.Conv2d(c, c, 3, padding=1))
        ups = []
        for s in scales:
            layers: list[nn.Module] = []
            if s == 3:
                layers += [nn.Conv2d(c, 9 * c, 3, padding=1), nn.PixelShuffle(3)]
            else:
                for _ in range(int(math.log2(s))):
                    layers += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2)]
            ups.append(nn.Sequential(*layers))
        self.upsample = nn.ModuleList(ups)
        self.tail = nn.Sequential(nn.Conv2d(c, 3, 3, padding=1))
        # Biases of the size a network trained in 0-255 has, so that a missing 1/255 shows.
        g = torch.Generator().manual_seed(1)
        for name, p in self.named_parameters():
            if name.endswith("bias") and "mean" not in name:
                p.data = torch.randn(p.shape, generator=g) * 5.0

    def forward(self, x255, idx):
        x = self.head(self.sub_mean(x255))
        x = self.pre_process[idx](x)
        x = x + self.body(x)
        return self.add_mean(self.tail(self.upsample[idx](x)))


@pytest.fixture
def source():
    torch.manual_seed(0)
    return _SourceMDSR([3, 2, 4], blocks=2, c=8)


def test_outputs_equal_within_float_tolerance(source):
    params, tensors = edsr_mdsr.convert_state_dict(source.state_dict())
    assert params == {"num_blocks": 2, "channels": 8, "scales": [3, 2, 4]}
    ours = MDSR(scale=4, extra_scales=(2, 3), num_blocks=2, channels=8)
    ours.load_state_dict(tensors, strict=True)
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        for idx, scale in enumerate([3, 2, 4]):
            expected = source(x * 255, idx) / 255
            got = ours(x, scale=scale)
            assert got.shape == (2, 3, 9 * scale, 11 * scale)
            torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    # Without the 1/255 on the biases the outputs would differ grossly (the test can fail).
    assert tensors["head.bias"].abs().max() < 1 and source.head[0].bias.abs().max() > 1


def test_convert_file_into_a_checkpoint(tmp_path, source):
    src = tmp_path / "mdsr_x234.pt"
    torch.save(source.state_dict(), src)
    out = edsr_mdsr.convert(src, tmp_path / "out.safetensors", model=SMALL_TARGET)
    model = load_model(out)
    assert model.spec["components"]["upsampler"]["name"] == "mdsr"
    assert model.upscale == 4 and model.upsampler.scales == [2, 3, 4]
    x = torch.rand(1, 3, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(model.upsampler(x), source(x * 255, 2) / 255, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("entry", ["refsr-blocks", "python -m"])
def test_command_line_entry(tmp_path, source, capsys, entry):
    """``refsr-blocks convert`` and ``python -m refsr_blocks.interop.command`` write the same checkpoint."""
    src = tmp_path / "mdsr.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, src)
    spec = tmp_path / "target.json"
    spec.write_text(json.dumps(SMALL_TARGET))
    argv = ["edsr_mdsr", str(src), "-o", str(tmp_path / "c.safetensors"), "--model", str(spec), "--upscale", "2"]
    status = cli_main(["convert", *argv]) if entry == "refsr-blocks" else command_main(argv)
    assert status == 0
    assert "edsr_mdsr" in capsys.readouterr().out
    model = load_model(tmp_path / "c.safetensors")
    assert model.upscale == 2
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(
            model.upsampler(x), source(x * 255, 1) / 255, atol=2e-5, rtol=1e-4
        )  # scales [3, 2, 4]: ×2 is index 1


def test_command_line_reports_a_bad_source_on_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a torch file")
    status = cli_main(["convert", "edsr_mdsr", str(bad), "-o", str(tmp_path / "x.safetensors")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("error:") and "notes.pt" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()


def test_command_line_does_not_replace_an_existing_checkpoint(tmp_path, source, capsys):
    src = tmp_path / "mdsr.pt"
    torch.save(source.state_dict(), src)
    spec = tmp_path / "target.json"
    spec.write_text(json.dumps(SMALL_TARGET))
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"a checkpoint the user made")
    argv = ["convert", "edsr_mdsr", str(src), "-o", str(mine), "--model", str(spec)]
    assert cli_main(argv) == 2
    assert "already exists" in capsys.readouterr().err and mine.read_bytes() == b"a checkpoint the user made"
    assert cli_main([*argv, "--force"]) == 0
    assert load_model(mine).upscale == 4


def test_refuses_pickled_objects_and_wrong_layouts(tmp_path, source):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": source.state_dict(), "args": argparse.Namespace(scale=[2, 3, 4])}, unsafe)
    with pytest.raises(ConversionError, match="refusing to unpickle"):
        edsr_mdsr.convert(unsafe, tmp_path / "x.safetensors")
    with pytest.raises(ConversionError, match="does not exist"):
        edsr_mdsr.convert(tmp_path / "missing.pt", tmp_path / "x.safetensors")
    state = source.state_dict()
    with pytest.raises(ConversionError, match="unexpected tensors"):
        edsr_mdsr.convert_state_dict({**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match="Is rgb_range right"):
        edsr_mdsr.convert_state_dict(state, rgb_range=1.0)
    with pytest.raises(ConversionError, match="not an EDSR-PyTorch MDSR"):
        edsr_mdsr.convert_state_dict({"conv.weight": torch.zeros(1)})
    src = tmp_path / "ok.pt"
    torch.save(state, src)
    with pytest.raises(ConversionError, match="upscale=8 is not among"):
        edsr_mdsr.convert(src, tmp_path / "x.safetensors", upscale=8)


def test_command_line_rejects_upscale_for_other_formats(tmp_path):
    parser = add_convert_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["crossnet_authors", str(tmp_path / "cp.pth"), "-o", str(tmp_path / "o.safetensors"), "--upscale", "4"]
    )
    with pytest.raises(ConversionError, match="--upscale applies to edsr_mdsr only"):
        run_convert(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["caffe", "x.pth", "-o", "y"])
