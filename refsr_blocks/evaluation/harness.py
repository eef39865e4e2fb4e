"""Run methods over a RefSR dataset and measure PSNR/SSIM per image.

Every method sees the same items; images larger than ``window`` go through
:func:`~refsr_blocks.infer.super_resolve` (sliding windows, CrossNet's 512/256). Rows carry
the image name and, for light fields, the LR view position ``(i, i)``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..infer import super_resolve
from .baselines import Method
from .metrics import psnr, ssim

__all__ = ["METRICS", "EvalResult", "Row", "evaluate"]

#: Metric columns of a row, in report order.
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")


@dataclass(frozen=True)
class Row:
    """The metrics of one method on one image.

    Attributes:
        method: the method's name.
        index: the dataset index.
        image: the item's ``name`` (or its index).
        view: the light-field view i of the LR image (position (i, i)), or None.
        psnr, ssim: on RGB in [0, 1].
        psnr_y, ssim_y: on the luma channel Y.
    """

    method: str
    index: int
    image: str
    view: int | None
    psnr: float
    ssim: float
    psnr_y: float
    ssim_y: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


@dataclass(frozen=True)
class EvalResult:
    """All rows of an evaluation, plus its settings.

    Attributes:
        rows: one per (item, method), items in dataset order.
        methods: method names in the order given.
        descriptions: method name → one-line description.
        settings: scale, border, window, stride, dataset description.
    """

    rows: list[Row]
    methods: list[str]
    descriptions: dict[str, str]
    settings: dict[str, Any]

    def mean(self, method: str, metric: str = "psnr", view: int | None = None) -> float:
        """Mean of ``metric`` over the rows of ``method`` (optionally of one view)."""
        return _mean([getattr(r, metric) for r in self.rows if r.method == method and (view is None or r.view == view)])

    def views(self) -> list[int]:
        """The light-field views present, sorted (empty for other datasets)."""
        return sorted({r.view for r in self.rows if r.view is not None})

    def summary(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean}}`` (with ``"count"``)."""
        return {
            m: {**{k: self.mean(m, k) for k in METRICS}, "count": sum(r.method == m for r in self.rows)}
            for m in self.methods
        }


def evaluate(
    methods: Sequence[Method],
    dataset: Dataset,  # type: ignore[type-arg]
    *,
    border: int = 0,
    window: int = 512,
    stride: int = 256,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    progress: bool = True,
    settings: dict[str, Any] | None = None,
) -> EvalResult:
    """Measure every method on every item of ``dataset``.

    Args:
        methods: what to compare (names must be unique).
        dataset: items ``{"lr": 3×h×w, "ref": 3×H×W, "hr": 3×H×W, "name"?: str, "view"?: int}``.
        border: pixels cropped from each side before measuring.
        window, stride: sliding-window size and step in HR pixels (multiples of the scale).
        device: where the methods run.
        limit: evaluate only the first ``limit`` items.
        progress: show a progress bar over the items.
        settings: extra values recorded in the result (e.g. the dataset description).

    Returns:
        An :class:`EvalResult`.
    """
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}")
    if not methods:
        raise ValueError("nothing to evaluate: give at least one method")
    count = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    rows: list[Row] = []
    for index in tqdm(range(count), desc="evaluate", unit="image", disable=not progress):
        item = dataset[index]
        lr = item["lr"].unsqueeze(0).to(device)
        ref = item["ref"].unsqueeze(0).to(device)
        hr = item["hr"].unsqueeze(0).to(device)
        view = item.get("view")
        name = str(item.get("name", index))
        for method in methods:
            sr = super_resolve(method.run, lr, ref, window=window, stride=stride, progress=False)
            rows.append(
                Row(
                    method=method.name,
                    index=index,
                    image=name,
                    view=None if view is None else int(view),
                    psnr=float(psnr(sr, hr, border=border)[0]),
                    ssim=float(ssim(sr, hr, border=border)[0]),
                    psnr_y=float(psnr(sr, hr, border=border, y_channel=True)[0]),
                    ssim_y=float(ssim(sr, hr, border=border, y_channel=True)[0]),
                )
            )
    return EvalResult(
        rows=rows,
        methods=names,
        descriptions={m.name: m.description for m in methods},
        settings={"border": border, "window": window, "stride": stride, "items": count, **(settings or {})},
    )
