"""One call from images to a super-resolved image: :class:`Predictor` and :func:`super_resolve_images`.

The predictor loads the default pretrained weights (or the checkpoint, shipped name or model
you give), prepares them for inference once (eval mode, frozen, channels_last, the CPU fast
layers swapped in: :func:`~refsr_blocks.inference.runtime.optimize_for_inference`) and then,
for every call, converts the inputs, runs the model in ``inference_mode`` (and autocast for
``precision="bf16"``/``"fp16"``), tiles images larger than a window
(:func:`~refsr_blocks.inference.tiling.super_resolve`: the upsampler once, 64-pixel overlaps),
clamps to [0, 1] and returns the result in the kind of image it was given, or writes it.

Inputs may be file paths, PIL images, numpy arrays (H×W×C, or H×W grey; uint8 0-255, uint16
0-65535 or float 0-1) or tensors (C×H×W or B×C×H×W, float in [0, 1]); files are read by the
library's one reader (:func:`refsr_blocks.data.io.open_image`: size checked from the header, EXIF
orientation applied) and files and PIL images are scaled by one rule
(:func:`refsr_blocks.data.io.pil_to_tensor`: 16-bit ÷65535, float images by their range); the reference must be
exactly s times the LR size, unless the model's aligner matches anywhere in a reference of any
size (``grid_bound = False``: match_flow, C2-Matching's correspondence). Several references (a list) are each used once and the results
averaged: CrossNet itself takes one reference.

:meth:`Predictor.to_file` (what ``refsr-blocks sr`` calls) writes a file; a result too large to
hold in memory is streamed into a PNG in strips (:mod:`refsr_blocks.inference.streaming`), and
an in-memory call whose result cannot fit is refused before any work.

The predictor never changes the process's memory allocator: a process that only runs inference
can ask glibc to keep freed memory for reuse (:func:`~refsr_blocks.inference.runtime.retain_freed_memory`,
what ``refsr-blocks sr`` does), which spares it page faults on every layer.

Example:
    >>> import torch
    >>> from refsr_blocks import build_model
    >>> predictor = Predictor(build_model("crossnet_lite"), device="cpu")
    >>> lr, ref = torch.rand(3, 24, 32), torch.rand(3, 96, 128)
    >>> sr = predictor(lr, ref)
    >>> sr.shape, bool(sr.min() >= 0 and sr.max() <= 1)
    (torch.Size([3, 96, 128]), True)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..core.errors import CheckpointError, InputError
from ..core.support import declared_dtypes
from .runtime import PRECISIONS, inference_context, optimize_for_inference, resolve_precision
from .streaming import STREAM_ABOVE_PIXELS, ReferenceRows, check_fits, stream_peak_bytes, stream_to_png
from .tiling import default_windowing, matches_whole_references, super_resolve

__all__ = [
    "DeviceError",
    "ImageLike",
    "Predictor",
    "check_output_file",
    "resolve_device",
    "super_resolve_images",
    "to_image_tensor",
]

#: What the predictor accepts as an image.
ImageLike = Union[str, os.PathLike, "Image.Image", np.ndarray, Tensor]  # noqa: F821 - PIL imported lazily
DEVICES = ("auto", "cpu", "cuda")
#: Memory an in-memory call needs per output pixel (float32 output, upsampled image, reference and
#: their device/NHWC copies), for refusing up front a result that cannot fit.
IN_MEMORY_BYTES_PER_PIXEL = 6 * 3 * 4


class DeviceError(InputError):
    """The requested device does not exist or is not available here."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a device.

    Raises:
        DeviceError: an unknown device name, or CUDA (or that GPU index) is not available; the
            message names the device.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}: use one of {', '.join(DEVICES)} (or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(
                f"device {str(device)!r} is not available: PyTorch {torch.__version__} ({build}) sees no CUDA GPU "
                "here; use --device cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {str(device)!r} is not available: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif dev.type != "cpu":
        raise DeviceError(f"device {str(device)!r} is not supported: use one of {', '.join(DEVICES)}")
    return dev


def to_image_tensor(image: Any, what: str = "image", channels: int = 3) -> tuple[Tensor, str]:
    """``image`` as a float32 B×C×H×W tensor in [0, 1], and the kind it came as.

    Args:
        image: a path, PIL image, numpy array (H×W×C or H×W; uint8, uint16 or float in
            [0, 1]) or tensor (C×H×W or B×C×H×W, float in [0, 1]).
        what: its role, for error messages (``"LR"``, ``"reference"``).
        channels: the model's image channels (grey images are repeated to 3, alpha dropped).

    Returns:
        ``(tensor, kind)`` with ``kind`` one of ``"path"``, ``"pil"``, ``"numpy"``,
        ``"tensor"`` (``"tensor3"`` for an unbatched C×H×W tensor).

    Raises:
        InputError: a missing or unreadable file, an unsupported type, shape or dtype, or float
            values outside [0, 1] (as 0-255 images often are).
    """
    kind = "tensor"
    if isinstance(image, (str, os.PathLike)):
        image, kind = _read_file(Path(image), what), "path"
    if type(image).__module__.startswith("PIL."):
        image, kind = _from_pil(image, what), "pil"
    if isinstance(image, np.ndarray):
        kind = "numpy" if kind == "tensor" else kind
        image = _from_numpy(image, what)
    if not isinstance(image, Tensor):
        raise InputError(f"{what} image must be a path, PIL image, numpy array or tensor, got {type(image).__name__}")
    if image.ndim == 3 and kind == "tensor":
        image, kind = image.unsqueeze(0), "tensor3"
    elif image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise InputError(f"{what} image must be C×H×W or B×C×H×W, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{what} tensor must be float in [0, 1], got {image.dtype} (divide uint8 images by 255)")
    image = image.float()
    if image.shape[1] in (1, 4) and channels == 3:
        image = image[:, :3] if image.shape[1] == 4 else image.expand(-1, 3, -1, -1)
    if image.shape[1] != channels:
        raise InputError(f"{what} image must have {channels} channels, got shape {tuple(image.shape)}")
    lo, hi = float(image.min()), float(image.max())
    if lo < -0.01 or hi > 1.01:
        raise InputError(
            f"{what} image values must be in [0, 1], got [{lo:.3g}, {hi:.3g}]"
            + (" (a 0-255 image? divide it by 255)" if hi > 2 else "")
        )
    return (image if lo >= 0 and hi <= 1 else image.clamp(0, 1)), kind  # no copy of a valid image


def _read_file(path: Path, what: str) -> Tensor:
    """The image file at ``path`` through the library's one reader (:func:`refsr_blocks.data.io.load_image`)."""
    from ..data.errors import DataError, DataNotFoundError
    from ..data.io import load_image

    try:
        return load_image(path, f"{what} image")
    except (DataError, DataNotFoundError) as err:  # the same message, as the error type of the inference API
        raise InputError(str(err)) from None


def _from_pil(image: Any, what: str) -> Tensor:
    """A PIL image as 3×H×W in [0, 1], scaled as image files are (:func:`refsr_blocks.data.io.pil_to_tensor`)."""
    from ..data.errors import DataError
    from ..data.io import pil_to_tensor

    try:
        return pil_to_tensor(image)
    except DataError as err:
        raise InputError(f"{what} image: {err}") from None


def _from_numpy(array: np.ndarray, what: str) -> Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"{what} array must be H×W×C or H×W, got shape {array.shape}")
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        scaled = array.astype(np.float32)
    else:
        raise InputError(f"{what} array must be uint8, uint16 or float in [0, 1], got {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(scaled)).permute(2, 0, 1)


def _from_tensor(sr: Tensor, kind: str) -> Any:
    """The result (1×C×H×W float in [0, 1], CPU) in the kind the LR image came as."""
    if kind == "tensor":
        return sr
    if kind == "tensor3":
        return sr[0]
    array = sr[0].mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()
    if kind == "numpy":
        return array
    from PIL import Image

    return Image.fromarray(array)


def _load_model(model: nn.Module | str | os.PathLike[str] | None, device: torch.device) -> nn.Module:
    from .. import assets
    from ..core.checkpoint import load_model

    if isinstance(model, nn.Module):
        return model.to(device)
    if model is None:
        return assets.load_pretrained(map_location=str(device)).to(device)
    if isinstance(model, str) and model in assets.list_pretrained():
        return assets.load_pretrained(model, map_location=str(device)).to(device)
    path = Path(model)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint file {str(path)!r}, and no shipped weights of that name "
            f"(shipped: {', '.join(assets.list_pretrained())})"
        )
    return load_model(path, map_location=str(device)).to(device)


class Predictor:
    """A model ready for inference, called on images.

    Args:
        model: ``None`` for the default pretrained weights
            (:data:`refsr_blocks.assets.DEFAULT_PRETRAINED`), the name of a shipped entry,
            a checkpoint path (a ``save_model`` file), or a model (used in place: it is put in
            eval mode, frozen and given the fast layers).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"auto"`` (the default: ``"bf16"`` on a CPU with native bf16 and the
            packed bf16 convolutions and every component of the model declares bf16, else
            ``"fp32"``; ``"fp32"`` on CUDA), ``"fp32"``,
            ``"bf16"`` (autocast; fast on CPUs with bf16 instructions and on GPUs; one
            ``RuntimeWarning`` on a CPU without them, where it is emulated and slow) or
            ``"fp16"`` (CUDA only). The attribute ``precision`` holds the one chosen.
        window: the largest tile side in output pixels; larger images are tiled (default 768,
            see :func:`~refsr_blocks.inference.tiling.super_resolve`).
        stride: the largest step between tiles (default: a 64-pixel overlap).
        compile: ``torch.compile`` the model (a slow first call).
        progress: a progress bar over the tiles.

    Raises:
        DeviceError: the device is not available.
        CheckpointError: the checkpoint is missing or damaged.
        InputError: an unknown precision, or fp16 on the CPU.
    """

    def __init__(
        self,
        model: nn.Module | str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        window: int | None = None,
        stride: int | None = None,
        compile: bool = False,
        progress: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and self.device.type == "cpu":
            raise InputError("precision 'fp16' runs on CUDA only; on the CPU use 'auto', 'bf16' or 'fp32'")
        self.precision: str = resolve_precision(precision, self.device)
        self.window, self.stride = window, stride
        self.progress = progress
        self.model = optimize_for_inference(_load_model(model, self.device), compile=compile)
        if precision == "auto" and self.precision not in declared_dtypes(self.model):
            self.precision = "fp32"  # a component declares it does not run in the fast precision
        inner = getattr(self.model, "_orig_mod", self.model)
        upscale = getattr(inner, "upscale", None) or (getattr(inner, "spec", None) or {}).get("params", {}).get(
            "upscale"
        )
        if not isinstance(upscale, int):
            raise InputError(
                f"cannot tell the upscale factor of {type(inner).__name__}: give it an int 'upscale' attribute"
            )
        self.upscale: int = upscale
        self.channels: int = int(getattr(inner, "image_channels", 3))

    def predict(self, lr: ImageLike, ref: ImageLike | Sequence[ImageLike]) -> Tensor:
        """Super-resolve; returns a float32 B×C×H×W tensor in [0, 1] on the CPU.

        Args:
            lr: the LR image (B×C×h×w for tensors; any :data:`ImageLike`).
            ref: the reference, s·h × s·w, or a list of references (results averaged).

        Raises:
            InputError: unreadable inputs, or a reference that is not s times the LR size.
        """
        lr_t, _ = to_image_tensor(lr, "LR", self.channels)
        return self._predict(lr_t, ref)

    def _predict(self, lr: Tensor, ref: ImageLike | Sequence[ImageLike]) -> Tensor:
        refs = list(ref) if isinstance(ref, (list, tuple)) else [ref]
        if not refs:
            raise InputError("pass at least one reference image")
        height, width = lr.shape[-2] * self.upscale, lr.shape[-1] * self.upscale
        check_fits(
            lr.shape[0] * IN_MEMORY_BYTES_PER_PIXEL * height * width,
            f"a {width}×{height} result held in memory",
            "write it to a PNG file with Predictor.to_file(lr, ref, out) or `refsr-blocks sr`, which stream it in strips",
        )
        lr = self._on_device(lr)
        total: Tensor | None = None
        for i, one in enumerate(refs):
            what = "reference" if len(refs) == 1 else f"reference {i + 1}"
            ref_t, _ = to_image_tensor(one, what, self.channels)
            self._check_sizes(lr, ref_t, what)
            # only the device/NHWC copy stays referenced while the model runs (a 3840×2160 image is 100 MB)
            sr = self._run(lr, self._on_device(ref_t.expand(lr.shape[0], -1, -1, -1)))
            del ref_t
            total = sr if total is None else total.add_(sr)
        assert total is not None
        return total.div_(len(refs)).clamp_(0.0, 1.0)

    def _on_device(self, image: Tensor) -> Tensor:
        """``image`` on the predictor's device in channels_last (NHWC) memory format."""
        return image.to(self.device).contiguous(memory_format=torch.channels_last)

    def _check_sizes(self, lr: Tensor, ref: Tensor, what: str) -> None:
        """The reference is s times the LR size, unless the model matches anywhere in a reference of any size."""
        s = self.upscale
        expected = (lr.shape[-2] * s, lr.shape[-1] * s)
        if tuple(ref.shape[-2:]) != expected and not matches_whole_references(self.model):
            raise InputError(  # sizes as image tools print them: width×height
                f"the model is ×{s}: the {what} must be {expected[1]}×{expected[0]} (width×height) for a "
                f"{lr.shape[-1]}×{lr.shape[-2]} LR image, got {ref.shape[-1]}×{ref.shape[-2]} (models whose "
                "aligner matches anywhere in the reference, such as match_flow, take any size)"
            )
        if ref.shape[0] not in (1, lr.shape[0]):
            raise InputError(f"the {what} has batch {ref.shape[0]}, the LR image {lr.shape[0]}")

    def _run(self, lr: Tensor, ref: Tensor) -> Tensor:
        """One forward (tiled when large) of NHWC ``lr`` and ``ref`` on the device; float32 on the CPU."""
        with inference_context(self.device, self.precision):
            sr = super_resolve(self.model, lr, ref, self.window, self.stride, progress=self.progress)
        sr = sr.float().cpu()
        return sr.clone() if sr.is_inference() else sr  # a normal tensor that callers may modify

    def __call__(
        self,
        lr: ImageLike,
        ref: ImageLike | Sequence[ImageLike],
        out: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
    ) -> Any:
        """Super-resolve and return the result as the LR image came: a tensor (same batch
        dims), a numpy uint8 H×W×C array, or a PIL image (for PIL images and paths); with
        ``out``, also write it there (8-bit, format from the suffix).

        ``out`` is checked before any work (:func:`check_output_file`): it may never be one of
        the input files (through a symlink or a hard link either), and an existing file is
        replaced only with ``overwrite=True``.
        """
        if out is not None:
            check_output_file(out, _input_files(lr, ref), overwrite=overwrite)
        lr_t, kind = to_image_tensor(lr, "LR", self.channels)
        sr = self._predict(lr_t, ref)
        if out is not None:
            write_image(sr, out)
        return _from_tensor(sr, kind)

    def streams(self, lr: str | os.PathLike[str]) -> bool:
        """Whether :meth:`to_file` streams the result for the LR image file ``lr``: more than
        :data:`~refsr_blocks.inference.streaming.STREAM_ABOVE_PIXELS` output pixels, RGB (the
        size is read from the file's header)."""
        from ..data.io import read_image_size

        h, w = read_image_size(lr)
        return self.channels == 3 and h * w * self.upscale**2 > STREAM_ABOVE_PIXELS

    def to_file(
        self,
        lr: str | os.PathLike[str],
        ref: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Path:
        """Super-resolve the image file ``lr`` with the reference file ``ref`` into the image file ``out``.

        A result of more than :data:`~refsr_blocks.inference.streaming.STREAM_ABOVE_PIXELS`
        pixels is streamed into a PNG in strips
        (:func:`~refsr_blocks.inference.streaming.stream_to_png`), so memory stays bounded
        whatever the image size; a smaller one is computed in memory as :meth:`__call__` does.
        Before any work: ``out`` is checked (:func:`check_output_file`), the sizes are read
        from the headers, and a size whose memory the machine lacks is refused with the figures.

        Raises:
            InputError: as :meth:`__call__`; a streamed result whose ``out`` is not ``.png``, or
                whose reference is not at the output size (for a model whose aligner is bound to
                the output grid); not enough memory.
        """
        from ..data.io import load_image, read_image_size

        check_output_file(out, _input_files(lr, ref), overwrite=overwrite)
        if not self.streams(lr):
            self(lr, ref, out, overwrite=overwrite)
            return Path(out)
        (h, w), ref_size = read_image_size(lr), read_image_size(ref)
        s = self.upscale
        whole_ref = ref_size != (h * s, w * s)
        if whole_ref and not matches_whole_references(self.model):
            raise InputError(
                f"the model is ×{s}: for a {w}×{h} LR image the reference must be {w * s}×{h * s} (width×height), "
                f"got {ref_size[1]}×{ref_size[0]}; resize it to that size first"
            )
        if Path(out).suffix.lower() != ".png":
            raise InputError(
                f"a {w * s}×{h * s} result is streamed to the file in strips, which needs a PNG: "
                f"name the output '{Path(out).stem}.png'"
            )
        window = self.window or default_windowing(s)[0]
        needed = stream_peak_bytes((h, w), ref_size, s, window) + (ref_size[0] * ref_size[1] * 12 if whole_ref else 0)
        check_fits(needed, f"streaming a {w * s}×{h * s} result", "pass a smaller window, or a smaller reference")
        with contextlib.ExitStack() as stack:
            # The reference first: decoding it whole to spill it is the peak of a streamed run,
            # and the LR image need not be held beside it.
            reference = load_image(ref, "reference image")[None] if whole_ref else None
            if reference is None:
                reference = stack.enter_context(ReferenceRows(ref, spill_dir=Path(out).parent))
            lr_t = load_image(lr, "LR image")[None]
            stack.enter_context(inference_context(self.device, self.precision))
            return stream_to_png(
                self.model, lr_t, reference, out, window=self.window, stride=self.stride, progress=self.progress
            )


#: How :func:`check_output_file` tells a Python caller to replace an existing output.
OVERWRITE_HINT = "pass overwrite=True to replace it"


def _input_files(lr: Any, ref: Any) -> list[tuple[str, Path]]:
    """The (role, path) of every input given as a path."""
    refs = list(ref) if isinstance(ref, (list, tuple)) else [ref]
    named = [("LR", lr)] + [("reference", r) for r in refs]
    return [(role, Path(p)) for role, p in named if isinstance(p, (str, os.PathLike))]


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file or folder (by resolved path, or by inode: symlinks, hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_output_file(
    out: str | os.PathLike[str],
    inputs: Sequence[tuple[str, Path]] = (),
    *,
    overwrite: bool = False,
    hint: str = OVERWRITE_HINT,
) -> Path:
    """Refuse, before any work, to write an image to ``out`` where it would destroy something.

    Args:
        out: the output file.
        inputs: ``(role, path)`` of the input files (``("LR", Path("lr.png"))``).
        overwrite: replace an existing file that is not an input.
        hint: how to ask for that, for the message (``"pass --force to replace it"`` on the
            command line).

    Raises:
        InputError: ``out`` is an input (by path, symlink or hard link: never replaced), a
            folder, an existing file without ``overwrite``, or has no image suffix PIL writes.
    """
    from ..data.io import writable_image_suffix

    out = Path(out)
    for role, path in inputs:
        if _same_file(out, path):
            how = " (through a symlink)" if out.is_symlink() or path.is_symlink() else ""
            raise InputError(
                f"the output {str(out)!r} is the {role} image {str(path)!r}{how}: writing the result would replace "
                "your input; choose another output file"
            )
    if out.is_dir():
        raise InputError(f"the output {str(out)!r} is a folder: give an image file name (e.g. {str(out / 'sr.png')!r})")
    if os.path.lexists(out) and not overwrite:
        raise InputError(f"the output file {str(out)!r} already exists: {hint}")
    if not writable_image_suffix(out):
        raise InputError(
            f"the output {str(out)!r} has no image suffix that can be written ({out.suffix or 'none'}): "
            "use .png, .jpg, .tif, .bmp or .webp"
        )
    return out


def write_image(sr: Tensor, path: str | os.PathLike[str]) -> Path:
    """Write a 1×C×H×W (or C×H×W) image in [0, 1] as an 8-bit file (format from the suffix)."""
    from ..data.io import save_image

    path = Path(path)
    image = sr[0] if sr.ndim == 4 else sr
    if sr.ndim == 4 and sr.shape[0] != 1:
        raise InputError(f"one output file holds one image, got a batch of {sr.shape[0]}")
    try:
        save_image(image, path)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"cannot write {str(path)!r}: {err}") from None
    return path


@functools.lru_cache(maxsize=2)
def _cached_predictor(model: str | None, device: str, precision: str) -> Predictor:
    return Predictor(model, device=device, precision=precision)


def super_resolve_images(
    lr: ImageLike,
    ref: ImageLike | Sequence[ImageLike],
    out: str | os.PathLike[str] | None = None,
    *,
    model: str | os.PathLike[str] | nn.Module | None = None,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
) -> Any:
    """One call: super-resolve ``lr`` with ``ref`` using ``model`` (default: the shipped weights).

    A :class:`Predictor` for a named model or path is made once and reused by later calls.
    Returns what :meth:`Predictor.__call__` returns; with ``out`` the image is also written,
    never over an input, and over an existing file only with ``overwrite=True`` (checked
    before the model is loaded: :func:`check_output_file`).

    Example:
        >>> from refsr_blocks.assets import demo_pair_files
        >>> files = demo_pair_files()
        >>> sr = super_resolve_images(files["lr"], files["ref"], device="cpu")  # doctest: +SKIP
        >>> sr.size  # doctest: +SKIP
        (640, 480)
    """
    if out is not None:  # before loading anything: a refusal must not come after minutes of work
        check_output_file(out, _input_files(lr, ref), overwrite=overwrite)
    if isinstance(model, nn.Module):
        return Predictor(model, device=device, precision=precision)(lr, ref, out, overwrite=overwrite)
    key = None if model is None else str(model)
    return _cached_predictor(key, str(resolve_device(device)), precision)(lr, ref, out, overwrite=overwrite)
