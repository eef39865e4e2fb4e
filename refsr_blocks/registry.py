"""The component registry: every swappable part of a model, by kind and name.

A *component* is a factory (usually an ``nn.Module`` subclass) registered under one of the
:data:`KINDS`. Components of one kind honour the same call contract, so a spec can swap any
two of them. Registration is explicit about clashes: registering a name twice raises an
error naming both definitions unless ``override=True`` is passed.

Example:
    >>> import torch
    >>> from refsr_blocks.registry import register_component, get_component
    >>> @register_component("loss", "doc_example_l1", override=True)
    ... class MyL1(torch.nn.Module):
    ...     def forward(self, pred, target):
    ...         return (pred - target).abs().mean()
    >>> get_component("loss", "doc_example_l1").factory is MyL1
    True
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from .errors import RegistryError, UnknownComponentError

__all__ = [
    "KINDS",
    "REGISTRY",
    "Component",
    "Registry",
    "get_component",
    "list_components",
    "register_component",
]

#: The component kinds, in the order a model is assembled.
KINDS: tuple[str, ...] = ("upsampler", "prealign", "flow", "warper", "encoder", "decoder", "loss", "model")

F = TypeVar("F", bound=Callable[..., Any])


def _describe(obj: Any) -> str:
    """``module.qualname`` of a factory, used to name where a component was defined."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{module}.{qualname}"


@dataclass(frozen=True)
class Component:
    """One registered component.

    Attributes:
        kind: one of :data:`KINDS`.
        name: the name specs use to refer to it.
        factory: the callable that builds it (a class or a function).
        owner: who registered it: ``"refsr_blocks"`` or the plugin's distribution name.
        defaults: user-settable constructor parameters and their defaults
            (``inspect.Parameter.empty`` for required ones).
        accepts_var_kwargs: the factory takes ``**kwargs``, so unknown names cannot be
            rejected up front.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    owner: str = "refsr_blocks"
    defaults: dict[str, Any] = field(default_factory=dict)
    accepts_var_kwargs: bool = False

    @property
    def definition(self) -> str:
        """Where the factory is defined, plus its owner: used in clash messages."""
        return f"{_describe(self.factory)} (registered by {self.owner})"

    @property
    def doc(self) -> str:
        """First line of the factory's docstring."""
        doc = inspect.getdoc(self.factory) or ""
        return doc.splitlines()[0] if doc else ""

    def required(self) -> list[str]:
        """Constructor parameters with no default."""
        return [k for k, v in self.defaults.items() if v is inspect.Parameter.empty]


def _inherits_generic_init(cls: type) -> bool:
    """``cls`` has no ``__init__`` of its own below ``nn.Module`` (or ``object``).

    ``nn.Module.__init__`` takes ``*args, **kwargs``; reading its signature would make every
    parameter-free module look as if it accepted any keyword.
    """
    import torch.nn as nn

    return cls.__init__ in (nn.Module.__init__, object.__init__)  # type: ignore[misc]


