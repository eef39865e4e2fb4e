"""Convolutions whose weight stays in oneDNN's blocked layout between CPU inference calls.

On the CPU, ``nn.Conv2d`` hands oneDNN a plain weight tensor, which oneDNN reorders into its
blocked layout on every call; under bf16 autocast the weight is also cast to bf16 on every
call. For a layer with many weights applied to a small map that costs more than the
convolution: FlowNetS's 1024→1024 3×3 conv at 1/64 scale (9.4 M weights, 5×8 pixels for a
320×512 output) took 27 ms as ``nn.Conv2d`` and 4 ms with its weight packed once, in one
run of ``python benchmarks/prepacked_conv.py`` (which times every FlowNetS layer both ways;
with ``--retain`` the plain layer took about 10 ms: part of its cost is page-faulting the
reorder buffer).

:class:`PrepackedConv2d` and :class:`PrepackedConvTranspose2d` reorder the weight once with
the operators that ``torch.compile``'s freezing pass uses
(``torch.ops.mkldnn._reorder_convolution_weight`` and its transposed twin), keep it until
the weight, the compute dtype or the input shape changes, and run the same oneDNN
convolution through ``torch.ops.mkldnn._convolution_pointwise``. Outputs are bit-identical to
``nn.Conv2d`` / ``nn.ConvTranspose2d`` (``tests/layers/test_prepacked.py``).

The operators are private, so they are checked once per process (:func:`packed_dtypes`): both
are called on a tiny case and compared with ``F.conv2d`` / ``F.conv_transpose2d``; where one
is missing, raises or disagrees, one ``RuntimeWarning`` says why and these classes run as
their ``nn`` parents. The same check decides bf16 separately (:func:`packed_dtype_problem`
says why it failed: oneDNN's bf16 reorder needs avx512bw/vl/dq or avx_ne_convert): where it
fails, these layers run bf16 input as their ``nn`` parents, quietly, since fp32 users do not
care. :func:`bf16_fast_path_available` is the stricter question that
``Predictor(precision="auto")`` and the tests ask: does bf16 run natively *and* packed here. Models are built from plain ``nn`` layers;
:func:`refsr_blocks.layers.use_fast_layers` swaps these classes in for inference.

``torch.utils.flop_counter.FlopCounterMode`` does not know the packed operators; pass it
``custom_mapping=flop_formulas()`` to count them as the convolutions they are.

The price is one packed copy of each such layer's weight (float32, or bf16 under bf16
autocast) held while the layer is used for inference; ``module.to(...)`` and the like drop
it, and it is never saved.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "PrepackedConv2d",
    "PrepackedConvTranspose2d",
    "bf16_fast_path_available",
    "bf16_fast_path_problem",
    "flop_formulas",
    "packed_dtype_problem",
    "packed_dtypes",
]

#: Compute dtypes the packed path handles (oneDNN's fp16 convolutions need AVX512-FP16).
PACKED_DTYPES = (torch.float32, torch.bfloat16)


_OP_NAMES = (
    "_reorder_convolution_weight",
    "_reorder_convolution_transpose_weight",
    "_convolution_pointwise",
    "_convolution_transpose_pointwise",
)


def _probe_dtype(dtype: torch.dtype) -> str | None:
    """Run both packed operators once on a tiny case in ``dtype``; None if they match ``F.conv*``,
    else what went wrong."""
    import torch.nn.functional as F

    cl = torch.channels_last
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 5, 6, generator=gen).to(dtype).contiguous(memory_format=cl)
    w = torch.randn(8, 4, 3, 3, generator=gen).to(dtype).contiguous(memory_format=cl)
    wt = torch.randn(4, 8, 4, 4, generator=gen).to(dtype).contiguous(memory_format=cl)
    b = torch.randn(8, generator=gen).to(dtype)
    ops = torch.ops.mkldnn
    try:
        with torch.inference_mode():
            packed = ops._reorder_convolution_weight(w, [1, 1], [2, 2], [1, 1], 1, list(x.shape))
            out = ops._convolution_pointwise(x, packed, b, [1, 1], [2, 2], [1, 1], 1, "none", [], "")
            expected = F.conv2d(x, w, b, stride=2, padding=1)
            packed_t = ops._reorder_convolution_transpose_weight(wt, [1, 1], [0, 0], [2, 2], [1, 1], 1, list(x.shape))
            out_t = ops._convolution_transpose_pointwise(
                x, packed_t, None, [1, 1], [0, 0], [2, 2], [1, 1], 1, "none", [], ""
            )
            expected_t = F.conv_transpose2d(x, wt, None, stride=2, padding=1)
    except Exception as err:  # missing operator, changed signature, unsupported dtype: fall back
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for name, got, want in (("conv", out, expected), ("transposed conv", out_t, expected_t)):
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"{name} gave {got.dtype}{tuple(got.shape)}, expected {want.dtype}{tuple(want.shape)}"
        if not torch.allclose(got.float(), want.float(), rtol=tol, atol=tol):
            return f"{name} differs from F.conv by {(got.float() - want.float()).abs().max().item():.3g}"
    return None


#: Why each dtype failed the last :func:`packed_dtypes` check (filled by it; reset with its cache).
_PROBLEMS: dict[torch.dtype, str] = {}


@functools.cache
def packed_dtypes() -> tuple[torch.dtype, ...]:
    """The compute dtypes in which the packed path runs here: those of :data:`PACKED_DTYPES` for which
    this PyTorch's (private) oneDNN operators exist and give ``F.conv2d``'s result on a tiny case.

    Checked once per process. Where float32 fails, one ``RuntimeWarning`` says why and every
    :class:`PrepackedConv2d` / :class:`PrepackedConvTranspose2d` runs as its ``nn`` parent (a PyTorch
    upgrade that renames or changes these operators costs speed, never correctness). Where only
    bf16 fails (a CPU without avx512bw/vl/dq or avx_ne_convert), bf16 input runs the ``nn`` parent,
    without a warning here: ``Predictor(precision="bf16")`` warns instead.
    """
    _PROBLEMS.clear()
    problem = _float32_problem()
    if problem is not None:
        _PROBLEMS.update(dict.fromkeys(PACKED_DTYPES, problem))
        if torch.backends.mkldnn.is_available():
            _warn_fallback(problem)
        return ()
    bf16_problem = _probe_dtype(torch.bfloat16)
    if bf16_problem is not None:
        _PROBLEMS[torch.bfloat16] = bf16_problem
    return tuple(d for d in PACKED_DTYPES if d not in _PROBLEMS)


def _float32_problem() -> str | None:
    """Why the packed path cannot run at all here (None where float32 passes the check)."""
    if not torch.backends.mkldnn.is_available():
        return f"PyTorch {torch.__version__} is built without oneDNN (mkldnn)"
    missing = [name for name in _OP_NAMES if not hasattr(torch.ops.mkldnn, name)]
    if missing:
        return f"torch.ops.mkldnn lacks {', '.join(missing)}"
    return _probe_dtype(torch.float32)


def packed_dtype_problem(dtype: torch.dtype) -> str | None:
    """Why the packed path does not run in ``dtype`` here (None where it does), from :func:`packed_dtypes`' check.

    For bf16 on a CPU without avx512bw/vl/dq or avx_ne_convert this is oneDNN's own message, which
    names the missing CPU support.
    """
    if dtype not in PACKED_DTYPES:
        return f"the packed path handles {', '.join(map(str, PACKED_DTYPES))}, not {dtype}"
    return None if dtype in packed_dtypes() else _PROBLEMS.get(dtype, "failed its check")


#: oneDNN ISA limits (``ONEDNN_MAX_CPU_ISA``) that still allow its native bf16 kernels.
_BF16_ISA_MARKERS = ("BF16", "FP16", "AMX", "AVX10")


def _native_bf16_problem() -> str | None:
    """Why this CPU (as oneDNN may use it) lacks bf16 arithmetic instructions; None where it has them.

    oneDNN runs bf16 convolutions on any AVX-512 CPU, but without avx512_bf16 / AMX it emulates
    them, several times slower than float32 (5-30× measured on AVX2). The private ``torch.cpu``
    probes read the CPU, not oneDNN's ``ONEDNN_MAX_CPU_ISA`` limit, so that is read here too.
    """
    native = any(
        getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    if not native:
        return "this CPU has no bf16 arithmetic instructions (avx512_bf16 or AMX): oneDNN would emulate them"
    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        limit = os.environ.get(variable, "").upper()
        if limit and limit not in ("ALL", "DEFAULT") and not any(m in limit for m in _BF16_ISA_MARKERS):
            return f"{variable}={limit} keeps oneDNN from the CPU's bf16 instructions"
    return None


def bf16_fast_path_problem() -> str | None:
    """Why bf16 inference is not fast on this CPU (None where it is): the question
    ``Predictor(precision="auto")`` and the tests ask.

    Fast means both: the packed bf16 convolutions pass their check (:func:`packed_dtype_problem`)
    and the CPU has native bf16 instructions that oneDNN may use (cheap after the first call:
    the operator check runs once per process).
    """
    return packed_dtype_problem(torch.bfloat16) or _native_bf16_problem()


def bf16_fast_path_available() -> bool:
    """Whether bf16 CPU inference runs natively and with packed weights here (see :func:`bf16_fast_path_problem`)."""
    return bf16_fast_path_problem() is None


def _warn_fallback(reason: str) -> None:
    warnings.warn(
        f"refsr_blocks: the packed-weight convolutions are disabled ({reason}); "
        f"convolutions run as plain nn.Conv2d (torch {torch.__version__}), slower on the CPU but correct",
        RuntimeWarning,
        stacklevel=3,
    )


def _mkldnn_ops_available() -> bool:
    """Whether the packed path works here at all (float32 passes :func:`packed_dtypes`' check)."""
    return torch.float32 in packed_dtypes()


def flop_formulas() -> dict[Any, Any]:
    """FLOP formulas of the packed convolution operators, for ``FlopCounterMode(custom_mapping=...)``.

    Each counts as ``torch.utils.flop_counter`` counts the convolution it replaces (the packed
    weight keeps the logical O×I×kh×kw shape). Empty where the operators are unavailable.
    """
    if not _mkldnn_ops_available():
        return {}
    from torch.utils.flop_counter import conv_flop_count  # imported on first use: a heavy import

    def conv(x_shape: list[int], w_shape: list[int], *args: Any, out_shape: list[int], **kwargs: Any) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)

    def conv_transpose(x_shape: list[int], w_shape: list[int], *args: Any, out_shape: list[int], **kwargs: Any) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=True)

    ops = torch.ops.mkldnn
    return {ops._convolution_pointwise: conv, ops._convolution_transpose_pointwise: conv_transpose}


