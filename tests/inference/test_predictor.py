"""The one-call API: Predictor and super_resolve_images take any image kind and return a clamped image."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from small import TINY_CROSSNET

from refsr_blocks import Predictor, build_model, super_resolve_images
from refsr_blocks.assets import demo_pair_files, pretrained_path
from refsr_blocks.core.errors import CheckpointError, InputError
from refsr_blocks.data import load_image, save_image
from refsr_blocks.inference import runtime
from refsr_blocks.inference.predictor import DeviceError, resolve_device
from refsr_blocks.layers import FewOutputConv2d, PrepackedConv2d, prepacked


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TINY_CROSSNET)  # ×2


def _pair(h: int = 12, w: int = 16, scale: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(h * 100 + w)
    return torch.rand(3, h, w, generator=g), torch.rand(3, h * scale, w * scale, generator=g)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(_model(), device="cpu", precision="fp32")  # compared with the fp32 model below


def test_every_input_kind_gives_the_same_clamped_result(predictor, tmp_path) -> None:
    lr, ref = _pair()
    save_image(lr, tmp_path / "lr.png")
    save_image(ref, tmp_path / "ref.png")
    lr8, ref8 = load_image(tmp_path / "lr.png"), load_image(tmp_path / "ref.png")  # 8-bit exact copies

    from_tensor = predictor(lr8, ref8)
    assert isinstance(from_tensor, torch.Tensor) and from_tensor.shape == (3, 24, 32)
    assert from_tensor.min() >= 0 and from_tensor.max() <= 1
    batched = predictor(lr8[None], ref8[None])
    assert batched.shape == (1, 3, 24, 32)
    torch.testing.assert_close(batched[0], from_tensor)

    as_uint8 = (from_tensor.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    from_path = predictor(tmp_path / "lr.png", str(tmp_path / "ref.png"))
    assert isinstance(from_path, Image.Image) and from_path.size == (32, 24)
    from_pil = predictor(Image.open(tmp_path / "lr.png"), Image.open(tmp_path / "ref.png"))
    array = lambda t: (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    from_numpy = predictor(array(lr8), array(ref8))
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.uint8 and from_numpy.shape == (24, 32, 3)
    for result in (np.asarray(from_path), np.asarray(from_pil), from_numpy):
        assert np.abs(result.astype(int) - as_uint8.astype(int)).max() <= 1


def test_the_model_is_prepared_once_and_keeps_its_state_dict() -> None:
    model = _model()
    keys = list(model.state_dict())
    predictor = Predictor(model, device="cpu")
    assert not predictor.model.training and not any(p.requires_grad for p in predictor.model.parameters())
    assert any(isinstance(m, FewOutputConv2d) for m in predictor.model.modules())
    assert list(predictor.model.state_dict()) == keys


def test_matches_the_plain_model_and_clamps(predictor) -> None:
    lr, ref = _pair()
    plain = _model().eval()
    with torch.no_grad():
        expected = plain(lr[None], ref[None])
    out = predictor.predict(lr, ref)
    torch.testing.assert_close(out, expected.clamp(0, 1), rtol=1e-4, atol=1e-4)
    out.add_(1)  # a normal tensor, not an inference one


def test_large_images_are_tiled_and_agree_with_one_pass() -> None:
    lr, ref = _pair(40, 48)
    whole = Predictor(_model(), device="cpu").predict(lr, ref)
    tiled_predictor = Predictor(_model(), device="cpu", window=64, stride=48)
    calls: list[torch.Size] = []
    tiled_predictor.model.decoder.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    tiled = tiled_predictor.predict(lr, ref)
    assert len(calls) > 1 and all(max(shape[-2:]) <= 64 for shape in calls)
    assert (tiled - whole).abs().mean() < 0.02  # the tiny model's random weights: seams stay small


def test_several_references_are_averaged(predictor) -> None:
    lr, ref = _pair()
    other = torch.flip(ref, dims=(-1,))
    both = predictor.predict(lr, [ref, other])
    expected = (predictor.predict(lr, ref) + predictor.predict(lr, other)) / 2
    torch.testing.assert_close(both, expected.clamp(0, 1))


def test_writes_the_image(predictor, tmp_path) -> None:
    lr, ref = _pair()
    out = tmp_path / "out" / "sr.png"
    result = predictor(lr, ref, out=out)
    assert out.is_file()
    assert (load_image(out) - result).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    ("lr", "ref", "message"),
    [
        (torch.rand(3, 12, 16), torch.rand(3, 20, 32), "must be 32×24 (width×height) for a 16×12 LR image, got 32×20"),
        (torch.rand(3, 12, 16) * 255, torch.rand(3, 24, 32), "0-255 image"),
        (torch.randint(0, 255, (3, 12, 16), dtype=torch.uint8), torch.rand(3, 24, 32), "float in"),
        (torch.rand(2, 12, 16), torch.rand(3, 24, 32), "3 channels"),
        ("missing.png", torch.rand(3, 24, 32), "'missing.png' does not exist"),
        (object(), torch.rand(3, 24, 32), "path, PIL image, numpy array or tensor"),
        (torch.rand(3, 12, 16), [], "at least one reference"),
    ],
)
def test_bad_inputs_say_what_is_wrong(predictor, lr, ref, message) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        predictor(lr, ref)


def test_a_model_that_matches_anywhere_takes_a_reference_of_any_size() -> None:
    torch.manual_seed(0)
    spec = {**TINY_CROSSNET, "components": {**TINY_CROSSNET["components"], "aligner": {"name": "match_flow"}}}
    predictor = Predictor(build_model(spec), device="cpu", precision="fp32")
    lr = torch.rand(3, 24, 32)
    sr = predictor(lr, torch.rand(3, 40, 36))  # another size and aspect than the 64×48 output
    assert sr.shape == (3, 48, 64) and sr.min() >= 0 and sr.max() <= 1
    with pytest.raises(InputError, match=r"must be 64×48 .* got 36×40 \(models whose aligner matches anywhere"):
        Predictor(_model(), device="cpu")(lr, torch.rand(3, 40, 36))  # flow_warp is bound to the output grid


def test_grey_and_rgba_arrays_become_rgb(predictor) -> None:
    lr = np.random.default_rng(0).integers(0, 255, (12, 16), dtype=np.uint8)
    ref = np.random.default_rng(1).integers(0, 255, (24, 32, 4), dtype=np.uint8)
    assert predictor(lr, ref).shape == (24, 32, 3)
    grey16 = Image.fromarray(lr.astype(np.uint16) * 257)  # a 16-bit grey image
    assert grey16.mode.startswith("I")
    from_16 = predictor(grey16, Image.fromarray(ref[..., :3]))
    assert isinstance(from_16, Image.Image) and from_16.size == (32, 24)
    np.testing.assert_array_equal(np.asarray(from_16), predictor(lr, ref[..., :3]))


def test_a_model_without_an_upscale_factor_is_refused() -> None:
    with pytest.raises(InputError, match="cannot tell the upscale factor of Identity"):
        Predictor(torch.nn.Identity(), device="cpu")


def test_device_errors_name_the_device() -> None:
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="device 'cuda' is not available"):
            Predictor(_model(), device="cuda")
    with pytest.raises(InputError, match="'fp16' runs on CUDA only"):
        Predictor(_model(), device="cpu", precision="fp16")
    with pytest.raises(InputError, match="precision must be one of"):
        Predictor(_model(), device="cpu", precision="int8")


def test_a_missing_checkpoint_is_a_checkpoint_error(tmp_path) -> None:
    from refsr_blocks.assets import DEFAULT_PRETRAINED

    with pytest.raises(CheckpointError, match=f"no checkpoint file .*nope.safetensors.*shipped: {DEFAULT_PRETRAINED}"):
        Predictor(tmp_path / "nope.safetensors", device="cpu")


def test_bf16_stays_close_to_fp32() -> None:
    lr, ref = _pair()
    fp32 = Predictor(_model(), device="cpu", precision="fp32").predict(lr, ref)
    with warnings.catch_warnings():  # explicit bf16 warns where it is slow (tests/test_runtime.py)
        warnings.simplefilter("ignore", RuntimeWarning)
        bf16 = Predictor(_model(), device="cpu", precision="bf16").predict(lr, ref)
    assert bf16.dtype == torch.float32 and (bf16 - fp32).abs().max() < 5e-2


def test_the_default_precision_is_auto_what_is_fast_here(monkeypatch) -> None:
    """``Predictor()`` asks the library's bf16 probe: bf16 where it is native and packed, else fp32."""
    assert Predictor(_model(), device="cpu").precision == ("bf16" if runtime.bf16_fast_path_available() else "fp32")
    monkeypatch.setattr(prepacked, "bf16_fast_path_problem", lambda: "no bf16 instructions")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns
        predictor = Predictor(_model(), device="cpu")
    assert predictor.precision == "fp32"
    lr, ref = _pair()
    expected = Predictor(_model(), device="cpu", precision="fp32").predict(lr, ref)
    torch.testing.assert_close(predictor.predict(lr, ref), expected, rtol=0, atol=0)
    with pytest.warns(RuntimeWarning, match="'bf16' will be slow on this CPU"):
        assert Predictor(_model(), device="cpu", precision="bf16").precision == "bf16"