def _signature_defaults(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """Constructor parameters of ``factory`` (without ``self``) and whether it takes **kwargs."""
    if inspect.isclass(factory) and _inherits_generic_init(factory):
        return {}, False  # e.g. a parameter-free nn.Module: it takes no constructor arguments
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature
        return {}, True
    defaults: dict[str, Any] = {}
    var_kwargs = False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if inspect.isclass(factory) and i == 0 and name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kwargs = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        else:
            defaults[name] = p.default
    return defaults, var_kwargs


def closest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Names in ``choices`` closest to ``name`` (for "did you mean" hints)."""
    return difflib.get_close_matches(name, choices, n=n, cutoff=0.5)


class Registry:
    """Components by kind and name.

    The library keeps one global instance, :data:`REGISTRY`; tests may build their own.
    Plugins are loaded lazily the first time a lookup happens (see
    :mod:`refsr_blocks.plugins`), through the ``before_lookup`` callback.
    """

    def __init__(self, kinds: tuple[str, ...] = KINDS) -> None:
        self.kinds = kinds
        self._components: dict[str, dict[str, Component]] = {k: {} for k in kinds}
        self.before_lookup: Callable[[], None] | None = None
        self._loading = threading.RLock()

    # -- registration -------------------------------------------------------------------
    def _check_kind(self, kind: str) -> None:
        if kind not in self._components:
            hint = closest(kind, list(self.kinds))
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise RegistryError(f"unknown component kind {kind!r}; kinds are {', '.join(self.kinds)}.{did_you_mean}")

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        override: bool = False,
        owner: str = "refsr_blocks",
    ) -> Component:
        """Register ``factory`` as component ``name`` of ``kind``.

        Raises:
            RegistryError: the kind is unknown, the name is not a valid identifier-like
                string, the factory is not callable, or the name is taken and ``override``
                is false (the message names both definitions).
        """
        self._check_kind(kind)
        if not isinstance(name, str) or not name or any(c in name for c in " *?[]."):
            raise RegistryError(
                f"invalid component name {name!r}: use a non-empty string without spaces, dots or wildcard characters"
            )
        if not callable(factory):
            raise RegistryError(f"component {kind}/{name}: factory {factory!r} is not callable")
        existing = self._components[kind].get(name)
        defaults, var_kwargs = _signature_defaults(factory)
        component = Component(kind, name, factory, owner, defaults, var_kwargs)
        if existing is not None and not override and existing.factory is not factory:
            raise RegistryError(
                f"{kind} component {name!r} is already registered by {existing.definition}; "
                f"{component.definition} tried to register it again. Pick another name, or "
                "pass override=True to replace it on purpose."
            )
        self._components[kind][name] = component
        return component

    def unregister(self, kind: str, name: str) -> None:
        """Remove a component (mainly for tests); unknown names raise."""
        self.get(kind, name)
        del self._components[kind][name]

    # -- lookup -------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self.before_lookup is None:
            return
        # A second thread's first lookup waits until the first has finished loading
        # (re-entrant: the hook registers components and may look them up).
        with self._loading:
            if self.before_lookup is not None:
                hook, self.before_lookup = self.before_lookup, None
                hook()

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``.

        Raises:
            UnknownComponentError: with the registered names of that kind and the closest
                matches.
        """
        self._ensure_loaded()
        self._check_kind(kind)
        try:
            return self._components[kind][name]
        except (KeyError, TypeError):
            names = sorted(self._components[kind])
            hint = closest(str(name), names)
            did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise UnknownComponentError(
                f"unknown {kind} {name!r}.{did_you_mean} Registered {kind} components: {', '.join(names) or '(none)'}."
            ) from None

    def list(self, kind: str | None = None, pattern: str = "*") -> list[str]:
        """Sorted names matching the shell-style ``pattern``; ``kind=None`` gives ``kind/name``."""
        self._ensure_loaded()
        if kind is not None:
            self._check_kind(kind)
            return sorted(n for n in self._components[kind] if fnmatch.fnmatchcase(n, pattern))
        return [f"{k}/{n}" for k in self.kinds for n in sorted(self._components[k]) if fnmatch.fnmatchcase(n, pattern)]

    def __iter__(self) -> Iterator[Component]:
        self._ensure_loaded()
        for kind in self.kinds:
            yield from (self._components[kind][n] for n in sorted(self._components[kind]))

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        self._ensure_loaded()
        return kind in self._components and name in self._components[kind]


#: The library-wide registry.
REGISTRY = Registry()


@overload
def register_component(kind: str, name: str, factory: None = None, *, override: bool = False) -> Callable[[F], F]: ...
@overload
def register_component(kind: str, name: str, factory: F, *, override: bool = False) -> F: ...
def register_component(
    kind: str, name: str, factory: Callable[..., Any] | None = None, *, override: bool = False
) -> Any:
    """Register a component; works as a decorator or as a plain call.

    Args:
        kind: one of :data:`KINDS`.
        name: the name specs will use.
        factory: the class or function building the component. Omit it to use the
            function as a decorator.
        override: replace an existing component of the same name instead of raising.

    Returns:
        The factory, unchanged (so the decorator leaves the class usable).
    """
    if factory is not None:
        REGISTRY.register(kind, name, factory, override=override)
        return factory

    def decorator(f: F) -> F:
        REGISTRY.register(kind, name, f, override=override)
        return f

    return decorator


def get_component(kind: str, name: str) -> Component:
    """The registered component ``name`` of ``kind`` (see :meth:`Registry.get`)."""
    return REGISTRY.get(kind, name)


def list_components(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Registered component names, optionally of one kind, filtered by a wildcard pattern.

    Example:
        >>> from refsr_blocks import list_components
        >>> "charbonnier" in list_components("loss")
        True
        >>> list_components("loss", pattern="charb*")
        ['charbonnier']
    """
    return REGISTRY.list(kind, pattern)