def _compute_dtype(x: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype the convolution runs in, or None where the packed path does not apply."""
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        ok = weight.dtype == torch.float32 and x.dtype in (torch.float32, dtype)
    else:
        dtype = x.dtype
        ok = weight.dtype == dtype
    return dtype if ok and dtype in packed_dtypes() else None


class _PackedWeightCache:
    """Mixin for conv modules: the packed weight of the last inference call, and when to use it."""

    weight: Tensor
    bias: Tensor | None
    padding_mode: str
    _packed: tuple[tuple[Any, ...], Tensor] | None = None

    def _packed_dtype(self, x: Tensor) -> torch.dtype | None:
        if (
            torch.is_grad_enabled()
            or torch.compiler.is_compiling()  # compiled graphs pack weights themselves (freezing)
            or x.device.type != "cpu"
            or self.weight.device.type != "cpu"
            or x.ndim != 4
            or not x.is_contiguous(memory_format=torch.channels_last)
            # nn.Conv2d picks NHWC kernels for channels_last weights; packing for those keeps it bit-identical
            or not self.weight.is_contiguous(memory_format=torch.channels_last)
            or self.padding_mode != "zeros"
            or not isinstance(self.padding, tuple)  # "same" / "valid" strings
            or not _mkldnn_ops_available()
        ):
            return None
        return _compute_dtype(x, self.weight)

    def _packed_forward(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """The convolution in ``dtype`` with the packed weight (packed again if stale)."""
        x = x.to(dtype)
        # Reused while weight (storage and in-place version), dtype and input shape are unchanged.
        key = (self.weight.data_ptr(), self.weight._version, dtype, tuple(x.shape))
        if self._packed is None or self._packed[0] != key:
            self._packed = None  # free the old copy before making the new one
            self._packed = (key, self._reorder(self.weight.detach().to(dtype), list(x.shape)))
        bias = None if self.bias is None else self.bias.to(dtype)
        return self._convolve(x, self._packed[1], bias)

    def _reorder(self, weight: Tensor, input_size: list[int]) -> Tensor:
        raise NotImplementedError

    def _convolve(self, x: Tensor, packed: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._packed = None  # .to(), .cuda(), .half(), ...: the packed copy is stale
        return super()._apply(fn, *args, **kwargs)  # type: ignore[misc]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        return {k: v for k, v in state.items() if k != "_packed"}


class PrepackedConv2d(_PackedWeightCache, nn.Conv2d):
    """``nn.Conv2d`` that packs its weight once for CPU inference (see the module docstring).

    Shapes as ``nn.Conv2d``. The packed path applies without autograd, outside
    ``torch.compile``, to channels_last CPU input and weight (as after
    :func:`refsr_blocks.inference.runtime.optimize_for_inference`) with zero padding given as numbers,
    in float32 or bfloat16 (also under CPU bf16 autocast); anything else runs
    ``nn.Conv2d.forward``.
    """

    def forward(self, x: Tensor) -> Tensor:
        dtype = self._packed_dtype(x)
        return super().forward(x) if dtype is None else self._packed_forward(x, dtype)

    def _reorder(self, weight: Tensor, input_size: list[int]) -> Tensor:
        return torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, input_size
        )

    def _convolve(self, x: Tensor, packed: Tensor, bias: Tensor | None) -> Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed, bias, self.padding, self.stride, self.dilation, self.groups, "none", [], ""
        )


class PrepackedConvTranspose2d(_PackedWeightCache, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that packs its weight once for CPU inference.

    Shapes and conditions as :class:`PrepackedConv2d`; a call with ``output_size`` runs
    ``nn.ConvTranspose2d.forward``.
    """

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        dtype = None if output_size is not None else self._packed_dtype(x)
        return super().forward(x, output_size) if dtype is None else self._packed_forward(x, dtype)

    def _reorder(self, weight: Tensor, input_size: list[int]) -> Tensor:
        return torch.ops.mkldnn._reorder_convolution_transpose_weight(
            weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, input_size
        )

    def _convolve(self, x: Tensor, packed: Tensor, bias: Tensor | None) -> Tensor:
        return torch.ops.mkldnn._convolution_transpose_pointwise(
            x, packed, bias, self.padding, self.output_padding, self.stride, self.dilation, self.groups, "none", [], ""
        )
