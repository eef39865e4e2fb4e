"""One-file checkpoints: safetensors weights with the resolved spec and their digest in the metadata.

Writes are atomic. Loading is defensive (see docs/specs.md): nothing is allocated before the header fits
the file and the model its spec describes (built on the ``meta`` device); the digest catches a bit flip.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError, RefSRError, SpecError

__all__ = ["atomic_write", "load_model", "read_metadata", "read_weights", "save_model", "tensor_digest"]

SPEC_KEY = "refsr_blocks.spec"  # the checkpoint format's key (not a module path)
VERSION_KEY = "refsr_blocks.version"
DIGEST_KEY = "refsr_blocks.sha256"  # see tensor_digest
MAX_METADATA_CHARS = 1024 * 1024  # a spec is a few kB
#: safetensors' names of the torch dtypes a model holds.
_ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
_ST_DTYPES |= {torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8"}
_ST_DTYPES |= {torch.bool: "BOOL"}


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``; a :class:`CheckpointError`
    names ``path`` if it cannot be written (a previous file there is left as it was)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise CheckpointError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    try:
        write(tmp)
        umask = os.umask(0)  # mkstemp creates 0600; give the file the permissions open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except RefSRError:
        raise
    except (OSError, RuntimeError, SafetensorError) as err:  # ENOSPC, EROFS, wrapped by torch or safetensors
        reason = getattr(err, "strerror", None) or _first_line(err)
        raise CheckpointError(f"cannot write {str(path)!r} (disk full or not writable?): {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of ``tensors``: each name, dtype, shape and raw bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(json.dumps([name, _ST_DTYPES.get(t.dtype, str(t.dtype)), list(t.shape)]).encode() + b"\0")
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Save the weights of a model built by :func:`~refsr_blocks.build_model`, its spec, their digest and
    ``metadata`` (extra strings) to one ``.safetensors`` file (see :func:`atomic_write`)."""
    from . import __version__

    spec = getattr(model, "spec", None)
    if not spec:
        raise CheckpointError(
            "model has no .spec: save_model stores the spec beside the weights so that the file "
            "rebuilds the model; build it with refsr_blocks.build_model"
        )
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta |= {SPEC_KEY: json.dumps(spec, sort_keys=True), VERSION_KEY: __version__, "format": "pt"}
    meta[DIGEST_KEY] = tensor_digest(tensors)
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def _open(path: Path, read: Callable[[Any], Any], device: str = "cpu") -> Any:
    """``read(f)`` on the file opened by safetensors, which first checks that the tensors' byte ranges
    are contiguous, ``numel × itemsize`` long, and together the data section."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            return read(f)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {err.strerror or err}") from None
    except Exception as err:  # SafetensorError: a bad length, JSON, dtype, shape or byte range
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated, or another format?): {_first_line(err)}"
        ) from None


def _meta(f: Any) -> dict[str, str]:
    return dict(f.metadata() or {})


def _contents(f: Any) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    return {k: f.get_tensor(k) for k in f.keys()}, _meta(f)  # noqa: SIM118


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a checkpoint (spec, version, digest, anything saved with it)."""
    return _open(Path(path), _meta)