def test_the_predictor_leaves_the_process_allocator_alone(predictor, mallopt_calls) -> None:
    """glibc's mallopt is process-wide: only the process (the CLI, a benchmark) may change it."""
    lr, ref = _pair()
    predictor.predict(lr, ref)
    Predictor(_model(), device="cpu", window=16, stride=12).predict(lr, ref)  # tiled
    assert mallopt_calls == []
    assert runtime.retain_freed_memory() and len(mallopt_calls) == 2  # the opt-in does reach it


@pytest.mark.slow
@pytest.mark.skipif(not pretrained_path().is_file(), reason="default weights not installed")
def test_default_weights_in_one_call(tmp_path) -> None:
    """The documented one-liner: the shipped weights on the shipped pair beat bicubic."""
    from refsr_blocks.evaluation.metrics import psnr
    from refsr_blocks.tools.viz import bicubic_upsample

    files = demo_pair_files()
    image = super_resolve_images(files["lr"], files["ref"], tmp_path / "sr.png", device="cpu")
    assert isinstance(image, Image.Image) and image.size == (640, 480)
    hr, lr = load_image(files["hr"])[None], load_image(files["lr"])[None]
    sr = load_image(tmp_path / "sr.png")[None]
    assert float(psnr(sr, hr)) > float(psnr(bicubic_upsample(lr, 4).clamp(0, 1), hr)) + 1.0
    assert any(isinstance(m, PrepackedConv2d) for m in Predictor(device="cpu").model.modules()) == (
        torch.backends.mkldnn.is_available()
    )


