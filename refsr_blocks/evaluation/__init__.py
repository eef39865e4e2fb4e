"""Evaluation: PSNR/SSIM (RGB and Y) per image and per light-field view, for RefSR models and
their baselines (bicubic, the SISR upsampler alone), written as Markdown, CSV and JSON.

Example::

    from refsr_blocks.evaluation import bicubic, methods_from_checkpoint, evaluate, write_report
    model, methods = methods_from_checkpoint("runs/x/model.safetensors", upsampler=True)
    result = evaluate([bicubic(4), *methods], dataset)
    write_report(result, "runs/x/eval")
"""

from __future__ import annotations

from .baselines import Method, bicubic, methods_from_checkpoint, refsr_model, sisr_upsampler
from .command import add_eval_arguments, dataset_from_argument, eval_main
from .harness import METRICS, EvalResult, Row, evaluate
from .metrics import crop_border, psnr, ssim, to_y
from .report import markdown_report, write_report

__all__ = [
    "METRICS",
    "EvalResult",
    "Method",
    "Row",
    "add_eval_arguments",
    "bicubic",
    "crop_border",
    "dataset_from_argument",
    "eval_main",
    "evaluate",
    "markdown_report",
    "methods_from_checkpoint",
    "psnr",
    "refsr_model",
    "sisr_upsampler",
    "ssim",
    "to_y",
    "write_report",
]
