"""Everything shipped inside the package: pretrained weights with their model cards, and the demo pair.

A pretrained entry is a model file (``refsr_blocks/assets/<name>.safetensors``, spec inside)
plus its card (``<name>.json`` beside it): what it was trained on, the disparity range, the
steps, the command that reproduces it and the table measured on held-out data. Cards are
written by the scripts that measured them, never by hand.

The demo pair (``refsr_blocks/assets/demo/{lr,ref,hr}.png``) is a real stereo pair of the
test split: ``hr`` the left view, ``lr`` its ×4 reduction, ``ref`` the right view.
``refsr-blocks demo`` super-resolves it with the default weights.

Importing this module is cheap (no torch): the loaders import what they need when called.
Every path is computed from :data:`ASSETS_DIR` at call time.

Example:
    >>> "crossnet_real_x4" in list_pretrained()
    True
    >>> pretrained_card()["name"] == DEFAULT_PRETRAINED
    True
    >>> sorted(demo_pair_files())
    ['hr', 'lr', 'ref']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import CheckpointError, UnknownComponentError, did_you_mean

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_PRETRAINED",
    "DEMO_PAIR",
    "demo_pair_files",
    "list_pretrained",
    "load_demo_pair",
    "load_pretrained",
    "pretrained_card",
    "pretrained_path",
]

#: Where shipped weights, cards and the demo pair live.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: The entry :func:`load_pretrained` gives when no name is given.
DEFAULT_PRETRAINED = "crossnet_viewpoint_x4"
#: The images of the demo pair, in the order a RefSR call takes them (``hr`` is the ground truth).
DEMO_PAIR = ("lr", "ref", "hr")
#: Every shipped entry, default first, with one line each.
_ENTRIES: dict[str, str] = {
    "crossnet_viewpoint_x4": (
        "×4 CrossNet for references from another viewpoint (global patch match, flow, confidence; MDSR 8×48)"
    ),
    "crossnet_viewpoint_x8": "×8 CrossNet for references from another viewpoint (the ×4 stage-2 match_flow fusion at ×8)",
    "crossnet_real_x4": "×4 CrossNet for real photos and stereo pairs (phase-correlation pre-alignment, MDSR, FlowNetS+ ¼)",
    "crossnet_small_x4": "×4 CrossNet of the first result: procedural images, ±15 px parallax (not for real photos)",
    "ttsr_real_x4": "×4 TTSR-style model (attention transfer) trained next to crossnet_real_x4, 1496 steps",
}


# -- pretrained weights -------------------------------------------------------------------------
def list_pretrained() -> list[str]:
    """Names of the shipped pretrained models, the default first."""
    return list(_ENTRIES)


def _check_name(name: str | None) -> str:
    name = DEFAULT_PRETRAINED if name is None else name
    if name not in _ENTRIES:
        raise UnknownComponentError(
            f"no pretrained model {name!r}.{did_you_mean(name, _ENTRIES)} Shipped: {', '.join(_ENTRIES)}"
        )
    return name


def pretrained_path(name: str | None = None) -> Path:
    """The model file of a shipped entry (default: :data:`DEFAULT_PRETRAINED`); it may be absent
    from a source checkout that did not fetch its large files.

    Raises:
        UnknownComponentError: no such entry (with the closest names).
    """
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
    from .core.checkpoint import load_model

    path = pretrained_path(name)
    if not path.is_file():
        raise CheckpointError(f"the weights of {path.stem!r} are not installed ({path}); reinstall refsr-blocks")
    return load_model(path, map_location=map_location).eval()


# -- the demo pair ------------------------------------------------------------------------------
def demo_pair_files() -> dict[str, Path]:
    """The files of the demo pair: ``{"lr": ..., "ref": ..., "hr": ...}`` (they may be absent
    from a source checkout that did not fetch its large files)."""
    return {name: ASSETS_DIR / "demo" / f"{name}.png" for name in DEMO_PAIR}


def load_demo_pair() -> dict[str, Tensor]:
    """The demo pair as 1×3×H×W float tensors in [0, 1]: ``{"lr", "ref", "hr"}`` (×4).

    Raises:
        DataNotFoundError: the pair is not installed.
    """
    from .data import DataNotFoundError, load_image

    files = demo_pair_files()
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise DataNotFoundError(
            f"the demo pair is not installed (missing {', '.join(missing)}); reinstall refsr-blocks"
        )
    return {name: load_image(path)[None] for name, path in files.items()}
