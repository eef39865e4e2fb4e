"""Export a model to ONNX (opset 17) or as a ``torch.export`` program, and check the ONNX file.

Both routes trace the model as it runs, with the library's own backward warp
(:func:`refsr_blocks.ops.backward_warp`, an ``embedding_bag`` blend: exported to ONNX as a
``Loop`` of ``Gather``/``Mul``/``Add`` over the bag, which onnxruntime runs exactly but slowly
at large sizes). The exported graph has the input sizes it was traced with: export once per
size (the size checks of the model are evaluated at trace time). The CPU fast layers are
swapped back to plain ``nn`` convolutions on a copy first (:func:`refsr_blocks.layers.use_plain_layers`),
so a model prepared by :func:`~refsr_blocks.inference.runtime.optimize_for_inference` exports too.

Which components export is declared on each (:class:`refsr_blocks.core.support.Support`)
and listed on the docs page "Export".

Example:
    >>> import tempfile, torch
    >>> from refsr_blocks import build_model
    >>> model = build_model("crossnet_lite").eval()
    >>> lr, ref = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 64, 64)
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     path = export_onnx(model, f"{d}/lite.onnx", lr, ref)
    ...     check_onnx(path, model, lr, ref) < 1e-4
    True
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..core.errors import RefSRError

__all__ = ["ONNX_OPSET", "ExportError", "check_onnx", "export_onnx", "export_program", "plain_copy"]

#: The opset the ONNX route targets (and is tested with).
ONNX_OPSET = 17


class ExportError(RefSRError):
    """A model could not be exported, or its export does not match the model."""


def plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with plain ``nn`` convolutions (no fast twins), float32."""
    from ..layers.swap import use_plain_layers

    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper
    plain = copy.deepcopy(model).eval().float()
    use_plain_layers(plain)
    return plain.to(memory_format=torch.contiguous_format)


def export_onnx(
    model: nn.Module, path: str | os.PathLike[str], lr: Tensor, ref: Tensor, *, opset: int = ONNX_OPSET
) -> Path:
    """Write ``model`` traced on ``(lr, ref)`` to an ONNX file (inputs ``lr``, ``ref``; output ``sr``).

    Args:
        model: a RefSR model ``model(lr, ref) -> sr``; it is not modified.
        path: the ``.onnx`` file to write.
        lr: B×C×h×w example input (its size is the exported size).
        ref: B×C×H×W example reference.
        opset: the ONNX opset (17 is the tested one).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ExportError: the exporter failed (its message attached).
    """
    path = Path(path)
    plain = plain_copy(model)
    lr, ref = lr.detach().float().contiguous().cpu(), ref.detach().float().contiguous().cpu()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings of the (trace-time) shape checks
            torch.onnx.export(
                plain.cpu(),
                (lr, ref),
                str(path),
                opset_version=opset,
                input_names=["lr", "ref"],
                output_names=["sr"],
                dynamo=False,
            )
    except Exception as err:
        raise ExportError(f"ONNX export (opset {opset}) failed: {type(err).__name__}: {err}") from err
    return path


def check_onnx(path: str | os.PathLike[str], model: nn.Module, lr: Tensor, ref: Tensor) -> float:
    """Run the ONNX file with onnxruntime (CPU) and return its largest absolute difference to ``model``.

    Raises:
        ExportError: onnxruntime is not installed (``pip install onnxruntime``).
    """
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("checking an ONNX file needs onnxruntime: pip install onnxruntime") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lr, ref = lr.detach().float().contiguous().cpu(), ref.detach().float().contiguous().cpu()
    (got,) = session.run(["sr"], {"lr": lr.numpy(), "ref": ref.numpy()})
    with torch.no_grad():
        expected = plain_copy(model).cpu()(lr, ref)
    return float((torch.from_numpy(got) - expected).abs().max())


def export_program(model: nn.Module, lr: Tensor, ref: Tensor) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model`` on ``(lr, ref)`` (plain layers, float32, static sizes).

    Raises:
        ExportError: the tracer failed (its message attached).
    """
    plain = plain_copy(model)
    try:
        return torch.export.export(plain, (lr.detach().float().contiguous(), ref.detach().float().contiguous()))
    except Exception as err:
        raise ExportError(f"torch.export failed: {type(err).__name__}: {err}") from err
