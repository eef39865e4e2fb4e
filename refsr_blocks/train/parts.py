"""Training by parts: initialise from another run, freeze or slow down sub-modules, or train
one sub-module alone (the SISR pre-training of the upsampler).

Sub-modules are named by their path on the model, as in its ``state_dict`` keys: a top-level
part (``upsampler``, ``lr_encoder``, ``aligner``, ``decoder``, …) or a dotted path inside one
(``aligner.flow``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from ..core.errors import CheckpointError
from .config import ConfigError

__all__ = ["ForwardOutputs", "initialise_from", "parameter_groups"]


def _child(model: nn.Module, name: str, path: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        children = ", ".join(n for n, _ in model.named_children())
        raise ConfigError(
            path, f"the model has no sub-module {name!r}; it has: {children} (and dotted paths inside them)"
        ) from None


def _owner(parameter: str, parts: Sequence[str]) -> str | None:
    """The longest of ``parts`` that ``parameter`` (a dotted name) lies under, or ``None``."""
    inside = [p for p in parts if parameter == p or parameter.startswith(p + ".")]
    return max(inside, key=len, default=None)


def initialise_from(model: nn.Module, path: str | Path, parts: Sequence[str] | None = None) -> list[str]:
    """Copy matching tensors of a saved model file into ``model``.

    Args:
        model: the freshly built model.
        path: a ``.safetensors`` model file (``save_model`` or a run's ``model.safetensors``).
        parts: copy only these sub-modules (every tensor of each must be found with the same
            shape); ``None`` copies every tensor whose name and shape match.

    Returns:
        The names of the tensors copied.

    Raises:
        ConfigError: a part is unknown, or the file lacks a tensor of a requested part.
        CheckpointError: the file cannot be read.
    """
    path = Path(path)
    for part in parts or ():
        _child(model, part, "init.parts")
    try:
        saved = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"init.path: cannot read {str(path)!r} as a safetensors model file: {err}") from None
    own = model.state_dict()
    if parts is not None:
        wanted = [k for k in own if _owner(k, parts) is not None]
        missing = [k for k in wanted if k not in saved or saved[k].shape != own[k].shape]
        if missing:
            raise ConfigError(
                "init.parts",
                f"{str(path)!r} lacks {len(missing)} tensor(s) of {list(parts)} with matching shapes "
                f"(first: {missing[0]!r}); was it saved from a model with the same {missing[0].split('.')[0]} spec?",
            )
    else:
        wanted = [k for k in own if k in saved and saved[k].shape == own[k].shape]
    model.load_state_dict({k: saved[k] for k in wanted}, strict=False)
    return wanted


def parameter_groups(
    model: nn.Module,
    lr: float,
    *,
    freeze: Sequence[str] = (),
    lr_scale: Mapping[str, float] | None = None,
    part: str | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: frozen sub-modules get ``requires_grad=False`` and no group;
    a sub-module in ``lr_scale`` gets ``lr * factor``; with ``part`` only that sub-module trains.
    """
    lr_scale = dict(lr_scale or {})
    for name in (*freeze, *lr_scale):
        _child(model, name, "schedule.freeze" if name in freeze else f"schedule.lr_scale.{name}")
    if part is not None:
        _child(model, part, "schedule.part")
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        scaled = _owner(name, list(lr_scale))
        factor = 1.0 if scaled is None else lr_scale[scaled]
        trains = _owner(name, freeze) is None and (part is None or _owner(name, [part]) is not None) and factor > 0
        p.requires_grad_(trains)
        if trains:
            groups.setdefault(lr * factor, []).append(p)
    if not groups:
        raise ConfigError("schedule.freeze", "every parameter is frozen: nothing would train")
    return [{"params": params, "lr": group_lr} for group_lr, params in groups.items()]


class ForwardOutputs(nn.Module):
    """The training forward: ``(lr, ref)`` → dict of outputs (``sr`` always).

    Args:
        model: the RefSR model.
        part: train only ``getattr(model, part)`` as SISR (its output is ``sr``).
        intermediates: return everything ``model.forward_intermediates`` gives (for losses
            that read flows), else only ``sr``.
    """

    def __init__(self, model: nn.Module, *, part: str | None = None, intermediates: bool = False) -> None:
        super().__init__()
        self.model = model
        self.part = part
        self.intermediates = intermediates

    def forward(self, lr: Tensor, ref: Tensor) -> dict[str, Any]:
        if self.part is not None:
            sr = self.model.get_submodule(self.part)(lr)
            return {"sr": sr, "upsampled": sr}
        if self.intermediates:
            return self.model.forward_intermediates(lr, ref)
        return {"sr": self.model(lr, ref)}
