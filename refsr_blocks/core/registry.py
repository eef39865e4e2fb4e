"""The component registry: every swappable part of a model, by kind and name (see docs/concepts.md).

A *kind* names a call contract (``flow``: ``(a, b) -> flows per level``) and its conformance class; a
spec can swap any two components of one kind. A name taken twice raises unless ``override=True``.

Example:
    >>> import torch
    >>> from refsr_blocks.core.registry import register_component, get_component
    >>> @register_component("loss", "doc_example_l1", override=True)
    ... class MyL1(torch.nn.Module):
    ...     def forward(self, pred, target):
    ...         return (pred - target).abs().mean()
    >>> get_component("loss", "doc_example_l1").factory is MyL1
    True
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from .errors import RefSROwnerWarning, RegistryError, UnknownComponentError, did_you_mean

__all__ = ["REGISTRY", "Component", "Kind", "Registry", "get_component", "list_components", "list_kinds"]
__all__ += ["recording", "register_component", "register_kind", "undo"]

F = TypeVar("F", bound=Callable[..., Any])


def _describe(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', None) or repr(obj)}"


@dataclass(frozen=True)
class Kind:
    """A kind: its ``contract`` (a conformance class, or its ``"module:Class"`` path), whether its components
    fill architecture slots (``model_part``; ``loss`` and ``model`` do not), ``doc`` and ``owner``."""

    name: str
    contract: type | str | None = None
    model_part: bool = True
    doc: str = ""
    owner: str = "refsr_blocks"

    def contract_class(self) -> type | None:
        if not isinstance(self.contract, str):
            return self.contract
        module, _, attr = self.contract.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Component:
    """A registered factory with its ``owner``, its constructor's ``defaults`` (``inspect.Parameter.empty``
    where required) and whether it ``accepts_var_kwargs`` (then unknown names cannot be refused)."""

    kind: str
    name: str
    factory: Callable[..., Any]
    owner: str = "refsr_blocks"
    defaults: dict[str, Any] = field(default_factory=dict)
    accepts_var_kwargs: bool = False

    @property
    def definition(self) -> str:  # for messages naming both sides of a clash
        return f"{_describe(self.factory)} (registered by {self.owner})"

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.factory) or "").partition("\n")[0]


def _signature_defaults(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """The constructor parameters of ``factory`` and their defaults, and whether it takes ``**kwargs``."""
    import torch.nn as nn

    if inspect.isclass(factory) and factory.__init__ in (nn.Module.__init__, object.__init__):  # type: ignore[misc]
        return {}, False  # no __init__ of its own: its generic (*args, **kwargs) takes no arguments
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature
        return {}, True
    params = [p for i, p in enumerate(sig.parameters.values()) if not (i == 0 and p.name == "self")]
    defaults = {p.name: p.default for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return defaults, any(p.kind is p.VAR_KEYWORD for p in params)


class Registry:
    """Components by kind and name. The first lookup calls ``before_lookup`` (the plugin loader) once;
    other threads wait for it, except ``loader_threads`` (plugins loading for it)."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._components: dict[str, dict[str, Component]] = {}
        self.before_lookup: Callable[[], None] | None = None
        self._loading = threading.RLock()
        self._in_hook = False
        self.loader_threads: set[int] = set()
        self.unknown_hint: Callable[[], str] = str

    @property
    def kinds(self) -> tuple[str, ...]:  # in registration order
        return tuple(self._kinds)

    def register_kind(
        self,
        name: str,
        *,
        contract: type | str | None = None,
        model_part: bool = True,
        doc: str = "",
        owner: str | None = None,
    ) -> Kind:
        """Add a kind (see :class:`Kind`); the same kind again is a no-op, another under its name raises."""
        _check_name(name, "kind")
        owner, log = _attribution(owner)
        kind = Kind(name, contract, model_part, doc, owner)
        existing = self._kinds.get(name)
        if existing == kind:
            return existing
        if existing is not None:
            raise RegistryError(
                f"component kind {name!r} is already registered by {existing.owner} (contract {existing.contract!r}); "
                f"{owner} tried to register it again with contract {contract!r}. Pick another kind name."
            )
        self._kinds[name], self._components[name] = kind, {}
        if log is not None:
            log.append((self, kind, None))
        return kind

    def unregister_kind(self, name: str) -> None:
        self._check_kind(name)
        del self._kinds[name], self._components[name]

    def get_kind(self, name: str) -> Kind:
        self._ensure_loaded()
        self._check_kind(name)
        return self._kinds[name]

    def _check_kind(self, kind: str) -> None:
        if kind not in self._components:
            raise RegistryError(
                f"unknown component kind {kind!r}; kinds are {', '.join(self.kinds)}.{did_you_mean(kind, self.kinds)} "
                "A new kind is added with register_kind()."
            )

    def register(
        self, kind: str, name: str, factory: Callable[..., Any], *, override: bool = False, owner: str | None = None
    ) -> Component:
        """Register ``factory`` as component ``name`` of ``kind`` (``owner``: see :func:`_attribution`);
        replacing another owner's component warns. A :class:`RegistryError` names both sides of a clash."""
        self._check_kind(kind)
        _check_name(name, "component")
        if not callable(factory):
            raise RegistryError(f"component {kind}/{name}: factory {factory!r} is not callable")
        existing = self._components[kind].get(name)
        replacing = existing is not None and existing.factory is not factory
        owner, log = _attribution(owner, replacing=replacing)
        defaults, var_kwargs = _signature_defaults(factory)
        bounds = getattr(factory, "PARAM_BOUNDS", None)
        unknown = [] if var_kwargs or not isinstance(bounds, dict) else [k for k in bounds if k not in defaults]
        if bounds is not None and (not isinstance(bounds, dict) or unknown):
            raise RegistryError(
                f"component {kind}/{name}: PARAM_BOUNDS must map constructor parameters to (low, high); "
                f"{unknown or bounds!r} {'are not parameters of ' + _describe(factory) if unknown else ''}"
            )
        component = Component(kind, name, factory, owner, defaults, var_kwargs)
        if replacing and not override:
            raise RegistryError(
                f"{kind} component {name!r} is already registered by {existing.definition}; "
                f"{component.definition} tried to register it again. Pick another name, or "
                "pass override=True to replace it on purpose."
            )
        if replacing and existing.owner != owner:
            warnings.warn(
                f"{component.definition} replaces {kind} component {name!r} of {existing.definition} "
                "(override=True); specs naming it now build the new class, and record its owner",
                RefSROwnerWarning,
                stacklevel=3,
            )
        self._components[kind][name] = component
        if log is not None:
            log.append((self, component, existing))
        return component

    def unregister(self, kind: str, name: str) -> None:
        self.get(kind, name)
        del self._components[kind][name]

    def _ensure_loaded(self) -> None:
        if self.before_lookup is None or threading.get_ident() in self.loader_threads:
            return
        with self._loading:  # other threads wait here while the hook runs; its own lookups re-enter
            if self.before_lookup is not None and not self._in_hook:
                self._in_hook = True
                try:
                    self.before_lookup()
                finally:
                    self._in_hook, self.before_lookup = False, None

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``; an :class:`UnknownComponentError` lists the registered ones."""
        self._ensure_loaded()
        self._check_kind(kind)
        try:
            return self._components[kind][name]
        except (KeyError, TypeError):
            names = sorted(self._components[kind])
            raise UnknownComponentError(
                f"unknown {kind} {name!r}.{did_you_mean(name, names)} Registered {kind} components: "
                f"{', '.join(names) or '(none)'}.{self.unknown_hint()}"
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
        self._ensure_loaded()
        return key[1] in self._components.get(key[0], {})


#: One logged registration: (registry, new record, record it replaced).
Change = tuple[Registry, Kind | Component, Kind | Component | None]


class ChangeLog(list):  # type: ignore[type-arg]
    """The registrations of one :func:`recording` scope; once ``closed`` it refuses new ones (a plugin
    given up on, should it wake up, can no longer change the registry)."""

    closed: bool = False


_RECORDING: ContextVar[tuple[str, ChangeLog] | None] = ContextVar("refsr_blocks_recording", default=None)


@contextmanager
def recording(owner: str, log: ChangeLog | None = None) -> Iterator[ChangeLog]:
    """Attribute the registrations made in this context (thread) to ``owner`` and log them for :func:`undo`."""
    log = ChangeLog() if log is None else log
    token = _RECORDING.set((owner, log))
    try:
        yield log
    finally:
        _RECORDING.reset(token)


def undo(log: list[Change]) -> None:
    """Reverse the logged registrations, newest first, except those someone has changed since."""
    for registry, new, old in reversed(log):
        if isinstance(new, Kind):
            if registry._kinds.get(new.name) == new:
                registry.unregister_kind(new.name)  # with its components
        elif registry._components.get(new.kind, {}).get(new.name) == new:
            if old is None:
                registry.unregister(new.kind, new.name)
            else:
                registry._components[old.kind][old.name] = old
    log.clear()


def _attribution(owner: str | None, *, replacing: bool = False) -> tuple[str, list[Change] | None]:
    """The owner of a registration and the log it goes to (``None`` outside :func:`recording`), by the
    calling file: the library's code stays the library's while a plugin loads (a library module the
    plugin imports first must not go with it). Outside a plugin's loading (a script, or a plugin's own
    thread, which context variables do not follow), a replacement is owned by the calling distribution.
    """
    scope, frame = _RECORDING.get(), sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    library = frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR)
    if scope is not None and not library:
        if scope[1].closed:
            raise RegistryError(
                f"plugin {scope[0]!r} was given up on (it did not finish loading in time); it can no longer register"
            )
        return owner or scope[0], scope[1]
    if owner is None and replacing and not library:
        module = ("" if frame is None else frame.f_globals.get("__name__", "")).split(".")[0] or "__main__"
        owner = importlib.metadata.packages_distributions().get(module, [module])[0]
    return owner or "refsr_blocks", None


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in " *?[]./"):
        raise RegistryError(
            f"invalid {what} name {name!r}: use a non-empty string without spaces, dots, slashes or wildcards"
        )


#: The library-wide registry (the built-in kinds are registered by :mod:`refsr_blocks.components`).
REGISTRY = Registry()


@overload
def register_component(kind: str, name: str, factory: None = None, *, override: bool = False) -> Callable[[F], F]: ...
@overload
def register_component(kind: str, name: str, factory: F, *, override: bool = False) -> F: ...
def register_component(
    kind: str, name: str, factory: Callable[..., Any] | None = None, *, override: bool = False
) -> Any:
    """Register a component in :data:`REGISTRY`, as a decorator (no ``factory``) or a call; returns the factory."""

    def decorator(f: F) -> F:
        REGISTRY.register(kind, name, f, override=override)
        return f

    return decorator if factory is None else decorator(factory)


def get_component(kind: str, name: str) -> Component:
    """The registered component ``name`` of ``kind`` (see :meth:`Registry.get`)."""
    return REGISTRY.get(kind, name)


def list_components(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Registered component names (``kind/name`` without a kind) matching a wildcard pattern.

    Example:
        >>> list_components("loss", pattern="charb*")
        ['charbonnier']
    """
    return REGISTRY.list(kind, pattern)


def register_kind(name: str, *, contract: type | str | None = None, model_part: bool = True, doc: str = "") -> Kind:
    """Add a component kind to :data:`REGISTRY` (see :meth:`Registry.register_kind`).

    Example:
        >>> registry = Registry()  # a private one, so the example leaves the global one alone
        >>> registry.register_kind("texture_matcher", doc="matches textures")
        Kind(name='texture_matcher', contract=None, model_part=True, doc='matches textures', owner='refsr_blocks')
    """
    return REGISTRY.register_kind(name, contract=contract, model_part=model_part, doc=doc)


def list_kinds(*, model_parts: bool = False) -> list[str]:
    """Registered kind names (only those that fill architecture slots with ``model_parts``)."""
    REGISTRY._ensure_loaded()
    return [k.name for k in REGISTRY._kinds.values() if k.model_part or not model_parts]
