"""What every converter shares: reading a foreign ``.pth`` safely, checking keys, writing a checkpoint."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..core.build import build_model
from ..core.checkpoint import save_model
from ..core.errors import CheckpointError

__all__ = [
    "ConversionError",
    "load_state_dict",
    "read_state_dict",
    "read_torch_file",
    "rename_layers",
    "save_converted",
    "save_whole_model",
]


class ConversionError(CheckpointError):
    """A foreign weight file cannot be converted: unreadable, unsafe, or not the layout expected."""


def read_torch_file(path: str | Path) -> Any:
    """Load a ``.pth``/``.pt``/``.pth.tar`` file with ``torch.load(weights_only=True)``.

    Only tensors, numbers, strings and plain containers can be read; a file that needs any other
    object (arbitrary pickled code) is refused rather than executed.

    Raises:
        ConversionError: the file is missing, not a torch file, or needs unsafe unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"weight file {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ConversionError(
            f"{str(path)!r} holds objects other than tensors and plain containers; refusing to unpickle it "
            f"(torch.load(weights_only=True) said: {str(err).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ConversionError(
            f"{str(path)!r} is not a readable torch file (truncated, or another format?): {err}"
        ) from None


def as_state_dict(obj: Any, what: str) -> dict[str, Tensor]:
    """The tensors of a loaded file: the dict itself, or its ``"state_dict"``/``"model"`` entry;
    a common ``"module."`` prefix (DataParallel) is removed.

    Raises:
        ConversionError: no string-keyed dict of tensors is found.
    """
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConversionError(f"{what}: expected a state dict (names to tensors), got {type(obj).__name__}")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def read_state_dict(path: str | Path, fmt: str) -> dict[str, Tensor]:
    """The tensors of the foreign file ``path`` (:func:`read_torch_file`, then :func:`as_state_dict`)."""
    return as_state_dict(read_torch_file(path), f"{fmt} {Path(path).name}")


def rename_layers(
    state: Mapping[str, Tensor], names: Mapping[str, str], fmt: str, expected: str
) -> tuple[dict[str, Tensor], list[str]]:
    """Their layers in our names: ``{src}.weight`` and ``{src}.bias`` of ``state`` as float32 copies
    named ``{dst}.weight`` and ``{dst}.bias``, for each ``src → dst`` of ``names`` (a ``dst`` of
    ``""``: read, not kept).

    Returns:
        The renamed tensors, and the keys of ``state`` read (for :func:`check_consumed`).

    Raises:
        ConversionError: a tensor is missing (the message asks whether the file is ``expected``).
    """
    out: dict[str, Tensor] = {}
    used: list[str] = []
    for src, dst in names.items():
        for suffix in ("weight", "bias"):
            key = f"{src}.{suffix}"
            if key not in state:
                raise ConversionError(f"{fmt}: missing tensor {key!r}; is this {expected}?")
            used.append(key)
            if dst:
                out[f"{dst}.{suffix}"] = state[key].detach().float().clone()
    return out, used


def check_consumed(state: Mapping[str, Tensor], used: Iterable[str], what: str) -> None:
    """Raise if ``state`` holds tensors the conversion did not use (a different network)."""
    left = sorted(set(state) - set(used))
    if left:
        shown = ", ".join(left[:6]) + (f" and {len(left) - 6} more" if len(left) > 6 else "")
        raise ConversionError(f"{what}: unexpected tensors, not part of the expected network: {shown}")


def take(state: Mapping[str, Tensor], key: str, what: str, shape: tuple[int, ...] | None = None) -> Tensor:
    """``state[key]`` as float32, with a clear error when it is missing or has another shape."""
    if key not in state:
        raise ConversionError(f"{what}: missing tensor {key!r}; is this the expected network?")
    value = state[key]
    if shape is not None and tuple(value.shape) != shape:
        raise ConversionError(f"{what}: tensor {key!r} has shape {tuple(value.shape)}, expected {shape}")
    return value.detach().to(torch.float32).clone()


def load_state_dict(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """``module.load_state_dict(state, strict=True)``, as a :class:`ConversionError` on mismatch."""
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as err:
        raise ConversionError(f"{what}: the converted tensors do not fit the target: {err}") from None


def save_converted(model: nn.Module, output: str | Path, source: str | Path, fmt: str, slots: str) -> Path:
    """Save a converted model as a refsr-blocks checkpoint (safetensors, spec inside).

    The metadata records the source file name, the source format and which slots hold converted
    weights (the others keep their seeded initialisation).
    """
    meta = {"converted_from": Path(source).name, "converted_format": fmt, "converted_slots": slots}
    return save_model(model, output, metadata=meta)


def save_whole_model(
    model: str | Mapping[str, Any],
    output: str | Path,
    source: str | Path,
    fmt: str,
    tensors_for: Callable[[nn.Module], Mapping[str, Tensor]],
) -> Path:
    """Build ``model``, fill every tensor of it with ``tensors_for(net)``, save it as converted from ``source``.

    ``tensors_for`` renames the source's tensors for the network built (it may read its layout:
    block counts, optional parts); what it returns must cover that network exactly.
    """
    net = build_model(model)
    load_state_dict(net, tensors_for(net), fmt)
    return save_converted(net, output, source, fmt, "all")
