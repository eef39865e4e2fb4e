"""Convolutions with few output channels: split the kernel into rows to fill the vector lanes.

:class:`FewOutputConv2d` is an ``nn.Conv2d`` (same parameters, same state_dict keys) for
convolutions with only a few output channels, such as flow heads (2 channels) and the
decoder's image output (3 channels). CPU convolution kernels vectorise over output channels,
so a 64→3 convolution fills 3 of 16 float32 lanes: it takes about as long as a 64→16 one
(about a fifth of the GFLOP/s). In CPU inference on channels_last input this layer instead
computes the k×k convolution as a 1×k convolution with ``out_channels · k`` outputs (one per
output channel and kernel row, filling the lanes) followed by a float32 sum of the k
row-shifted partial results. Same multiply-adds, different summation order:

- float32: within float32 rounding of ``F.conv2d``; over four runs of
  ``python benchmarks/few_output_conv.py``, 2.4-3.3× faster for the decoder's 5×5 64→3
  output at 320×512 (1.2× in one run on a busy machine) and 1.4-3.4× for the flow heads.
- bf16/fp16 autocast: the 1×k convolution runs in half precision, so each of the k partial
  sums is rounded to half precision once, where the direct convolution rounds its output
  once; they are then added in float32 and the result is returned in **float32** (not
  rounded again). The error stays within one half-precision rounding of the absolute sum
  ``conv(|x|, |w|)``. Against the exact convolution of the same bf16 inputs, on random
  data, its mean error was 1.3-1.5× the direct bf16 convolution's and its largest error
  0.9-1.2× (``python benchmarks/few_output_conv.py --precision bf16``, which also times it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FewOutputConv2d", "row_split_suits"]

#: The row-split path is used while ``out_channels · kernel rows`` fits this many outputs
#: (one AVX-512 register of float32).
MAX_SPLIT_OUTPUTS = 16


def _dtype_supported(x: Tensor) -> bool:
    """float32 outside autocast, or float32/half input under CPU half-precision autocast."""
    if not torch.is_autocast_enabled("cpu"):
        return x.dtype == torch.float32
    half = torch.get_autocast_dtype("cpu")
    return half in (torch.bfloat16, torch.float16) and x.dtype in (torch.float32, half)


def row_split_suits(conv: nn.Conv2d) -> bool:
    """Whether ``conv``'s shape suits the row-split path: stride 1, no dilation or groups, zero
    "same" padding (``padding = kernel // 2``, odd kernel) and ``out_channels · kernel_height ≤ 16``."""
    kh, kw = conv.kernel_size
    return (
        conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and kh % 2 == 1
        and kw % 2 == 1
        and conv.padding == (kh // 2, kw // 2)
        and conv.out_channels * kh <= MAX_SPLIT_OUTPUTS
    )


class FewOutputConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a faster CPU inference path for few output channels.

    Shapes as ``nn.Conv2d``: B×C_in×H×W → B×C_out×H'×W'. The fast path applies without
    autograd (``torch.no_grad`` / ``inference_mode``) to channels_last input on the CPU that
    is float32 outside autocast, or float32/half under CPU bf16/fp16 autocast (its output is
    then float32, see the module docstring), with stride 1, no dilation or groups, zero
    "same" padding (``padding = kernel // 2`` with an odd kernel) and
    ``out_channels · kernel_height ≤ 16``; anything else runs ``nn.Conv2d.forward``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self._row_split_applies(x):
            return self._row_split_forward(x)
        return super().forward(x)

    def _row_split_applies(self, x: Tensor) -> bool:
        return (
            not torch.is_grad_enabled()
            and x.device.type == "cpu"  # the lane argument is about CPU kernels; GPUs keep cuDNN
            and _dtype_supported(x)
            and x.ndim == 4
            and x.is_contiguous(memory_format=torch.channels_last)
            and row_split_suits(self)
        )

    def _row_split_forward(self, x: Tensor) -> Tensor:
        cout, cin, kh, kw = self.weight.shape
        # One 1×kw kernel per (output channel, kernel row): output channel c·kh + r.
        rows = self.weight.permute(0, 2, 1, 3).reshape(cout * kh, cin, 1, kw)
        partial = F.conv2d(x, rows.contiguous(memory_format=torch.channels_last), padding=(0, kw // 2))
        # Under autocast the partial sums are half precision: add them in float32 (no second rounding).
        partial = partial.float()
        height = x.shape[-2]
        centre = kh // 2
        out = partial[:, centre::kh].clone()  # B×C_out×H×W, channels_last
        for r in range(kh):
            shift = r - centre  # kernel row r reads input row y + shift
            if r == centre or abs(shift) >= height:
                continue
            part = partial[:, r::kh]
            if shift > 0:
                out[:, :, : height - shift] += part[:, :, shift:]
            else:
                out[:, :, -shift:] += part[:, :, : height + shift]
        if self.bias is not None:
            out += self.bias.view(1, -1, 1, 1)
        return out
