"""Evaluation results as files: a CSV of every row, a Markdown report, a JSON summary."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..checkpoint import atomic_write
from .harness import METRICS, EvalResult, Row

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


def markdown_report(result: EvalResult, title: str = "Evaluation") -> str:
    """The report: settings, mean metrics per method, PSNR per view (light fields) and per image."""
    s = result.settings
    parts = [f"# {title}", ""]
    parts.append(
        ", ".join(f"{k}: {v}" for k, v in s.items() if v is not None)
        + ". Metrics are means over images; Y is full-range BT.601 luma (kornia)."
    )
    parts += ["", "## Mean over all images", ""]
    summary = result.summary()
    parts.append(
        _table(
            ["method", *(_HEADERS[m] for m in METRICS), "images"],
            [[m, *(_fmt(summary[m][k], k) for k in METRICS), str(summary[m]["count"])] for m in result.methods],
        )
    )
    parts += ["", "Methods:", ""] + [f"- `{m}`: {result.descriptions.get(m, '')}" for m in result.methods]
    views = result.views()
    if views:
        parts += ["", "## PSNR RGB (dB) / SSIM RGB per LR view position (i, i)", ""]
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
    parts += ["", "## PSNR RGB (dB) per image", ""]
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
    fields = ["method", "index", "image", "view", *METRICS]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.as_dict().items()})
    return buffer.getvalue()


def write_report(result: EvalResult, out_dir: str | Path, title: str = "Evaluation") -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and ``summary.json`` into ``out_dir`` (atomically).

    Returns:
        ``{"csv": ..., "markdown": ..., "summary": ...}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "markdown": out / "results.md", "summary": out / "summary.json"}
    summary = {"settings": result.settings, "methods": result.summary(), "descriptions": result.descriptions}
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