# -- files: one reader, and outputs that never replace what a user made --------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_super_resolve_images_never_writes_over_an_input(tmp_path, overwrite) -> None:
    lr, ref = _pair()
    save_image(lr, tmp_path / "lr.png")
    save_image(ref, tmp_path / "ref.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "ref.png")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    for out, role in (("lr.png", "LR"), ("ref.png", "reference"), ("link.png", "reference")):
        with pytest.raises(InputError, match=f"the output '.*{out}' is the {role} image .*would replace your input"):
            super_resolve_images(
                str(tmp_path / "lr.png"), tmp_path / "ref.png", tmp_path / out, model=_model(), overwrite=overwrite
            )
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.png")} == before


def test_an_existing_output_needs_overwrite_and_is_checked_before_any_work(tmp_path, monkeypatch) -> None:
    lr, ref = _pair()
    out = tmp_path / "sr.png"
    out.write_bytes(b"mine")
    built: list[object] = []
    monkeypatch.setattr("refsr_blocks.inference.predictor._cached_predictor", lambda *a: built.append(a))
    with pytest.raises(InputError, match=r"'.*sr.png' already exists: pass overwrite=True to replace it"):
        super_resolve_images(lr, ref, out)  # the default weights: refused before they are loaded
    with pytest.raises(InputError, match=r"'.*o.xyz' has no image suffix that can be written \(.xyz\)"):
        super_resolve_images(lr, ref, tmp_path / "o.xyz")
    assert built == [] and out.read_bytes() == b"mine"
    predictor = Predictor(_model(), device="cpu", precision="fp32")
    with pytest.raises(InputError, match="already exists"):
        predictor(lr, ref, out=out)
    result = predictor(lr, ref, out=out, overwrite=True)
    assert (load_image(out) - result).abs().max() <= 0.5 / 255 + 1e-6


def test_files_and_pil_images_are_scaled_by_one_rule(tmp_path) -> None:
    """Mode "I", "I;16" and "F" images give the same tensor through Predictor (PIL or path) and load_image."""
    from refsr_blocks.inference.predictor import to_image_tensor

    grey = np.random.default_rng(0).random((6, 8))
    for name, image in (
        ("i16", Image.fromarray((grey * 65535).astype(np.uint16))),
        ("i32", Image.fromarray((grey * 65535).astype(np.int32), "I")),
        ("i32_8bit", Image.fromarray((grey * 255).astype(np.int32), "I")),
        ("f", Image.fromarray(grey.astype(np.float32), "F")),
    ):
        image.save(tmp_path / f"{name}.tif")
        from_pil, _ = to_image_tensor(image, "LR")
        from_path, _ = to_image_tensor(tmp_path / f"{name}.tif", "LR")
        torch.testing.assert_close(from_pil[0], load_image(tmp_path / f"{name}.tif"), atol=0, rtol=0)
        torch.testing.assert_close(from_path, from_pil, atol=0, rtol=0)
        expected = torch.from_numpy(grey.astype(np.float32)).expand(3, -1, -1)
        torch.testing.assert_close(from_pil[0], expected, atol=1 / 255, rtol=0, msg=name)  # not black, not ×257


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50)), "is not an image file that can be read"),
        (lambda p: p.mkdir(), "is a folder, not an image file"),
    ],
)
def test_unreadable_image_paths_are_one_input_error_naming_the_file(predictor, tmp_path, make, message) -> None:
    bad = tmp_path / "bad.png"
    make(bad)
    with pytest.raises(InputError, match=f"LR image '.*bad.png' {message}"):
        predictor(bad, torch.rand(3, 24, 32))


