"""Run methods over a RefSR dataset and measure PSNR/SSIM per image.

Every method sees the same items; images larger than ``window`` go through
:func:`~refsr_blocks.inference.tiling.super_resolve` (sliding windows, CrossNet's 512/256). Rows carry
the image name and, for light fields, the LR view position ``(i, i)``. A control (a method with
a :class:`~.references.Reference`) is fed the reference built from the whole item instead of
the item's own; an item lacking what it needs (the oracle's ``"flow"``) gets no row for it.
:meth:`EvalResult.reference_gain` compares a model with its no-information controls.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..core.errors import InputError
from ..inference.tiling import super_resolve
from .baselines import Method
from .metrics import psnr, ssim
from .protocols import Protocol, get_protocol

__all__ = ["METRICS", "EvalResult", "ReferenceGain", "Row", "evaluate"]

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
        psnr, ssim: as the evaluation's protocol measures them (protocol ``rgb``: on RGB in [0, 1]).
        psnr_y, ssim_y: on the full-range luma Y (kornia), with the protocol's border crop.
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
class ReferenceGain:
    """What the real reference adds to a model, in PSNR RGB (dB), over the same images.

    Attributes:
        method: the model with the real reference.
        psnr: its mean PSNR.
        control_psnr: mean PSNR of each no-information control (``{row name: dB}``).
        best_control: the control with the highest mean PSNR.
        reference_gain: ``psnr - control_psnr[best_control]``.
        per_item_min, per_item_median: of the per-image differences ``psnr_i -
            best_control_psnr_i`` (their mean is ``reference_gain``).
        bicubic_psnr: mean PSNR of the bicubic baseline, None if it was not evaluated.
        gain_over_bicubic: ``psnr - bicubic_psnr``, None if bicubic was not evaluated.
        items: the number of images all of these were measured on.
    """

    method: str
    psnr: float
    control_psnr: dict[str, float]
    best_control: str
    reference_gain: float
    per_item_min: float
    per_item_median: float
    bicubic_psnr: float | None
    gain_over_bicubic: float | None
    items: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    """All rows of an evaluation, plus its settings.

    Attributes:
        rows: one per (item, method), items in dataset order.
        methods: the names of the methods measured, in the order given (see ``skipped``).
        descriptions: method name → one-line description.
        settings: scale, border, window, stride, dataset description.
        no_information: model method → the names of its no-information controls (the
            methods with ``control_of`` it whose reference is not informative).
        skipped: method name → why it has no row at all (e.g. no item has a ``"flow"``);
            such methods are not in ``methods``.
    """

    rows: list[Row]
    methods: list[str]
    descriptions: dict[str, str]
    settings: dict[str, Any]
    no_information: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

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

    def reference_gain(self, method: str, bicubic: str = "bicubic") -> ReferenceGain | None:
        """The reference gain of ``method`` over its no-information controls (None if it has none).

        Means are over the images on which ``method`` and all its no-information controls were
        measured (all of them, for the built-in controls): never a chosen subset. ``bicubic``
        names the bicubic row (the gain over it is None when that row is missing).
        """
        controls = [c for c in self.no_information.get(method, []) if c in self.methods]
        if method not in self.methods or not controls:
            return None
        psnr = self._psnr_by_item()
        items = sorted(set(psnr.get(method, {})).intersection(*(psnr.get(c, {}) for c in controls)))
        if not items:
            return None
        mean = {name: _mean([psnr[name][i] for i in items]) for name in (method, *controls)}
        best = max(controls, key=lambda c: mean[c])
        per_item = [psnr[method][i] - psnr[best][i] for i in items]
        base: float | None = None
        if bicubic in psnr and all(i in psnr[bicubic] for i in items):
            base = _mean([psnr[bicubic][i] for i in items])
        return ReferenceGain(
            method=method,
            psnr=mean[method],
            control_psnr={c: mean[c] for c in controls},
            best_control=best,
            reference_gain=mean[method] - mean[best],
            per_item_min=min(per_item),
            per_item_median=statistics.median(per_item),
            bicubic_psnr=base,
            gain_over_bicubic=None if base is None else mean[method] - base,
            items=len(items),
        )

    def reference_gains(self, bicubic: str = "bicubic") -> dict[str, ReferenceGain]:
        """``{method: its ReferenceGain}`` for every method with no-information controls."""
        gains = {m: self.reference_gain(m, bicubic) for m in self.methods if m in self.no_information}
        return {m: g for m, g in gains.items() if g is not None}

    def _psnr_by_item(self) -> dict[str, dict[int, float]]:
        table: dict[str, dict[int, float]] = {}
        for row in self.rows:
            table.setdefault(row.method, {})[row.index] = row.psnr
        return table


def _protocol(protocol: str | Protocol, border: int | None) -> Protocol:
    """The protocol, with ``border`` overriding its crop (under a name that says so)."""
    proto = get_protocol(protocol)
    if border is None or border == proto.border:
        return proto
    return dataclasses.replace(proto, name=f"{proto.name}+border{border}", border=border)


def evaluate(
    methods: Sequence[Method],
    dataset: Dataset,  # type: ignore[type-arg]
    *,
    protocol: str | Protocol = "rgb",
    border: int | None = None,
    window: int = 512,
    stride: int = 256,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    progress: bool = True,
    settings: dict[str, Any] | None = None,
) -> EvalResult:
    """Measure every method on every item of ``dataset`` under a named protocol.

    Args:
        methods: what to compare (names must be unique; a control's ``control_of`` among them).
        dataset: items ``{"lr": 3×h×w, "ref": 3×H×W, "hr": 3×H×W, "name"?: str, "view"?: int}``
            and whatever else the controls need (the oracle: ``"flow"`` 2×H×W); ``"refs"`` (a
            list of references of any size) for protocols that feed all references.
        protocol: a name in :data:`~refsr_blocks.evaluation.protocols.PROTOCOLS` or a
            :class:`~refsr_blocks.evaluation.protocols.Protocol`: the metric, border, LR
            kernel and reference policy (default ``rgb``: RGB, whole image, the dataset's LR).
        border: pixels cropped from each side, overriding the protocol's (the result names
            the protocol ``<name>+border<N>``).
        window, stride: sliding-window size and step in HR pixels (multiples of the scale);
            a reference that is not s× the LR (or several references) runs whole instead.
        device: where the methods run.
        limit: evaluate only the first ``limit`` items.
        progress: show a progress bar over the items.
        settings: extra values recorded in the result (e.g. the dataset description).

    Returns:
        An :class:`EvalResult` whose settings state the protocol (``protocol``: ``name vN``;
        ``protocol_definition``: the whole definition).
    """
    proto = _protocol(protocol, border)
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}")
    if not methods:
        raise ValueError("nothing to evaluate: give at least one method")
    stray = [m.name for m in methods if m.control_of is not None and m.control_of not in names]
    if stray:
        raise ValueError(f"controls {stray} name a method (control_of) that is not evaluated")
    count = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    rows: list[Row] = []
    refused: dict[str, str] = {}
    for index in tqdm(range(count), desc="evaluate", unit="image", disable=not progress):
        item = dataset[index]
        if "hr" not in item:
            raise ValueError(f"item {index} ({item.get('name', index)}) has no 'hr' image: it cannot be measured")
        images: dict[str, Any] = {k: v.unsqueeze(0).to(device) for k, v in item.items() if isinstance(v, Tensor)}
        if "refs" in item:
            images["refs"] = [r.unsqueeze(0).to(device) for r in item["refs"]]
        scale = images["hr"].shape[-1] // images["lr"].shape[-1]
        images["lr"] = proto.make_lr(images["hr"], images["lr"], scale)
        view = item.get("view")
        name = str(item.get("name", index))
        try:
            images = proto.crop_inputs(images, scale)  # the protocol's window, after the LR is made
        except ValueError as err:
            raise InputError(f"item {index} ({name}): {err} (--protocol)") from None
        refs: list[Tensor] | None = images.pop("refs", None)
        batch: dict[str, Tensor] = images
        lr = batch["lr"]
        hr = batch["hr"][..., : lr.shape[-2] * scale, : lr.shape[-1] * scale]
        for method in methods:
            if method.name in refused:
                continue
            with torch.no_grad():
                ref: Tensor | list[Tensor] | None
                if proto.reference == "all" and method.reference is None and refs is not None:
                    ref = refs
                else:
                    ref = method.reference_for(batch)
            if ref is None:
                continue
            try:
                sr = _run(method, lr, ref, scale, window, stride)
            except InputError as err:
                if any(r.method == method.name for r in rows):
                    raise
                refused[method.name] = f"it refused the inputs of protocol {proto.label}: {err}"
                continue
            rows.append(_row(method.name, index, name, view, proto, sr, hr))
    measured = {r.method for r in rows}
    skipped = {
        m.name: f"no item carries {', '.join(repr(k) for k in m.reference.needs)}, which its reference needs"
        for m in methods
        if m.name not in measured and m.reference is not None and count > 0
    }
    skipped.update({n: why for n, why in refused.items() if n not in measured})
    kept = [m for m in methods if m.name not in skipped]
    no_information: dict[str, list[str]] = {}
    for m in kept:
        if m.control_of is not None and m.reference is not None and not m.reference.informative:
            no_information.setdefault(m.control_of, []).append(m.name)
    return EvalResult(
        rows=rows,
        methods=[m.name for m in kept],
        descriptions={m.name: m.description for m in kept},
        settings={
            "protocol": proto.label,
            "protocol_definition": proto.describe(),
            "border": proto.border,
            "window": window,
            "stride": stride,
            "items": count,
            **(settings or {}),
        },
        no_information=no_information,
        skipped=skipped,
    )


def _row(method: str, index: int, name: str, view: Any, proto: Protocol, sr: Tensor, hr: Tensor) -> Row:
    """The measurements of one output.

    Raises:
        InputError: the image is too small for the metrics after the border crop, naming it.
    """
    try:
        p, s = proto.measure(sr, hr)
        y = psnr(sr, hr, border=proto.border, y_channel=True), ssim(sr, hr, border=proto.border, y_channel=True)
    except ValueError as err:  # a border that leaves nothing, an image under SSIM's 11×11 window
        fix = "lower the border (--border) or evaluate larger images" if proto.border else "evaluate larger images"
        raise InputError(f"item {index} ({name}) cannot be measured: {err}; {fix}") from None
    view = None if view is None else int(view)
    return Row(method, index, name, view, float(p[0]), float(s[0]), float(y[0][0]), float(y[1][0]))


def _run(method: Method, lr: Tensor, ref: Tensor | list[Tensor], scale: int, window: int, stride: int) -> Tensor:
    """The method's output: in sliding windows when the reference is one image s× the LR, else whole."""
    size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if isinstance(ref, list) or tuple(ref.shape[-2:]) != size:
        return method.run(lr, ref)  # type: ignore[arg-type]
    return super_resolve(method.run, lr, ref, window=window, stride=stride, progress=False)
