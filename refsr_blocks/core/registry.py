"""The component registry: every swappable part of a model, by kind and name.

A *kind* names a call contract (``flow``: ``(a, b) -> flows per level``); a *component* is a
factory (usually an ``nn.Module`` subclass) registered under a kind, so a spec can swap any two
components of one kind. Kinds are open: an architecture or a plugin adds one with
:func:`register_kind`, naming the conformance class its components must pass. Registering a
name twice raises an error naming both definitions unless ``override=True`` is passed.

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
    """``module.qualname`` of a factory, used to name where a component was defined."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{module}.{qualname}"


@dataclass(frozen=True)
class Kind:
    """A component kind: its ``name``, the ``contract`` its components honour (a conformance class
    or its ``"module:Class"`` path, imported when a test asks; ``None``: no checks), whether its
    components fill slots of architectures (``model_part``; ``loss`` and ``model`` do not), a
    line of ``doc``, and its ``owner`` (``"refsr_blocks"`` or a plugin's distribution)."""

    name: str
    contract: type | str | None = None
    model_part: bool = True
    doc: str = ""
    owner: str = "refsr_blocks"

    def contract_class(self) -> type | None:
        """The conformance class, imported on first use."""
        if not isinstance(self.contract, str):
            return self.contract
        module, _, attr = self.contract.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Component:
    """One registered component: its ``kind`` and ``name``, the ``factory`` that builds it, its
    ``owner``, its user-settable constructor parameters with their ``defaults``
    (``inspect.Parameter.empty`` for required ones), and whether it ``accepts_var_kwargs`` (so
    unknown names cannot be refused up front)."""

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


def _signature_defaults(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """Constructor parameters of ``factory`` (without ``self``) and whether it takes **kwargs."""
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
    """Components by kind and name.

    The library keeps one global instance, :data:`REGISTRY`; tests may build their own. The
    first lookup calls ``before_lookup`` once (the plugin loader, :mod:`refsr_blocks.core.plugins`);
    lookups from other threads wait for it, those from ``loader_threads`` (a plugin loading for
    it) pass through.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._components: dict[str, dict[str, Component]] = {}
        self.before_lookup: Callable[[], None] | None = None
        self._loading = threading.RLock()
        self._in_hook = False
        self.loader_threads: set[int] = set()
        #: A sentence for "unknown component" errors (the plugin loader names plugins not loaded).
        self.unknown_hint: Callable[[], str] = str

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kind names, in registration order (the built-ins in the order a model is assembled)."""
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
        """Add a component kind (see :class:`Kind`); registering the same kind again is a no-op.

        Raises:
            RegistryError: the name is invalid, or another owner registered it differently
                (the message names both).
        """
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
        """Remove a kind and its components."""
        self._check_kind(name)
        del self._kinds[name], self._components[name]

    def get_kind(self, name: str) -> Kind:
        """The :class:`Kind` record ``name`` (plugins loaded first)."""
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
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        override: bool = False,
        owner: str | None = None,
        quiet: bool = False,
    ) -> Component:
        """Register ``factory`` as component ``name`` of ``kind``.

        ``owner`` defaults to the plugin being loaded (see :func:`recording`), else to the
        library. Replacing another owner's component (``override=True``) warns with
        :class:`~refsr_blocks.core.errors.RefSROwnerWarning` naming both, unless ``quiet``
        (restoring a replaced one); resolved specs record the new owner.

        Raises:
            RegistryError: the kind is unknown, the name invalid, the factory not callable, the
                name taken without ``override`` (naming both definitions), or ``PARAM_BOUNDS``
                naming a parameter the factory does not take.
        """
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
        if replacing and not quiet and existing.owner != owner:
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
        """Remove a component; unknown names raise."""
        self.get(kind, name)
        del self._components[kind][name]

    def _ensure_loaded(self) -> None:
        if self.before_lookup is None or threading.get_ident() in self.loader_threads:
            return
        with self._loading:  # re-entrant: the hook's own lookups pass through
            if self.before_lookup is not None and not self._in_hook:
                self._in_hook = True
                try:
                    self.before_lookup()
                finally:
                    self._in_hook, self.before_lookup = False, None

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``.

        Raises:
            UnknownComponentError: with the registered names of that kind and the closest ones.
        """
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


#: One registration, as :func:`recording` logs it: (registry, new record, record it replaced).
Change = tuple[Registry, Kind | Component, Kind | Component | None]


class ChangeLog(list):  # type: ignore[type-arg]
    """The registrations of one :func:`recording` scope; once ``closed`` it refuses new ones
    (a plugin given up on, should it wake up, can no longer change the registry)."""

    closed: bool = False


_RECORDING: ContextVar[tuple[str, ChangeLog] | None] = ContextVar("refsr_blocks_recording", default=None)


@contextmanager
def recording(owner: str, log: ChangeLog | None = None) -> Iterator[ChangeLog]:
    """Attribute the registrations made in this context (thread) to ``owner``, and log them.

    The plugin loader wraps the import of a plugin and its hook in this: inside it,
    :meth:`Registry.register` and :meth:`Registry.register_kind` default their ``owner`` to
    ``owner`` and append every change to ``log`` (yielded), so that it can be undone.
    """
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
                registry.register(old.kind, old.name, old.factory, override=True, owner=old.owner, quiet=True)
    log.clear()


def _attribution(owner: str | None, *, replacing: bool = False) -> tuple[str, list[Change] | None]:
    """The owner of a registration and the log it goes to (``None`` outside :func:`recording`).

    Decided by the calling code's file: refsr_blocks' own code stays the library's even while a
    plugin loads (a library module first imported by the plugin registers its parts then, and
    they must not go with the plugin). Outside a plugin's loading (a script, or a thread a plugin
    started: context variables do not follow threads), replacing a component is owned by the
    calling distribution, so that it warns and specs record it.
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


#: The refsr_blocks package folder (this file is refsr_blocks/core/registry.py).
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
    """Register a component in the library-wide registry, as a decorator (no ``factory``) or a call.

    Returns the factory unchanged, so the decorator leaves the class usable; ``override``
    replaces an existing component of the same name instead of raising.
    """

    def decorator(f: F) -> F:
        REGISTRY.register(kind, name, f, override=override)
        return f

    return decorator if factory is None else decorator(factory)


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


def register_kind(name: str, *, contract: type | str | None = None, model_part: bool = True, doc: str = "") -> Kind:
    """Add a component kind to the library-wide registry (see :meth:`Registry.register_kind`).

    Example:
        >>> from refsr_blocks.core.registry import Registry
        >>> registry = Registry()  # a private registry, so the example leaves the global one alone
        >>> registry.register_kind("texture_matcher", doc="matches LR and reference textures")
        Kind(name='texture_matcher', contract=None, model_part=True, doc='matches LR and reference textures', owner='refsr_blocks')
    """
    return REGISTRY.register_kind(name, contract=contract, model_part=model_part, doc=doc)


def list_kinds(*, model_parts: bool = False) -> list[str]:
    """Registered kind names (only those that fill architecture slots with ``model_parts``)."""
    REGISTRY._ensure_loaded()
    return [k for k in REGISTRY.kinds if not model_parts or REGISTRY.get_kind(k).model_part]
