"""One-file checkpoints: safetensors weights with the resolved spec in the metadata.

Loading never executes code from the file (safetensors holds only tensors and strings), and
writes are atomic (a temporary file, then a rename), so an interrupted save never destroys
an existing checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError, SpecError

__all__ = ["load_model", "read_metadata", "save_model"]

SPEC_KEY = "refsr_blocks.spec"  # the checkpoint format's key (not a module path)
VERSION_KEY = "refsr_blocks.version"


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Save ``model``'s weights and its spec to one ``.safetensors`` file.

    Args:
        model: a model built by :func:`~refsr_blocks.build_model` (it carries ``model.spec``).
        path: destination file.
        metadata: extra string key/values to store (e.g. training step, dataset).

    Returns:
        The path written.
    """
    from .. import __version__

    spec = getattr(model, "spec", None)
    if not spec:
        raise CheckpointError(
            "model has no .spec: save_model stores the spec beside the weights so that the file "
            "rebuilds the model; build it with refsr_blocks.build_model"
        )
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta = {**extra, SPEC_KEY: json.dumps(spec, sort_keys=True), VERSION_KEY: __version__, "format": "pt"}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a checkpoint (spec, version, anything saved with it)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated, or another format?): {err}"
        ) from None


def load_model(path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, has no spec, or its
            weights do not fit the spec.
    """
    from .build import build_model

    meta = read_metadata(path)
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without a refsr-blocks spec in its metadata; "
            "it was not written by refsr_blocks.save_model (load its weights with load_state_dict)"
        )
    try:
        spec = json.loads(meta[SPEC_KEY])
        model = build_model(spec)
    except (json.JSONDecodeError, SpecError) as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}") from None
    try:
        with safe_open(str(path), framework="pt", device=map_location) as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:
        raise CheckpointError(f"cannot read the tensors of {str(path)!r} (truncated?): {err}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {err}") from None
    return model
