"""One-file checkpoints: safetensors weights with the resolved spec in the metadata.

Loading never executes code from the file (safetensors holds only tensors and strings), and
writes are atomic (a temporary file, then a rename), so an interrupted save never destroys
an existing checkpoint.

Loading is defensive, because a file is input: before any weight is allocated the file's
header (read directly, bounded in size) is compared with the model its spec describes, built
on the ``meta`` device (no memory): tensor names, shapes and dtypes must match, so a tiny file
naming a huge model is refused at once. Every file written by :func:`save_model` carries a
SHA-256 digest of its tensors (:data:`DIGEST_KEY`), verified on load; files written before
digests existed load without the check. Non-finite weights are refused.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError, RefSRError, SpecError

__all__ = ["load_model", "read_header", "read_metadata", "save_model", "tensor_digest"]

SPEC_KEY = "refsr_blocks.spec"  # the checkpoint format's key (not a module path)
VERSION_KEY = "refsr_blocks.version"
#: SHA-256 of the tensors (names, dtypes, shapes and bytes, in name order), hex.
DIGEST_KEY = "refsr_blocks.sha256"
#: Largest header accepted (safetensors' own limit): names, shapes and metadata of a model.
MAX_HEADER_BYTES = 100 * 1024 * 1024
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
    except (OSError, RuntimeError) as err:  # ENOSPC, EROFS; torch/safetensors wrap them in RuntimeError
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
        h.update(_digest_prefix(name, _st_dtype(t.dtype), list(t.shape)))
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _digest_prefix(name: str, dtype: str, shape: list[int]) -> bytes:
    return json.dumps([name, dtype, shape]).encode() + b"\0"


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
    from .. import __version__

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


def read_header(path: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, str], int]:
    """The tensor entries, the metadata and the data offset of a safetensors file, read directly.

    Only the header is read (its length is bounded by :data:`MAX_HEADER_BYTES` and the file
    size), so a hostile file costs nothing before it is judged.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, or its header is
            malformed (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")

    def bad(why: str) -> CheckpointError:
        return CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated, or another format?): {why}"
        )

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise bad(f"{size} bytes, shorter than a header")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise bad(f"header length {length} exceeds the file ({size} bytes) or {MAX_HEADER_BYTES}")
            raw = f.read(length)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {err.strerror or err}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise bad(f"malformed header ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise bad("its metadata is not a mapping of strings to strings")
    data_size = size - 8 - length
    for name, entry in header.items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"])
            and 0 <= entry["data_offsets"][0] <= entry["data_offsets"][1] <= data_size
        )
        if not ok:
            raise bad(f"tensor entry {name[:80]!r} is malformed or points past the end of the file")
    return header, metadata, 8 + length


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a checkpoint (spec, version, anything saved with it)."""
    path = Path(path)
    _, metadata, _ = read_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or metadata)
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated, or another format?): {err}"
        ) from None


def _file_digest(path: Path, header: Mapping[str, Mapping[str, Any]], data_start: int) -> str:
    """:func:`tensor_digest` of the tensors stored in ``path``, from the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.path.getsize(path) else None
        try:
            for name in sorted(header):
                entry = header[name]
                h.update(_digest_prefix(name, entry["dtype"], entry["shape"]))
                begin, end = entry["data_offsets"]
                if end > begin and view is not None:
                    h.update(memoryview(view)[data_start + begin : data_start + end])
        finally:
            if view is not None:
                view.close()
    return h.hexdigest()


def verify_digest(path: str | Path, *, required: bool = False) -> bool:
    """Check the tensors of ``path`` against the digest in its metadata.

    Returns:
        ``True`` if the file carries a digest and it matches, ``False`` if it has none (files
        written before digests existed) and ``required`` is false.

    Raises:
        CheckpointError: the digest does not match (the file was altered or damaged), or
            there is none and ``required`` is set.
    """
    path = Path(path)
    header, metadata, data_start = read_header(path)
    expected = metadata.get(DIGEST_KEY)
    if expected is None:
        if required:
            raise CheckpointError(f"{str(path)!r} carries no weight digest ({DIGEST_KEY}); re-save it with save_model")
        return False
    try:
        actual = _file_digest(path, header, data_start)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {err.strerror or err}") from None
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
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}") from None
    except RefSRError:
        raise
    except Exception:  # a component that computes in __init__ cannot build on meta: compare later
        return None


def check_tensors(path: Path, header: Mapping[str, Mapping[str, Any]], expected: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` unless the file's tensors are exactly those of ``expected``.

    Names, shapes and dtypes are compared (reading only the header), so nothing is allocated
    for a file that does not fit its spec.
    """
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    for name in sorted(set(expected) & set(header)):
        want, got = expected[name], header[name]
        want_shape, want_dtype = list(want.shape), _st_dtype(want.dtype)
        if got["shape"] != want_shape or got["dtype"] != want_dtype:
            problems.append(f"{name!r} is {got['dtype']}{got['shape']}, the spec's model has {want_dtype}{want_shape}")
            break
    if problems:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {'; '.join(problems)}")


def _some(names: Iterable[str], n: int = 3) -> str:
    names = list(names)
    shown = ", ".join(repr(x[:80]) for x in names[:n])
    return f"{shown}{f' and {len(names) - n} more' if len(names) > n else ''}"


def load_model(path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`.

    In order, allocating nothing until the file has passed: the header is read and bounded;
    the spec is validated (component sizes are bounded, see
    :func:`~refsr_blocks.core.spec.param_bounds`) and its model built on the meta device; the
    file's tensor names, shapes and dtypes are compared with it; the digest is verified (if the
    file has one); only then are the model and the weights materialised, and the weights must
    be finite.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, has no or an invalid
            spec, its weights do not fit the spec, are damaged (digest) or not finite.
    """
    from .build import build_model

    path = Path(path)
    header, meta, _ = read_header(path)
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without a refsr-blocks spec in its metadata; "
            "it was not written by refsr_blocks.save_model (load its weights with load_state_dict)"
        )
    spec = _parse_spec(path, meta[SPEC_KEY])
    skeleton = _meta_model(path, spec)
    if skeleton is not None:
        check_tensors(path, header, skeleton.state_dict())
    verify_digest(path)
    try:
        model = build_model(spec)
    except SpecError as err:
        raise CheckpointError(f"{str(path)!r} holds an invalid spec: {err}") from None
    if skeleton is None:
        check_tensors(path, header, model.state_dict())
    try:
        with safe_open(str(path), framework="pt", device=map_location) as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as err:
        raise CheckpointError(f"cannot read the tensors of {str(path)!r} (truncated?): {err}") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"the weights in {str(path)!r} are not finite: {name!r} holds NaN or infinity")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {str(path)!r} do not match its spec: {err}") from None
    return model
