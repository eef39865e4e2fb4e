"""What a component supports: compute dtypes, export routes and the input size it needs no padding for.

A component class declares it with one class attribute::

    @register_component("flow", "flownets")
    class FlowNetS(nn.Module):
        SUPPORT = Support(dtypes=("fp32", "bf16", "fp16"), onnx=True, torch_export=True, size_multiple=64)

It is what the component's author checked, not enforced at run time. :func:`support_table`
lists the declarations for the docs; :func:`size_multiple_of` combines those inside a model.

Example:
    >>> from refsr_blocks import build_model
    >>> size_multiple_of(build_model("crossnet_lite"))
    64
    >>> Support(size_multiple=8).combine(Support(size_multiple=6)).size_multiple
    24
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DTYPES", "Support", "component_support", "declared_dtypes", "size_multiple_of", "support_table"]

#: The precisions a component may declare (``precision`` names of :mod:`refsr_blocks.inference.runtime`).
DTYPES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Support:
    """A component's declared support: the ``dtypes`` it runs in (under autocast), whether it
    exports to ONNX (opset 17, matching onnxruntime) and traces with ``torch.export``, the
    ``size_multiple`` of H and W that needs no padding inside it, and ``notes`` for the docs."""

    dtypes: tuple[str, ...] = ("fp32",)
    onnx: bool = False
    torch_export: bool = False
    size_multiple: int = 1
    notes: str = ""

    def __post_init__(self) -> None:
        unknown = [d for d in self.dtypes if d not in DTYPES]
        if unknown:
            raise ValueError(f"Support.dtypes must be among {DTYPES}, got {unknown}")
        if not isinstance(self.size_multiple, int) or self.size_multiple < 1:
            raise ValueError(f"Support.size_multiple must be a positive int, got {self.size_multiple!r}")

    def combine(self, other: Support) -> Support:
        """What two components support together: common dtypes, both exports, the lcm of the multiples."""
        return Support(
            dtypes=tuple(d for d in self.dtypes if d in other.dtypes),
            onnx=self.onnx and other.onnx,
            torch_export=self.torch_export and other.torch_export,
            size_multiple=math.lcm(self.size_multiple, other.size_multiple),
        )


def component_support(obj: Any) -> Support | None:
    """The :class:`Support` declared by a component class or instance (``SUPPORT``), or None."""
    support = getattr(obj if isinstance(obj, type) else type(obj), "SUPPORT", None)
    return support if isinstance(support, Support) else None


def size_multiple_of(model: Any) -> int:
    """The lcm of the ``size_multiple`` declared by ``model`` and its submodules (1 if none declares one)."""
    multiple = 1
    modules = model.modules() if hasattr(model, "modules") else [model]
    for module in modules:
        support = component_support(module)
        if support is not None:
            multiple = math.lcm(multiple, support.size_multiple)
    return multiple


def declared_dtypes(model: Any) -> tuple[str, ...]:
    """The precisions every component of ``model`` that declares a :class:`Support` runs in."""
    dtypes = DTYPES
    for module in model.modules() if hasattr(model, "modules") else [model]:
        support = component_support(module)
        if support is not None:
            dtypes = tuple(d for d in dtypes if d in support.dtypes)
    return dtypes


def support_table() -> list[dict[str, Any]]:
    """One row per registered model part (kinds and names sorted): ``kind``, ``name`` and its
    declared ``support`` (a :class:`Support`, or None where the component declares nothing)."""
    from .registry import REGISTRY, list_kinds

    rows = []
    for kind in sorted(list_kinds(model_parts=True)):
        for name in REGISTRY.list(kind):
            factory = REGISTRY.get(kind, name).factory
            rows.append({"kind": kind, "name": name, "support": component_support(factory)})
    return rows
