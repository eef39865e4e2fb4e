"""What a component supports, as its author checked it (``SUPPORT = Support(...)``, not enforced).

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

#: The precisions a component may declare (the ``precision`` names of inference).
DTYPES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Support:
    """The ``dtypes`` a component runs in (under autocast), whether it exports to ONNX (opset 17) and
    ``torch.export``, the ``size_multiple`` of H and W that needs no padding inside it, and ``notes``."""

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


def _combined(model: Any) -> Support:
    """What ``model`` and its submodules that declare a :class:`Support` support together."""
    total = Support(dtypes=DTYPES)
    for module in model.modules() if hasattr(model, "modules") else [model]:
        support = component_support(module)
        total = total if support is None else total.combine(support)
    return total


def size_multiple_of(model: Any) -> int:
    """The lcm of the ``size_multiple`` declared inside ``model`` (1 if none declares one)."""
    return _combined(model).size_multiple


def declared_dtypes(model: Any) -> tuple[str, ...]:
    """The precisions every component of ``model`` that declares a :class:`Support` runs in."""
    return _combined(model).dtypes


def support_table() -> list[dict[str, Any]]:
    """One row per registered model part, sorted: ``kind``, ``name`` and ``support`` (or None)."""
    from .registry import REGISTRY, list_kinds

    rows = []
    for kind in sorted(list_kinds(model_parts=True)):
        for name in REGISTRY.list(kind):
            factory = REGISTRY.get(kind, name).factory
            rows.append({"kind": kind, "name": name, "support": component_support(factory)})
    return rows