def read_weights(path: str | Path, map_location: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of ``path`` and its metadata; a :class:`CheckpointError` if the file is unreadable,
    carries no digest or another one (damaged or altered), or holds a weight that is not finite."""
    path = Path(path)
    tensors, meta = _open(path, _contents, map_location)
    expected, actual = meta.get(DIGEST_KEY), tensor_digest(tensors)
    if expected is None:
        raise CheckpointError(f"{str(path)!r} carries no weight digest ({DIGEST_KEY}); save it with save_model")
    if actual != expected:
        raise CheckpointError(
            f"the weights in {str(path)!r} are damaged or were altered: their SHA-256 digest is {actual[:16]}…, "
            f"the file says {expected[:16]}…; restore it from a copy or re-save it"
        )
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"the weights in {str(path)!r} are not finite: {name!r} holds NaN or infinity")
    return tensors, meta


def _spec(path: Path, meta: Mapping[str, str]) -> dict[str, Any]:
    """The spec in the metadata, its ``pretrained`` flags turned off with a warning: the file's weights
    replace them, and an untrusted file must not make the host contact a model hub (or hang offline)."""
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without a refsr-blocks spec in its metadata; "
            "it was not written by refsr_blocks.save_model (load its weights with load_state_dict)"
        )
    if len(meta[SPEC_KEY]) > MAX_METADATA_CHARS:
        raise CheckpointError(f"{str(path)!r} holds a spec of {len(meta[SPEC_KEY])} characters; a spec is a few kB")
    try:
        spec = json.loads(meta[SPEC_KEY])
    except (json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec (not JSON, or nested too deeply): {err}") from None
    if not isinstance(spec, dict):
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: a {type(spec).__name__}, not a mapping")
    entries = {"params": spec.get("params")}
    entries |= {f"components.{s}.params": e.get("params") for s, e in _entries(spec.get("components")).items()}
    for where, params in entries.items():
        if isinstance(params, dict) and params.get("pretrained"):
            params["pretrained"] = False
            warnings.warn(
                f"{str(path)!r}: {where}.pretrained set to false: the checkpoint's weights replace pretrained "
                "ones, and loading a file never downloads",
                stacklevel=3,
            )
    return spec


def _entries(components: Any) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in components.items() if isinstance(v, dict)} if isinstance(components, dict) else {}


def _missing_owners(spec: Mapping[str, Any]) -> str:
    """The plugin distributions the spec names as owners that are not installed here."""
    owners = {e.get("owner") for e in [spec, *_entries(spec.get("components")).values()]}
    installed = {d.metadata["Name"] for d in importlib.metadata.distributions()}
    missing = sorted(o for o in owners if isinstance(o, str) and o not in installed)
    return f" (it was saved with components of {', '.join(missing)}, not installed here)" if missing else ""


def _check_tensors(path: Path, header: Mapping[str, tuple[str, list[int]]], model: nn.Module) -> None:
    """Raise unless the file's tensor names, dtypes and shapes are exactly those of ``model``."""
    expected = {k: (_ST_DTYPES.get(v.dtype, str(v.dtype)), list(v.shape)) for k, v in model.state_dict().items()}
    odd = {"missing": expected.keys() - header.keys(), "unexpected": header.keys() - expected.keys()}
    problems = [f"{what} {_some(sorted(names))}" for what, names in odd.items() if names]
    for k in sorted(k for k in expected.keys() & header.keys() if header[k] != expected[k])[:1]:  # the first one
        problems.append(f"{k!r} is {header[k][0]}{header[k][1]}, the spec's model has {expected[k][0]}{expected[k][1]}")
    if problems:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {'; '.join(problems)}")


def _header(f: Any) -> tuple[dict[str, tuple[str, list[int]]], dict[str, str]]:
    header = {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    return header, _meta(f)


def _some(names: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(x[:80]) for x in names[:n])
    return f"{shown}{f' and {len(names) - n} more' if len(names) > n else ''}"


def load_model(path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`.

    The header's byte ranges are checked; the spec is validated, its ``pretrained`` flags turned off and
    its model built on the meta device; the file's tensor names, shapes and dtypes are compared with it.
    Only then is anything allocated, no more than the file holds: the tensors (see :func:`read_weights`),
    then the model. Every failure is a :class:`CheckpointError` naming the file.
    """
    from .build import build_model
    from .spec import resolve_spec

    path = Path(path)
    header, meta = _open(path, _header)
    spec = _spec(path, meta)
    try:
        resolved = resolve_spec(spec)  # outside the meta context: what a plugin creates at import is real
        with torch.device("meta"):
            skeleton = build_model(resolved)
    except SpecError as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}{_missing_owners(spec)}") from None
    except RefSRError:
        raise
    except Exception:  # a component that computes in __init__ cannot build on meta: compare later
        skeleton = None
    if skeleton is not None:
        _check_tensors(path, header, skeleton)
    state, _ = read_weights(path, map_location)
    model = build_model(resolved)
    if skeleton is None:
        _check_tensors(path, header, model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {err}") from None
    return model
