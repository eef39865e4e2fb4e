"""One-file checkpoints: safetensors weights with the resolved spec in the metadata.

Loading never executes code from the file (safetensors holds only tensors and strings), and
writes are atomic (a temporary file, then a rename), so an interrupted save never destroys
an existing checkpoint.

Loading is defensive, because a file is input: before any weight is allocated the file's
header (read by safetensors, which checks each tensor's byte range against its shape, dtype
and the file size) is compared with the model its spec describes, built on the ``meta``
device (no memory): tensor names, shapes and dtypes must match, so a file naming a model
larger than itself is refused at once, and ``pretrained`` flags never reach the network.
Every file written by :func:`save_model` carries a
SHA-256 digest of its tensors (:data:`DIGEST_KEY`), verified on load; files written before
digests existed load without the check. Non-finite weights are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError, RefSRError, SpecError

__all__ = ["load_model", "read_header", "read_metadata", "save_model", "tensor_digest"]

SPEC_KEY = "refsr_blocks.spec"  # the checkpoint format's key (not a module path)
VERSION_KEY = "refsr_blocks.version"
#: SHA-256 of the tensors (names, dtypes, shapes and bytes, in name order), hex.
DIGEST_KEY = "refsr_blocks.sha256"
#: Largest metadata value accepted (the spec is a few kB).
MAX_METADATA_CHARS = 1024 * 1024

#: safetensors' dtype names of the torch dtypes a model holds.
_ST_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _st_dtype(dtype: torch.dtype) -> str:
    return _ST_DTYPES.get(dtype, str(dtype))


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    Raises:
        CheckpointError: the folder cannot be written (read-only, full disk, a file in the
            way), naming ``path``; a previous file at ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise CheckpointError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except RefSRError:
        raise
    except (OSError, RuntimeError, SafetensorError) as err:  # ENOSPC, EROFS, wrapped by torch or safetensors
        reason = getattr(err, "strerror", None) or _first_line(str(err))
        raise CheckpointError(f"cannot write {str(path)!r} (disk full or not writable?): {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of ``tensors``: each name, dtype, shape and raw bytes, in name order.

    :func:`save_model` stores it under :data:`DIGEST_KEY`; :func:`load_model` recomputes it
    from the file's bytes, so one flipped bit anywhere in the weights is caught.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(json.dumps([name, _st_dtype(t.dtype), list(t.shape)]).encode() + b"\0")
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Save ``model``'s weights and its spec to one ``.safetensors`` file.

    Args:
        model: a model built by :func:`~refsr_blocks.build_model` (it carries ``model.spec``).
        path: destination file.
        metadata: extra string key/values to store (e.g. training step, dataset).

    Returns:
        The path written.

    Raises:
        CheckpointError: the model has no spec, or the file cannot be written (the message
            names it; an earlier file of that name is kept).
    """
    from . import __version__

    spec = getattr(model, "spec", None)
    if not spec:
        raise CheckpointError(
            "model has no .spec: save_model stores the spec beside the weights so that the file "
            "rebuilds the model; build it with refsr_blocks.build_model"
        )
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {**extra, SPEC_KEY: json.dumps(spec, sort_keys=True), VERSION_KEY: __version__, "format": "pt"}
    meta[DIGEST_KEY] = tensor_digest(tensors)
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def read_header(path: str | Path) -> tuple[dict[str, tuple[str, list[int]]], dict[str, str]]:
    """Each tensor's safetensors dtype and shape, and the string metadata, of ``path``.

    Only the header is read, by safetensors itself, which also checks every tensor's byte
    range: contiguous, ``numel × itemsize`` long, and together exactly the file's data section.
    So once the names, shapes and dtypes match a model, that model is no larger than the file.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, or its header is
            malformed or lies about its ranges (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
            return tensors, dict(f.metadata() or {})
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {err.strerror or err}") from None
    except Exception as err:  # SafetensorError: a bad length, JSON, dtype, shape or byte range
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated, or another format?): {_first_line(str(err))}"
        ) from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a checkpoint (spec, version, anything saved with it)."""
    return read_header(path)[1]


