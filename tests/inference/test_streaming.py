"""Streaming inference: a result written to a PNG in strips equals the in-memory result, never
leaves a partial file, and sizes that cannot fit are refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from small import SMALL_PARAMS, TINY_CROSSNET

from refsr_blocks import Predictor, build_model
from refsr_blocks.core.errors import InputError
from refsr_blocks.data import save_image
from refsr_blocks.inference import predictor as predictor_module
from refsr_blocks.inference import streaming
from refsr_blocks.inference.streaming import ReferenceRows, stream_to_png, upsampler_halo
from refsr_blocks.inference.tiling import super_resolve, upsample_whole


def _tiny_crossnet(upscale: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = {**TINY_CROSSNET, "params": {**TINY_CROSSNET["params"], "upscale": upscale}}
    return build_model(spec).eval()


def _tiny_ttsr() -> torch.nn.Module:
    torch.manual_seed(0)
    spec = SMALL_PARAMS[("model", "ttsr")]
    fusion = {"name": "ttsr_csfi", "params": {"blocks": [1, 1, 1, 1]}}
    return build_model(
        {"model": "ttsr", "params": spec["params"], "components": {**spec["components"], "fusion": fusion}}
    )


def _files(tmp_path, h: int, w: int, scale: int) -> tuple:
    """An LR image and a reference at the output size that shares its content (shifted), as 8-bit PNGs."""
    g = torch.Generator().manual_seed(h * 7 + w)
    hr = torch.nn.functional.interpolate(torch.rand(1, 3, h, w, generator=g), scale_factor=scale, mode="bicubic")
    hr = hr.clamp(0, 1)[0]
    lr = torch.nn.functional.avg_pool2d(hr[None], scale)[0]
    ref = torch.roll(hr, shifts=(3, -5), dims=(1, 2))
    save_image(lr, tmp_path / "lr.png")
    save_image(ref, tmp_path / "ref.png")
    return tmp_path / "lr.png", tmp_path / "ref.png"


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.mark.parametrize("build, scale", [(_tiny_crossnet, 2), (_tiny_ttsr, 4)], ids=["crossnet_staged", "ttsr"])
def test_streamed_png_equals_the_in_memory_result(tmp_path, build, scale) -> None:
    model = build() if build is _tiny_ttsr else build(scale)
    lr_file, ref_file = _files(tmp_path, 40, 52, scale)
    from refsr_blocks.data import load_image

    lr, ref = load_image(lr_file)[None], load_image(ref_file)[None]
    window, stride = 32 * scale // 2 * 2, 24 * scale // 2 * 2  # several bands and columns of windows
    expected = super_resolve(model, lr, ref, window=window, stride=stride, progress=False)
    save_image(expected[0], tmp_path / "memory.png")
    with ReferenceRows(ref_file) as rows, torch.inference_mode():
        stream_to_png(model, lr, rows, tmp_path / "streamed.png", window=window, stride=stride)
    streamed, in_memory = _read(tmp_path / "streamed.png"), _read(tmp_path / "memory.png")
    assert streamed.shape == in_memory.shape == (40 * scale, 52 * scale, 3)
    assert np.abs(streamed - in_memory).max() <= 1  # one 8-bit level: float order of the convolutions
    assert (streamed != in_memory).mean() < 0.01


def test_the_shared_shift_estimated_on_the_central_region_matches_the_whole_image(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    spec = {
        **TINY_CROSSNET,
        "components": {**TINY_CROSSNET["components"], "prealign": {"name": "phase_correlation", "params": {}}},
    }
    model = build_model(spec).eval()
    lr_file, ref_file = _files(tmp_path, 48, 60, 2)  # the reference is the image shifted by (3, -5)
    from refsr_blocks.data import load_image

    lr, ref = load_image(lr_file)[None], load_image(ref_file)[None]
    with torch.inference_mode():
        whole = model.global_alignment(upsample_whole(model.upsampler, lr), ref)
    monkeypatch.setattr(streaming, "PRIOR_SIDE", 64)  # a central 64×64 of the 96×120 output
    with ReferenceRows(ref_file) as rows, torch.inference_mode():
        central = streaming._central_prior(model, lr, rows, 2, upsampler_halo(model.upsampler), lambda x: x)
        stream_to_png(model, lr, rows, tmp_path / "streamed.png", window=48, stride=40)
    assert whole is not None and central["prior"]["shift"].tolist() == whole["shift"].tolist()
    assert whole["shift"].abs().sum() > 0  # a shift was found, so the check means something
    expected = super_resolve(model, lr, ref, window=48, stride=40, progress=False)
    save_image(expected[0], tmp_path / "memory.png")
    assert np.abs(_read(tmp_path / "streamed.png") - _read(tmp_path / "memory.png")).max() <= 1


def test_upsampler_rows_with_the_halo_equal_the_whole_image() -> None:
    model = _tiny_crossnet(4)
    lr = torch.rand(1, 3, 37, 23)
    halo = upsampler_halo(model.upsampler)
    with torch.inference_mode():
        whole = upsample_whole(model.upsampler, lr)
        band = streaming._upsampled_rows(model.upsampler, lr, 11, 20, 4, halo, lambda x: x)
        blocks = streaming._upsampled_rows(model.upsampler, lr, 11, 20, 4, halo, lambda x: x, columns=7)
        too_little = streaming._upsampled_rows(model.upsampler, lr, 11, 20, 4, 0, lambda x: x, columns=7)
    torch.testing.assert_close(band, whole[..., 44:80, :], atol=1e-5, rtol=0)
    torch.testing.assert_close(blocks, whole[..., 44:80, :], atol=1e-5, rtol=0)  # 7 LR columns at a time
    assert (too_little - whole[..., 44:80, :]).abs().max() > 1e-3  # the halo is what makes it exact


def test_to_file_streams_large_results_and_matches_the_call(tmp_path, monkeypatch) -> None:
    model = _tiny_crossnet(2)
    lr_file, ref_file = _files(tmp_path, 40, 52, 2)
    predictor = Predictor(model, device="cpu", precision="fp32", window=48, stride=40)
    in_memory = np.asarray(predictor(lr_file, ref_file)).astype(int)
    monkeypatch.setattr(predictor_module, "STREAM_ABOVE_PIXELS", 100)
    calls = []
    monkeypatch.setattr(predictor_module, "stream_to_png", lambda *a, **k: calls.append(1) or stream_to_png(*a, **k))
    out = predictor.to_file(lr_file, ref_file, tmp_path / "sr.png")
    assert calls and out == tmp_path / "sr.png"
    assert np.abs(_read(out) - in_memory).max() <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png", "ref.png", "sr.png"]  # no spill, no partial
    with pytest.raises(InputError, match="already exists"):
        predictor.to_file(lr_file, ref_file, tmp_path / "sr.png")


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "in_memory"])
def test_sr_keeps_freed_memory_only_when_nothing_is_streamed(tmp_path, monkeypatch, mallopt_calls, streamed) -> None:
    """A retained glibc heap fragments as bands and windows come and go (about half again the
    peak of a streamed run): `sr` keeps freed memory only for results computed in memory, and
    gives it back at once when a result is streamed."""
    from refsr_blocks import save_model
    from refsr_blocks.inference import runtime
    from refsr_blocks.tools.cli import main

    if streamed:
        monkeypatch.setattr(predictor_module, "STREAM_ABOVE_PIXELS", 100)
    lr_file, ref_file = _files(tmp_path, 40, 52, 2)
    save_model(_tiny_crossnet(2), tmp_path / "tiny.safetensors")
    args = ["sr", "--lr", str(lr_file), "--ref", str(ref_file), "--out", str(tmp_path / "sr.png")]
    assert main([*args, "--checkpoint", str(tmp_path / "tiny.safetensors"), "--window", "48"]) == 0
    assert _read(tmp_path / "sr.png").shape == (80, 104, 3)
    kept = [(runtime._M_MMAP_MAX, 0), (runtime._M_TRIM_THRESHOLD, runtime._INT_MAX)]
    given_back = [(runtime._M_MMAP_THRESHOLD, runtime.RELEASE_ABOVE_BYTES), (runtime._M_ARENA_MAX, 2)]
    assert mallopt_calls == (given_back if streamed else kept)


def test_an_interrupted_stream_leaves_no_file(tmp_path, monkeypatch) -> None:
    model = _tiny_crossnet(2)
    lr_file, ref_file = _files(tmp_path, 40, 52, 2)
    predictor = Predictor(model, device="cpu", precision="fp32", window=48, stride=40)
    monkeypatch.setattr(predictor_module, "STREAM_ABOVE_PIXELS", 100)
    calls = {"n": 0}
    fuse = model.fuse

    def failing_fuse(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return fuse(*args, **kwargs)

    monkeypatch.setattr(model, "fuse", failing_fuse)
    with pytest.raises(KeyboardInterrupt):
        predictor.to_file(lr_file, ref_file, tmp_path / "sr.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png", "ref.png"]


def test_streaming_refuses_what_it_cannot_do_before_any_work(tmp_path, monkeypatch) -> None:
    model = _tiny_crossnet(2)
    lr_file, ref_file = _files(tmp_path, 40, 52, 2)
    save_image(torch.rand(3, 50, 60), tmp_path / "small_ref.png")
    predictor = Predictor(model, device="cpu", precision="fp32")
    monkeypatch.setattr(predictor_module, "STREAM_ABOVE_PIXELS", 100)
    with pytest.raises(InputError, match=r"needs a PNG: name the output 'sr.png'"):
        predictor.to_file(lr_file, ref_file, tmp_path / "sr.jpg")
    with pytest.raises(InputError, match=r"must be 104×80 \(width×height\), got 60×50"):
        predictor.to_file(lr_file, tmp_path / "small_ref.png", tmp_path / "sr.png")
    monkeypatch.setattr(streaming, "available_memory", lambda: 2**20)
    with pytest.raises(InputError, match=r"needs about .* GiB of memory and 0.0 GiB is available: pass a smaller"):
        predictor.to_file(lr_file, ref_file, tmp_path / "sr.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png", "ref.png", "small_ref.png"]


def test_an_in_memory_result_too_large_for_the_machine_is_refused_with_the_way_out(monkeypatch) -> None:
    predictor = Predictor(_tiny_crossnet(2), device="cpu", precision="fp32")
    monkeypatch.setattr(streaming, "available_memory", lambda: 10**4)
    with pytest.raises(InputError, match=r"a 64×48 result held in memory needs .* Predictor.to_file"):
        predictor(torch.rand(3, 24, 32), torch.rand(3, 48, 64))


def test_reference_rows_round_trip_8_bit_images(tmp_path) -> None:
    image = (torch.rand(3, 300, 17) * 255).round() / 255  # more rows than one spill write
    save_image(image, tmp_path / "ref.png")
    with ReferenceRows(tmp_path / "ref.png", spill_dir=tmp_path) as rows:
        assert rows.size == (300, 17)
        torch.testing.assert_close(rows.rows(250, 300)[0], image[:, 250:], atol=1e-6, rtol=0)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.png"]  # the spill file has no name
