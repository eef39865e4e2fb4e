"""One table per model from the per-kind evaluations of the viewpoint sets (issue 22's tables).

Usage: ``python scripts/viewpoint_tables.py OUT`` where ``OUT/<kind>/summary.json`` were written
by ``python -m refsr_blocks.evaluation`` (``scripts/evaluate_viewpoint.sh`` runs them). Rows are
the kinds of viewpoint change; columns are bicubic, the model's SISR upsampler alone, the model
with a grey and with the LR-bicubic reference (no information), with the real reference, with
the oracle reference (warped by the true flow, where the kind has one), and the reference gain:
the real reference's mean PSNR minus the better no-information control's, with its per-item
minimum and median. PSNR RGB in dB, means over every item of the set. Where the runs had the
``realesrgan`` baseline, a Real-ESRGAN x4plus column follows bicubic.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

COLUMNS = (
    "bicubic",
    "Real-ESRGAN",
    "SISR alone",
    "grey ref",
    "LR-bicubic ref",
    "real ref",
    "oracle ref",
    "gain",
    "min",
    "median",
)


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def model_rows(out: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """``{model: [(kind, cells), ...]}`` from ``out/<kind>/summary.json``."""
    tables: dict[str, list[tuple[str, list[str]]]] = {}
    for summary_path in sorted(out.glob("*/summary.json")):
        kind = summary_path.parent.name
        summary = json.loads(summary_path.read_text())
        methods, gains = summary["methods"], summary["reference_gain"]
        for model, gain in gains.items():

            def psnr(name: str, methods: dict = methods) -> float | None:
                return methods[name]["psnr"] if name in methods else None

            cells = [
                _cell(psnr("bicubic")),
                _cell(psnr("realesrgan_x4plus")),
                _cell(psnr(f"{model}:upsampler")),
                _cell(psnr(f"{model} (ref=grey)")),
                _cell(psnr(f"{model} (ref=bicubic-lr)")),
                _cell(gain["psnr"]),
                _cell(psnr(f"{model} (ref=oracle)")),
                _cell(gain["reference_gain"], signed=True),
                _cell(gain["per_item_min"], signed=True),
                _cell(gain["per_item_median"], signed=True),
            ]
            tables.setdefault(model, []).append((f"{kind} ({gain['items']})", cells))
    return tables


def markdown(tables: dict[str, list[tuple[str, list[str]]]]) -> str:
    lines = []
    for model, rows in tables.items():
        # the Real-ESRGAN column only where some kind was evaluated with it
        keep = [i for i in range(len(COLUMNS)) if COLUMNS[i] != "Real-ESRGAN" or any(c[i] != "–" for _, c in rows)]
        lines += [
            f"### {model}",
            "",
            "| kind (items) | " + " | ".join(COLUMNS[i] for i in keep) + " |",
            "|---" + "|---:" * len(keep) + "|",
        ]
        lines += [f"| {kind} | " + " | ".join(cells[i] for i in keep) + " |" for kind, cells in rows]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/viewpoint_tables.py OUT   (OUT/<kind>/summary.json)")
    print(markdown(model_rows(Path(sys.argv[1]))))