def _read_tensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of ``path`` (checked by :func:`read_header`: as many bytes as the file holds)."""
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:
        raise CheckpointError(
            f"cannot read the tensors of {str(path)!r} (truncated?): {_first_line(str(err))}"
        ) from None


def verify_digest(
    path: str | Path, *, required: bool = False, tensors: Mapping[str, torch.Tensor] | None = None
) -> bool:
    """Check the tensors of ``path`` (or ``tensors``, read from it) against its metadata's digest.

    Returns:
        ``True`` if the file carries a digest and it matches, ``False`` if it has none (files
        written before digests existed) and ``required`` is false.

    Raises:
        CheckpointError: the digest does not match (the file was altered or damaged), or
            there is none and ``required`` is set.
    """
    path = Path(path)
    expected = read_metadata(path).get(DIGEST_KEY)
    if expected is None:
        if required:
            raise CheckpointError(f"{str(path)!r} carries no weight digest ({DIGEST_KEY}); re-save it with save_model")
        return False
    actual = tensor_digest(_read_tensors(path) if tensors is None else tensors)
    if actual != expected:
        raise CheckpointError(
            f"the weights in {str(path)!r} are damaged or were altered: their SHA-256 digest is {actual[:16]}…, "
            f"the file says {expected[:16]}…; restore it from a copy or re-save it"
        )
    return True


def _parse_spec(path: Path, text: str) -> dict[str, Any]:
    if len(text) > MAX_METADATA_CHARS:
        raise CheckpointError(f"{str(path)!r} holds a spec of {len(text)} characters; a spec is a few kB")
    try:
        spec = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec (not JSON, or nested too deeply): {err}") from None
    if not isinstance(spec, dict):
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: a {type(spec).__name__}, not a mapping")
    return spec


def _meta_model(path: Path, spec: Mapping[str, Any]) -> nn.Module | None:
    """The model ``spec`` describes, built on the meta device (no memory); ``None`` if it cannot be."""
    from .build import build_model
    from .spec import resolve_spec

    try:
        # Validate (and load plugins) outside the meta context: whatever a plugin creates at
        # import must live on a real device. Only the modules' own weights go to meta.
        resolved = resolve_spec(spec)
        with torch.device("meta"):
            return build_model(resolved)
    except SpecError as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}{_missing_owners(spec)}") from None
    except RefSRError:
        raise
    except Exception:  # a component that computes in __init__ cannot build on meta: compare later
        return None


def _missing_owners(spec: Mapping[str, Any]) -> str:
    """The plugin distributions a spec records its components from that are not installed here."""
    import importlib.metadata

    entries = [spec, *(spec.get("components") or {}).values()]
    missing = []
    for owner in sorted({e["owner"] for e in entries if isinstance(e, dict) and isinstance(e.get("owner"), str)}):
        try:
            importlib.metadata.distribution(owner)
        except importlib.metadata.PackageNotFoundError:
            missing.append(owner)
    return f" (it was saved with components of {', '.join(missing)}, not installed here)" if missing else ""


def check_tensors(
    path: Path, header: Mapping[str, tuple[str, list[int]]], expected: Mapping[str, torch.Tensor]
) -> None:
    """Raise :class:`CheckpointError` unless the file's tensors are exactly those of ``expected``.

    Names, shapes and dtypes are compared (``header`` from :func:`read_header`), so nothing is
    allocated for a file that does not fit its spec.
    """
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    for name in sorted(set(expected) & set(header)):
        want = (_st_dtype(expected[name].dtype), list(expected[name].shape))
        if header[name] != want:
            problems.append(f"{name!r} is {header[name][0]}{header[name][1]}, the spec's model has {want[0]}{want[1]}")
            break
    if problems:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {'; '.join(problems)}")


def _some(names: Iterable[str], n: int = 3) -> str:
    names = list(names)
    shown = ", ".join(repr(x[:80]) for x in names[:n])
    return f"{shown}{f' and {len(names) - n} more' if len(names) > n else ''}"


def _no_downloads(path: Path, spec: dict[str, Any]) -> None:
    """Turn off ``pretrained`` flags in a loaded spec, with a warning naming them.

    Forced off rather than refused: the file's own weights replace whatever a component would
    download, so the model is the same, and loading a file never touches the network (an
    untrusted spec must not make the host contact a model hub, or hang offline retrying).
    """
    entries = {"params": spec.get("params")}
    for slot, entry in (spec.get("components") or {}).items():
        entries[f"components.{slot}.params"] = entry.get("params") if isinstance(entry, dict) else None
    for where, params in entries.items():
        if isinstance(params, dict) and params.get("pretrained"):
            params["pretrained"] = False
            warnings.warn(
                f"{str(path)!r}: {where}.pretrained set to false: the checkpoint's weights replace pretrained "
                "ones, and loading a file never downloads",
                stacklevel=3,
            )


def load_model(path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`.

    In order: the header is read and its byte ranges checked (:func:`read_header`); the spec
    is validated (component sizes are bounded, see :func:`~refsr_blocks.core.spec.param_bounds`),
    ``pretrained`` flags are turned off (:func:`_no_downloads`) and its model built on the meta
    device; the file's tensor names, shapes and dtypes are compared with it. Only then is
    anything allocated, and no more than the file holds: the tensors (checked against the
    digest, if the file has one, and for finiteness), then the model.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, has no or an invalid
            spec, its weights do not fit the spec, are damaged (digest) or not finite.
    """
    from .build import build_model

    path = Path(path)
    header, meta = read_header(path)
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without a refsr-blocks spec in its metadata; "
            "it was not written by refsr_blocks.save_model (load its weights with load_state_dict)"
        )
    spec = _parse_spec(path, meta[SPEC_KEY])
    _no_downloads(path, spec)
    skeleton = _meta_model(path, spec)
    if skeleton is not None:
        check_tensors(path, header, skeleton.state_dict())
    state = _read_tensors(path, map_location)
    verify_digest(path, tensors=state)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"the weights in {str(path)!r} are not finite: {name!r} holds NaN or infinity")
    try:
        model = build_model(spec)
    except SpecError as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}") from None
    if skeleton is None:
        check_tensors(path, header, model.state_dict())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {err}") from None
    return model
