"""Pretrained weights shipped with the package, each with a model card.

A pretrained entry is a model file (``refsr_blocks/assets/<name>.safetensors``, spec inside)
plus its card (``<name>.json`` beside it): what it was trained on, the disparity range, the
steps, the command that reproduces it and the table measured on held-out data. Cards are
written by the scripts that measured them, never by hand.

Example:
    >>> "crossnet_real_x4" in list_pretrained()
    True
    >>> pretrained_card()["name"] == DEFAULT_PRETRAINED
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import load_model
from .errors import CheckpointError, UnknownComponentError
from .registry import closest

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_PRETRAINED",
    "list_pretrained",
    "load_pretrained",
    "pretrained_card",
    "pretrained_path",
]

#: Where shipped weights, cards and the demo pair live.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: The entry :func:`load_pretrained` gives when no name is given.
DEFAULT_PRETRAINED = "crossnet_real_x4"
#: Every shipped entry, default first, with one line each.
_ENTRIES: dict[str, str] = {
    "crossnet_real_x4": "×4 CrossNet for real photos and stereo pairs (phase-correlation pre-alignment, MDSR, FlowNetS+ ¼)",
    "crossnet_small_x4": "×4 CrossNet of the first result: procedural images, ±15 px parallax (not for real photos)",
}


def list_pretrained() -> list[str]:
    """Names of the shipped pretrained models, the default first."""
    return list(_ENTRIES)


def _check_name(name: str | None) -> str:
    name = DEFAULT_PRETRAINED if name is None else name
    if name not in _ENTRIES:
        hint = closest(name, list(_ENTRIES))
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise UnknownComponentError(f"no pretrained model {name!r}.{did_you_mean} Shipped: {', '.join(_ENTRIES)}")
    return name


def pretrained_path(name: str | None = None) -> Path:
    """The model file of a shipped entry (default: :data:`DEFAULT_PRETRAINED`); it may be absent
    from a source checkout that did not fetch its large files."""
    return ASSETS_DIR / f"{_check_name(name)}.safetensors"


def pretrained_card(name: str | None = None) -> dict[str, Any]:
    """The model card of a shipped entry: ``name``, ``summary`` and what its JSON records
    (``training_data``, ``disparity_range``, ``steps``, ``command``, ``results``, …)."""
    name = _check_name(name)
    path = ASSETS_DIR / f"{name}.json"
    card: dict[str, Any] = {"name": name, "summary": _ENTRIES[name]}
    if path.is_file():
        card.update(json.loads(path.read_text(encoding="utf-8")))
    return card


def load_pretrained(name: str | None = None, *, map_location: str = "cpu") -> nn.Module:
    """Load a shipped pretrained model, ready for inference (``eval()`` mode).

    Args:
        name: an entry of :func:`list_pretrained`; ``None`` for the default.
        map_location: device to load the weights to.

    Raises:
        UnknownComponentError: no such entry (with the closest names).
        CheckpointError: the file is missing or damaged.
    """
    path = pretrained_path(name)
    if not path.is_file():
        raise CheckpointError(f"the weights of {path.stem!r} are not installed ({path}); reinstall refsr-blocks")
    return load_model(path, map_location=map_location).eval()
