"""Evaluation results as files: a CSV of every row, a Markdown report, a JSON summary.

The report and the summary carry, per model evaluated with reference controls, the
*reference gain*: its mean PSNR with the real reference minus the best mean PSNR among its
no-information references (``ref=grey``, ``ref=bicubic-lr``), over the same images, with the
per-image spread and the gain over bicubic.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..core.checkpoint import atomic_write
from .harness import METRICS, EvalResult, ReferenceGain, Row

__all__ = ["markdown_report", "write_report"]

_HEADERS = {"psnr": "PSNR RGB (dB)", "ssim": "SSIM RGB", "psnr_y": "PSNR Y (dB)", "ssim_y": "SSIM Y"}


def _fmt(value: float, metric: str) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.3f}" if metric.startswith("psnr") else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+.3f}"


def _gain_section(gains: dict[str, ReferenceGain], label: str = "RGB") -> list[str]:
    """The reference-gain table and what its columns mean."""
    rows = [
        [
            g.method,
            _fmt(g.psnr, "psnr"),
            f"`{g.best_control}`",
            _fmt(g.control_psnr[g.best_control], "psnr"),
            f"**{_signed(g.reference_gain)}**",
            f"{_signed(g.per_item_min)} / {_signed(g.per_item_median)}",
            _signed(g.gain_over_bicubic),
            str(g.items),
        ]
        for g in gains.values()
    ]
    header = [
        "model",
        "PSNR, real reference",
        "best no-information reference",
        "its PSNR",
        "reference gain",
        "per image: min / median",
        "gain over bicubic",
        "images",
    ]
    return [
        "",
        f"## Reference gain (PSNR {label}, dB)",
        "",
        _table(header, rows),
        "",
        "Reference gain = mean PSNR with the real reference − the best mean PSNR among the same model's "
        "no-information references (`ref=grey`, `ref=bicubic-lr`), over all the images; what the content "
        "of the reference adds. Per image: the same difference on each image (min and median over images). "
        "Gain over bicubic = mean PSNR with the real reference − mean PSNR of `bicubic`.",
    ]


def _metric_label(result: EvalResult) -> str:
    """What the protocol's PSNR/SSIM columns measure (``RGB`` for results without a protocol)."""
    from .protocols import PROTOCOLS

    name = str(result.settings.get("protocol", "rgb v1")).split(" ")[0].split("+")[0]
    protocol = PROTOCOLS.get(name)
    return protocol.metric_label if protocol is not None else "RGB"


def markdown_report(result: EvalResult, title: str = "Evaluation") -> str:
    """The report: protocol, settings, means per method, what each row is, reference gains, PSNR per view and image."""
    s = result.settings
    label = _metric_label(result)
    parts = [f"# {title}", ""]
    parts.append(f"**Protocol {s.get('protocol', 'rgb v1')}** — {s.get('protocol_definition', '')}".rstrip(" —"))
    parts.append("")
    parts.append(
        ", ".join(f"{k}: {v}" for k, v in s.items() if v is not None and k not in ("protocol", "protocol_definition"))
        + ". Metrics are means over images; the PSNR Y / SSIM Y columns are full-range BT.601 luma (kornia)."
    )
    parts += ["", "## Mean over all images", ""]
    summary = result.summary()
    parts.append(
        _table(
            ["method", *(_HEADERS[m].replace("RGB", label) for m in METRICS), "images"],
            [[m, *(_fmt(summary[m][k], k) for k in METRICS), str(summary[m]["count"])] for m in result.methods],
        )
    )
    parts += ["", "What each row is:", ""] + [f"- `{m}`: {result.descriptions.get(m, '')}" for m in result.methods]
    if result.skipped:
        parts += ["", "Not evaluated:", ""] + [f"- `{m}`: {why}" for m, why in result.skipped.items()]
    gains = result.reference_gains()
    if gains:
        parts += _gain_section(gains, label)
    views = result.views()
    if views:
        parts += ["", f"## PSNR {label} (dB) / SSIM {label} per LR view position (i, i)", ""]
        parts.append(
            _table(
                ["view", *result.methods],
                [
                    [
                        f"({v}, {v})",
                        *(
                            f"{_fmt(result.mean(m, 'psnr', v), 'psnr')} / {_fmt(result.mean(m, 'ssim', v), 'ssim')}"
                            for m in result.methods
                        ),
                    ]
                    for v in views
                ],
            )
        )
    parts += ["", f"## PSNR {label} (dB) per image", ""]
    by_item: dict[int, dict[str, Row]] = {}
    for row in result.rows:
        by_item.setdefault(row.index, {})[row.method] = row
    table_rows = []
    for index in sorted(by_item):
        cells = by_item[index]
        first = next(iter(cells.values()))
        label = first.image + (f" ({first.view}, {first.view})" if first.view is not None else "")
        table_rows.append([label, *(_fmt(cells[m].psnr, "psnr") if m in cells else "–" for m in result.methods)])
    parts.append(_table(["image", *result.methods], table_rows))
    return "\n".join(parts) + "\n"


def _csv(result: EvalResult) -> str:
    buffer = io.StringIO()
    fields = ["protocol", "method", "index", "image", "view", *METRICS]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    protocol = result.settings.get("protocol", "rgb v1")
    for row in result.rows:
        writer.writerow({"protocol": protocol, **{k: ("" if v is None else v) for k, v in row.as_dict().items()}})
    return buffer.getvalue()


def write_report(result: EvalResult, out_dir: str | Path, title: str = "Evaluation") -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and ``summary.json`` into ``out_dir`` (atomically).

    Returns:
        ``{"csv": ..., "markdown": ..., "summary": ...}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "markdown": out / "results.md", "summary": out / "summary.json"}
    summary = {
        "settings": result.settings,
        "methods": result.summary(),
        "descriptions": result.descriptions,
        "reference_gain": {m: g.as_dict() for m, g in result.reference_gains().items()},
        "skipped": result.skipped,
    }
    if result.views():
        summary["per_view"] = {
            str(v): {m: {k: result.mean(m, k, v) for k in METRICS} for m in result.methods} for v in result.views()
        }
    texts = {
        "csv": _csv(result),
        "markdown": markdown_report(result, title),
        "summary": json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n",
    }
    for key, path in paths.items():
        atomic_write(path, lambda tmp, text=texts[key]: Path(tmp).write_text(text, encoding="utf-8"))
    return paths
