"""Evaluation: PSNR/SSIM (RGB and Y) per image and per light-field view, for RefSR models,
their baselines (bicubic, the SISR upsampler alone) and their reference controls (the model fed
a grey reference, its bicubic-upsampled LR, or the reference warped by the true flow), with
each model's reference gain, written as Markdown, CSV and JSON.

Example::

    from refsr_blocks.evaluation import CONTROLS, bicubic, methods_from_checkpoint, evaluate, write_report
    model, methods = methods_from_checkpoint("runs/x/model.safetensors", upsampler=True, controls=CONTROLS)
    result = evaluate([bicubic(4), *methods], dataset)
    result.reference_gain("x")  # real reference vs the best no-information reference, in dB
    write_report(result, "runs/x/eval")
"""

from __future__ import annotations

from .baselines import (
    Method,
    bicubic,
    control_name,
    methods_from_checkpoint,
    reference_controls,
    refsr_model,
    sisr_upsampler,
)
from .command import add_eval_arguments, dataset_from_argument, eval_main
from .harness import METRICS, EvalResult, ReferenceGain, Row, evaluate
from .metrics import crop_border, psnr, ssim, to_y
from .references import CONTROLS, REFERENCES, Reference, bicubic_lr_reference, grey_reference, oracle_reference
from .report import markdown_report, write_report

__all__ = [
    "CONTROLS",
    "METRICS",
    "REFERENCES",
    "EvalResult",
    "Method",
    "Reference",
    "ReferenceGain",
    "Row",
    "add_eval_arguments",
    "bicubic",
    "bicubic_lr_reference",
    "control_name",
    "crop_border",
    "dataset_from_argument",
    "eval_main",
    "evaluate",
    "grey_reference",
    "markdown_report",
    "methods_from_checkpoint",
    "oracle_reference",
    "psnr",
    "reference_controls",
    "refsr_model",
    "sisr_upsampler",
    "ssim",
    "to_y",
    "write_report",
]
