"""The headline sentences of a shipped model's card, shared by the make_*_assets.py scripts.

The scripts import it as ``from model_card import headlines`` (this folder is on ``sys.path``
when one of them runs as ``python scripts/<script>.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
