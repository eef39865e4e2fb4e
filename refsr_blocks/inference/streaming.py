"""Super-resolve an image too large to hold in memory straight into a PNG file, in strips.

:func:`~refsr_blocks.inference.tiling.super_resolve` keeps the whole result (and, for CrossNet,
the whole upsampled image) as float32 tensors: 12 bytes per output pixel each, 6.9 GB for a
24000×24000 result. :func:`stream_to_png` never holds a full-size map:

- the LR image is held whole (at LR size, s² times smaller than the output);
- the reference is decoded once and spilled, 8 bits per channel, to an unnamed temporary file
  beside the output (:class:`ReferenceRows`), then read back one band of rows at a time;
- a staged model's upsampler (CrossNet's MDSR) runs per band of windows on the LR rows of that
  band, in blocks of :data:`UPSAMPLER_COLUMNS` columns, each with a halo that covers its
  receptive field (:func:`upsampler_halo`), so each band gets the values one whole-image call
  would give;
- the windows are blended band by band (:func:`~refsr_blocks.inference.tiling.blend_bands`) and
  each finished row goes to the PNG encoder (pypng, ``zlib``) as soon as no later window
  touches it.

The one difference from the in-memory path: the whole-image alignment a model shares between
windows (CrossNet's pre-alignment shift, ``global_alignment``) is estimated on the central
:data:`PRIOR_SIDE` × :data:`PRIOR_SIDE` output pixels instead of the whole image; for images no
larger than that, both paths give the same result.

Peak memory is the LR image, three bands of output width and one window's activations, or the
reference's decode if that is larger: :func:`stream_peak_bytes` estimates it and
:func:`check_fits` refuses, before any work, a size the machine cannot hold.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..core.errors import InputError
from ..data.io import open_image, pil_to_tensor
from .tiling import BandSR, blend_bands, evaluating, is_staged, matches_whole_references, plan_windows, upsample_whole

__all__ = [
    "PRIOR_SIDE",
    "STREAM_ABOVE_PIXELS",
    "UPSAMPLER_COLUMNS",
    "ReferenceRows",
    "available_memory",
    "check_fits",
    "stream_peak_bytes",
    "stream_to_png",
    "upsampler_halo",
]

#: Results with more output pixels than this are streamed by :meth:`Predictor.to_file`
#: (in memory, a 4096×4096 CrossNet result already takes about 1 GB of float32 maps).
STREAM_ABOVE_PIXELS = 4096 * 4096
#: Side, in output pixels, of the central region on which a streamed image's whole-image
#: alignment (``global_alignment``) is estimated.
PRIOR_SIDE = 2048
#: Rough activation memory of one CrossNet-sized window per output pixel (float32 encoders,
#: flows and decoder), for :func:`stream_peak_bytes`; an estimate, not a bound.
WINDOW_BYTES_PER_PIXEL = 2400
#: Reference rows decoded into each spill write.
SPILL_ROWS = 256
#: LR columns the upsampler of a staged model runs on at once (plus its halo each side).
UPSAMPLER_COLUMNS = 1024

ToDevice = Callable[[Tensor], Tensor]


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def stream_peak_bytes(lr_size: tuple[int, int], ref_size: tuple[int, int], scale: int, window: int) -> int:
    """Estimated peak memory of :func:`stream_to_png` for an LR of ``lr_size`` (H, W) and a
    reference of ``ref_size`` (H, W) at ×``scale`` with ``window``-pixel windows.

    The LR image in float32, plus the larger of the reference's decode (PIL holds RGB at 4
    bytes a pixel) and the processing: three float32 bands of the output's width (upsampled
    rows, blend accumulator, finished rows) and one window's activations.
    """
    (h, w), (rh, rw) = lr_size, ref_size
    width = w * scale
    lr_bytes = h * w * 3 * 4
    decode = rh * rw * 4 + SPILL_ROWS * rw * 3 * 4
    bands = 3 * (window + 2 * 32 * scale) * width * 3 * 4
    return lr_bytes + max(decode, bands + WINDOW_BYTES_PER_PIXEL * window * window)


def check_fits(needed: int, what: str, fix: str, available: int | None = None) -> None:
    """Refuse up front work that needs more memory than the machine has available.

    Raises:
        InputError: ``what`` needs ``needed`` bytes, more than available; ``fix`` says what to do.
    """
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise InputError(
            f"{what} needs about {needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} GiB is available: {fix}"
        )


class ReferenceRows:
    """A reference image file decoded once, spilled as 8-bit RGB to an unnamed temporary file
    (removed by the system when closed, even if the process is killed), and read back by rows.

    Args:
        path: the reference image file (read by :func:`refsr_blocks.data.io.open_image`:
            size checked from the header, EXIF orientation applied; deeper images are scaled
            by :func:`~refsr_blocks.data.io.pil_to_tensor` and rounded to 8 bits).
        spill_dir: the folder of the temporary file (default: the system's temporary folder).

    Attributes:
        size: (H, W) of the reference.

    Example:
        >>> import tempfile, torch
        >>> from refsr_blocks.data import save_image
        >>> path = tempfile.mkdtemp() + "/ref.png"
        >>> save_image(torch.rand(3, 10, 12), path)
        >>> with ReferenceRows(path) as ref:
        ...     ref.size, ref.rows(2, 5).shape
        ((10, 12), torch.Size([1, 3, 3, 12]))
    """

    def __init__(self, path: str | os.PathLike[str], spill_dir: str | os.PathLike[str] | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115 - lives as long as this object
        try:
            with open_image(path, "reference image") as image:
                width, height = image.size
                self.size = (height, width)
                for top in range(0, height, SPILL_ROWS):
                    band = image.crop((0, top, width, min(height, top + SPILL_ROWS)))
                    values = pil_to_tensor(band).mul_(255).round_().to(torch.uint8)
                    self._file.write(values.permute(1, 2, 0).numpy().tobytes())  # rows of H×W×3 bytes
            self._file.flush()
        except BaseException:
            self._file.close()
            raise

    def rows(self, top: int, bottom: int, left: int = 0, right: int | None = None) -> Tensor:
        """Rows ``[top, bottom)``, columns ``[left, right)`` as a 1×3×n×m float32 tensor in [0, 1]."""
        return _as_float(self.raw_rows(top, bottom)[:, left:right])

    def raw_rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows ``[top, bottom)`` as they are spilled: a (bottom − top)×W×3 uint8 array (a quarter
        of the float32 rows' memory, for a caller that converts a few columns at a time)."""
        width = self.size[1]
        data = os.pread(self._file.fileno(), (bottom - top) * width * 3, top * width * 3)
        return np.frombuffer(data, dtype=np.uint8).reshape(bottom - top, width, 3)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ReferenceRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_float(pixels: np.ndarray) -> Tensor:
    """An n×m×3 uint8 array as a 1×3×n×m float32 tensor in [0, 1]."""
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def upsampler_halo(upsampler: nn.Module) -> int:
    """LR rows of context around a band for which ``upsampler`` gives the whole-image values:
    the summed reach of its convolutions (counting those after the upsampling in LR pixels
    over-estimates them, which is safe) plus 2 for an interpolation's support."""
    reach = sum(m.dilation[0] * (m.kernel_size[0] // 2) for m in upsampler.modules() if isinstance(m, nn.Conv2d))
    return reach + 2


def _upsampled_rows(
    upsampler: nn.Module,
    lr: Tensor,
    top: int,
    bottom: int,
    scale: int,
    halo: int,
    on_device: ToDevice,
    columns: int = UPSAMPLER_COLUMNS,
) -> Tensor:
    """The upsampler's output rows for LR rows ``[top, bottom)`` of the CPU tensor ``lr``, from
    those rows and a ``halo``, ``columns`` LR columns (plus a halo each side) at a time: only
    they go to the device, and the upsampler's LR-size maps stay a block, not a band of the
    image's width."""
    lo, hi = max(0, top - halo), min(lr.shape[-2], bottom + halo)
    width = lr.shape[-1]
    out: Tensor | None = None
    for left in range(0, width, columns):
        right = min(width, left + columns)
        lo_x, hi_x = max(0, left - halo), min(width, right + halo)
        up = upsample_whole(upsampler, on_device(lr[..., lo:hi, lo_x:hi_x]))
        if out is None:
            out = up.new_empty(*up.shape[:2], (bottom - top) * scale, width * scale)
        rows = slice((top - lo) * scale, (bottom - lo) * scale)
        out[..., left * scale : right * scale] = up[..., rows, (left - lo_x) * scale : (right - lo_x) * scale]
        del up
    assert out is not None
    return out


def _to_png_rows(rows: Tensor, chunk: int = 64) -> Iterator[bytes]:
    """Each row of a 1×3×n×W float tensor as the packed 8-bit RGB bytes of a PNG scanline
    (clamped and rounded as :func:`~refsr_blocks.data.io.save_image` does), converted
    ``chunk`` rows at a time so that the conversion's copies stay small beside the band."""
    for start in range(0, rows.shape[-2], chunk):
        part = rows[0, :, start : start + chunk].clamp(0, 1).mul_(255).round_()
        for row in part.to(torch.uint8).permute(1, 2, 0).cpu().numpy():
            yield row.tobytes()


def stream_to_png(
    model: nn.Module,
    lr: Tensor,
    ref: ReferenceRows | Tensor,
    out: str | os.PathLike[str],
    *,
    window: int | None = None,
    stride: int | None = None,
    blend: str = "linear",
    progress: bool = False,
) -> Path:
    """Super-resolve ``lr`` with ``ref`` and write the result to the PNG file ``out`` in strips.

    Run it inside the caller's inference context (``inference_mode``, autocast). The PNG is
    written to a hidden temporary file beside ``out`` and renamed when complete, so ``out``
    never holds a partial image.

    Args:
        model: a RefSR model on its device, ×s (its ``upscale``).
        lr: 1×3×h×w float in [0, 1] on the CPU (held whole).
        ref: the reference: :class:`ReferenceRows` at the output size (s·h × s·w), or, for a
            model whose aligner matches anywhere in a reference (``grid_bound = False``), a
            1×3×H'×W' tensor of any size handed whole to every window.
        out: the PNG file to write (checked by the caller).
        window, stride, blend: as :func:`~refsr_blocks.inference.tiling.super_resolve`.
        progress: a progress bar over the windows.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        InputError: a reference of the wrong size, an ``out`` that is not ``.png``, or windows
            that are not multiples of s.
    """
    import png  # pypng: a PNG encoder fed one row at a time

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"a streamed result is written as PNG: name the output '{out.stem}.png', got {out.name!r}")
    scale = int(model.upscale)  # type: ignore[arg-type]
    height, width = lr.shape[-2] * scale, lr.shape[-1] * scale
    whole_ref = isinstance(ref, Tensor)
    if whole_ref and not matches_whole_references(model):
        raise InputError("a whole reference tensor needs a model whose aligner matches anywhere in it")
    if isinstance(ref, ReferenceRows) and ref.size != (height, width):
        raise InputError(
            f"the model is ×{scale}: streaming needs the reference at the output size {width}×{height} "
            f"(width×height), got {ref.size[1]}×{ref.size[0]}; resize it to that size first"
        )
    ys, xs = plan_windows(model, scale, (height, width), window, stride, blend)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    band_sr = _streamed_bands(model, lr, ref, scale, device, dtype)
    partial = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the with below, renamed after
        dir=out.parent, prefix=f".{out.name}.", suffix=".partial", delete=False
    )
    try:
        with partial, evaluating(model):
            writer = png.Writer(width=width, height=height, greyscale=False, bitdepth=8)
            bands = blend_bands(ys, xs, band_sr, blend=blend, device="cpu", progress=progress)
            writer.write_packed(partial, (line for _, rows in bands for line in _to_png_rows(rows)))
        os.replace(partial.name, out)
    except BaseException:
        Path(partial.name).unlink(missing_ok=True)
        raise
    return out


def _streamed_bands(
    model: nn.Module, lr: Tensor, ref: ReferenceRows | Tensor, scale: int, device: torch.device, dtype: torch.dtype
) -> BandSR:
    """``band_sr(y, hh)`` for :func:`~refsr_blocks.inference.tiling.blend_bands` that computes each
    band's upsampled rows and reads its reference rows when the band starts."""

    def on_device(x: Tensor) -> Tensor:
        return x.to(device, dtype).contiguous(memory_format=torch.channels_last)

    whole_ref = on_device(ref) if isinstance(ref, Tensor) else None

    def ref_window(y: int, hh: int) -> Callable[[int, int], Tensor]:
        """The band's reference for the window at columns ``[x, x + ww)``: the whole reference, or
        the window's columns of the band's rows, held as bytes and converted one window at a time."""
        if whole_ref is not None:
            return lambda x, ww: whole_ref
        assert isinstance(ref, ReferenceRows)
        band = ref.raw_rows(y, y + hh)
        return lambda x, ww: on_device(_as_float(band[:, x : x + ww]))

    if not is_staged(model):

        def band(y: int, hh: int) -> Callable[[int, int], Tensor]:
            lr_band = lr[..., y // scale : (y + hh) // scale, :]
            ref_tile = ref_window(y, hh)

            def window_sr(x: int, ww: int) -> Tensor:
                lr_tile = on_device(lr_band[..., x // scale : (x + ww) // scale])
                return model(lr_tile, ref_tile(x, ww)).float()

            return window_sr

        return band
    upsampler = model.upsampler
    halo = upsampler_halo(upsampler)
    extra = {} if whole_ref is not None else _central_prior(model, lr, ref, scale, halo, on_device)

    def staged_band(y: int, hh: int) -> Callable[[int, int], Tensor]:
        up_band = _upsampled_rows(upsampler, lr, y // scale, (y + hh) // scale, scale, halo, on_device)
        ref_tile = ref_window(y, hh)

        def window_sr(x: int, ww: int) -> Tensor:
            up_tile = up_band[..., x : x + ww].contiguous(memory_format=torch.channels_last)
            return model.fuse(up_tile, ref_tile(x, ww), **extra).float()

        return window_sr

    return staged_band


def _central_prior(
    model: nn.Module, lr: Tensor, ref: ReferenceRows | Tensor, scale: int, halo: int, on_device: ToDevice
) -> dict[str, object]:
    """``{"prior": ...}``: the model's ``global_alignment`` on the central :data:`PRIOR_SIDE` square
    of the output (whole-image shifts are the same everywhere), or ``{}`` if it has none."""
    global_alignment = getattr(model, "global_alignment", None)
    if not callable(global_alignment) or not isinstance(ref, ReferenceRows):
        return {}
    h, w = lr.shape[-2:]
    side = PRIOR_SIDE // scale
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    bottom, right = min(h, top + side), min(w, left + side)
    margin = min(left, halo)  # LR columns of context left of the region
    columns = lr[..., left - margin : right + halo]
    up = _upsampled_rows(model.upsampler, columns, top, bottom, scale, halo, on_device)
    up = up[..., margin * scale : (margin + right - left) * scale]
    ref_crop = on_device(ref.rows(top * scale, bottom * scale, left * scale, right * scale))
    prior = global_alignment(up.contiguous(memory_format=torch.channels_last), ref_crop)
    return {} if prior is None else {"prior": prior}
