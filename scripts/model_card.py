"""What the make_*_assets.py scripts share: a run's weights, a card's rows, its headline sentences.

The scripts import it as ``from model_card import headlines`` (this folder is on ``sys.path``
when one of them runs as ``python scripts/<script>.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def final_weights(run: Path) -> tuple[Path, int]:
    """The run's final model file, else its newest checkpoint's, and the step it holds."""
    steps = [json.loads(line).get("step", 0) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    final = run / "model.safetensors"
    if final.is_file():
        return final, max(steps)
    newest = sorted((run / "checkpoints").glob("step-*"))[-1]
    return newest / "model.safetensors", int(newest.name.split("-")[1])


def rows_of(summary: dict[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    """The parts of an evaluation summary about bicubic and the methods whose names start with
    one of ``keep`` (a model's row and its controls)."""
    ok = lambda name: name == "bicubic" or name.startswith(tuple(keep))  # noqa: E731
    return {
        "settings": summary["settings"],
        "methods": {k: v for k, v in summary["methods"].items() if ok(k)},
        "descriptions": {k: v for k, v in summary["descriptions"].items() if ok(k)},
        "reference_gain": {k: v for k, v in summary["reference_gain"].items() if ok(k)},
    }


def headlines(
    results: dict[str, Any], name: str, splits: Sequence[tuple[str, str]], *, protocol: bool = False
) -> list[str]:
    """One sentence per test split whose evaluation holds a reference gain for the model ``name``.

    Args:
        results: evaluation results per split, as the model card stores them.
        name: the model's row in the results.
        splits: ``(split, what its pairs are)``, in the order of the sentences.
        protocol: name the split's evaluation protocol after what its pairs are.
    """
    sentences = []
    for split, what in splits:
        gain = results.get(split, {}).get("reference_gain", {}).get(name)
        if gain is None:
            continue
        pairs = f"{what} ({results[split]['settings']['protocol']})" if protocol else what
        sentences.append(
            f"test-split mean over {gain['items']} {pairs}: {gain['psnr']:.2f} dB; reference gain "
            f"{gain['reference_gain']:+.2f} dB, gain over bicubic {gain['gain_over_bicubic']:+.2f} dB"
        )
    return sentences