def test_one_predictor_serves_several_threads_on_the_tiled_path() -> None:
    """Tiled windows share the whole image's pre-alignment shift through fuse(prior=), not by
    patching the shared model, so threads get exactly the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = build_model(TINY_CROSSNET, prealign={"name": "phase_correlation", "params": {"max_shift": 8}})
    predictor = Predictor(model, precision="fp32", window=32, stride=24)
    pairs = [_pair(24, 32) for _ in range(4)]
    sequential = [predictor(lr, ref) for lr, ref in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda p: predictor(*p), pairs * 2))
    for got, want in zip(threaded, sequential * 2):
        assert torch.equal(got, want)
    assert "forward" not in vars(predictor.model.aligner.prealign)  # nothing patched on the shared model


def test_auto_precision_keeps_fp32_for_a_model_with_a_component_that_declares_no_bf16(monkeypatch) -> None:
    from refsr_blocks.core.support import Support

    monkeypatch.setattr(runtime, "bf16_fast_path_available", lambda: True)  # as on a CPU with native bf16
    assert Predictor(_model(), device="cpu").precision == "bf16"
    model = _model()
    monkeypatch.setattr(type(model.aligner), "SUPPORT", Support(dtypes=("fp32",)))
    assert Predictor(model, device="cpu").precision == "fp32"
    assert Predictor(model, device="cpu", precision="bf16").precision == "bf16"  # an explicit choice is kept
