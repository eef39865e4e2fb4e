"""Plugin loading: third-party packages that add components through pluggy.

A plugin package declares an entry point in the ``refsr_blocks`` group whose target is a
module (or any object) implementing the hooks of :mod:`refsr_blocks.hookspecs`, today only
``register_components(registry)``. Loading follows these rules:

* **Lazily, once.** Nothing is imported at ``import refsr_blocks``; the package sets
  ``REGISTRY.before_lookup = load_plugins``, so the first registry lookup loads every
  plugin, and later lookups do not load again.
* **One at a time.** Entry points are loaded one by one with :mod:`importlib.metadata`
  (pluggy's ``load_setuptools_entrypoints`` stops at the first failure). A plugin that fails
  to import, whose hook implementations do not validate, or whose
  ``register_components`` raises is skipped with exactly one :class:`RefSRPluginWarning`
  naming its distribution, version and error; components it registered before raising
  are rolled back; the library and every other plugin keep working.
* **Misspelled hooks are reported.** A function marked with ``@hookimpl`` whose name is not
  a hook (``register_component``) would otherwise be ignored silently; pluggy's
  ``check_pending`` is run per plugin and a failure skips that plugin with the warning
  above (it is a broken plugin like any other, so it gets the same treatment: the library
  must not go down because of it, and the warning tells its author what to rename).
* **Name clashes name both owners.** Registering a name that already exists raises
  :class:`~refsr_blocks.errors.PluginError` inside the hook, naming both owners, unless the
  plugin passed ``override=True``. The clash is raised where the plugin calls
  ``registry.register`` (so a plugin may catch it), and if it escapes the hook the plugin
  is skipped as broken, with that error as the warning text. Raising it out of the loader
  instead would take the whole library down at its first lookup because of one
  third-party package, which the design forbids; rolling the plugin back keeps the
  registry consistent (no half-installed plugin).
* **Kill switch.** ``REFSR_BLOCKS_DISABLE_PLUGINS=1`` (any value but ``""``, ``0``,
  ``false``, ``no``, ``off``) turns entry-point loading off; discovered entry points are
  listed with status ``"disabled"`` and not imported. Plugins registered in-process with
  :func:`register_plugin` still run.

Example:
    >>> from refsr_blocks.plugins import PluginManager
    >>> from refsr_blocks.registry import Registry
    >>> from refsr_blocks.hookspecs import hookimpl
    >>> import torch
    >>> class MyPlugin:
    ...     @hookimpl
    ...     def register_components(self, registry):
    ...         registry.register("loss", "my_l1", torch.nn.L1Loss)
    >>> manager = PluginManager(Registry(), discover=lambda: [])
    >>> manager.register_plugin(MyPlugin(), name="my-plugin").status
    'pending'
    >>> [(p.name, p.components, p.status) for p in manager.list_plugins()]
    [('my-plugin', ('loss/my_l1',), 'loaded')]

Run ``python -m refsr_blocks.plugins`` to print the table of installed plugins.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownComponentError
from .hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from .registry import REGISTRY, Component, Registry

__all__ = [
    "DISABLE_ENV_VAR",
    "PluginInfo",
    "PluginManager",
    "PluginRegistrar",
    "RefSRPluginWarning",
    "get_plugin_manager",
    "hookimpl",
    "list_plugins",
    "load_plugins",
    "main",
    "plugins_disabled",
    "print_plugins",
    "register_plugin",
    "unregister_plugin",
]

logger = logging.getLogger(__name__)

#: Set this environment variable to ``1`` to turn entry-point plugin loading off.
DISABLE_ENV_VAR = "REFSR_BLOCKS_DISABLE_PLUGINS"
_FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})

LOADED = "loaded"
PENDING = "pending"
DISABLED = "disabled"
FAILED = "failed"


class RefSRPluginWarning(UserWarning):
    """A plugin was skipped because it is broken (import error, bad hook, clash...)."""


def plugins_disabled() -> bool:
    """Whether ``REFSR_BLOCKS_DISABLE_PLUGINS`` asks to skip entry-point plugins."""
    return os.environ.get(DISABLE_ENV_VAR, "").strip().lower() not in _FALSE_VALUES


def _describe(obj: Any) -> str:
    """``module.qualname`` of a factory or plugin object, for messages."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module is None and qualname is None and hasattr(obj, "__name__"):  # a module
        return str(obj.__name__)
    if qualname is None:
        qualname = type(obj).__qualname__ + " instance"
    return f"{module or '?'}.{qualname}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------
# the per-plugin view of the registry
# ---------------------------------------------------------------------------------------
class PluginRegistrar:
    """The ``registry`` object one plugin's ``register_components`` hook receives.

    It forwards :meth:`register` to the real registry with ``owner`` set to the plugin's
    distribution name, records what the plugin added, turns a name clash into a
    :class:`PluginError` naming both owners, and can undo everything (:meth:`rollback`).
    """

    def __init__(self, registry: Registry, owner: str) -> None:
        self._registry = registry
        self.owner = owner
        # (kind, name, factory registered, component it replaced or None), in call order
        self._added: list[tuple[str, str, Callable[..., Any], Component | None]] = []

    @property
    def kinds(self) -> tuple[str, ...]:
        """The component kinds the registry accepts."""
        return self._registry.kinds

    @property
    def added(self) -> tuple[str, ...]:
        """``"kind/name"`` of every component this plugin registered, in order."""
        return tuple(f"{kind}/{name}" for kind, name, _, _ in self._added)

    def register(self, kind: str, name: str, factory: Callable[..., Any], *, override: bool = False) -> Component:
        """Register ``factory`` as component ``name`` of ``kind``, owned by this plugin.

        Raises:
            PluginError: ``name`` is already registered (by the library or another
                plugin) and ``override`` is false; the message names both owners.
            RegistryError: unknown kind, invalid name or a factory that is not callable.
        """
        previous = self._existing(kind, name)
        if previous is not None and not override and previous.factory is not factory:
            raise PluginError(
                f"plugin {self.owner!r} tried to register {kind} component {name!r} "
                f"({_describe(factory)}), but {name!r} is already registered by "
                f"{previous.owner!r} ({_describe(previous.factory)}). Rename the "
                "plugin's component, or pass override=True to replace it on purpose."
            )
        component = self._registry.register(kind, name, factory, override=override, owner=self.owner)
        self._added.append((kind, name, factory, previous))
        return component

    def _existing(self, kind: str, name: str) -> Component | None:
        if kind not in self._registry.kinds:
            return None  # Registry.register raises the clear "unknown kind" error
        try:
            return self._registry.get(kind, name)
        except UnknownComponentError:
            return None

    def rollback(self) -> None:
        """Undo this plugin's registrations, restoring any component it had replaced.

        A component that someone else has replaced since is left alone.
        """
        for kind, name, factory, previous in reversed(self._added):
            current = self._existing(kind, name)
            if current is None or current.factory is not factory or current.owner != self.owner:
                continue
            if previous is None:
                self._registry.unregister(kind, name)
            else:
                self._registry.register(kind, name, previous.factory, override=True, owner=previous.owner)
        self._added.clear()

    def __repr__(self) -> str:
        return f"<PluginRegistrar owner={self.owner!r} added={list(self.added)}>"


# ---------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PluginInfo:
    """One row of :func:`list_plugins`.

    Attributes:
        name: the plugin's registration name (the entry-point name, or the name given to
            :func:`register_plugin`).
        distribution: the installed distribution providing it (``None`` in-process).
        version: that distribution's version (``None`` in-process).
        entry_point: the entry-point name (``None`` in-process).
        value: what the entry point points at (``"pkg.module"``), or the plugin object's
            ``module.qualname`` in-process.
        components: ``"kind/name"`` of the components it added.
        status: ``"loaded"``, ``"pending"`` (registered, hook not run yet),
            ``"disabled"`` or ``"failed: <ExceptionType>: <message>"``.
        error: the exception that made it fail, if it failed (not shown in tables).
    """

    name: str
    distribution: str | None
    version: str | None
    entry_point: str | None
    value: str | None
    components: tuple[str, ...]
    status: str
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """The plugin loaded and ran its hook."""
        return self.status == LOADED

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (without ``error``)."""
        data = asdict(self)
        del data["error"]
        data["components"] = list(self.components)
        return data


@dataclass
class _Entry:
    """Mutable bookkeeping behind one :class:`PluginInfo`."""

    name: str
    owner: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    value: str | None = None
    plugin: Any = None
    registrar: PluginRegistrar | None = None
    status: str = PENDING
    error: BaseException | None = None

    @property
    def label(self) -> str:
        """How warnings name the plugin: distribution, version and entry point."""
        if self.distribution is None:
            return f"{self.name!r}"
        return f"{self.distribution!r} {self.version} (entry point {self.entry_point!r} = {self.value!r})"

    def info(self) -> PluginInfo:
        components = self.registrar.added if self.registrar is not None else ()
        return PluginInfo(
            self.name,
            self.distribution,
            self.version,
            self.entry_point,
            self.value,
            components,
            self.status,
            self.error,
        )


# ---------------------------------------------------------------------------------------
# the manager
# ---------------------------------------------------------------------------------------
def _default_discover(group: str) -> Callable[[], Iterable[metadata.EntryPoint]]:
    return lambda: metadata.entry_points(group=group)


class PluginManager:
    """Discovers, validates and runs plugins for one :class:`Registry`.

    Args:
        registry: where plugins register their components (the global
            :data:`~refsr_blocks.registry.REGISTRY` by default; tests pass a fresh one).
        group: the entry-point group to scan.
        discover: returns the entry points to load; defaults to
            ``importlib.metadata.entry_points(group=group)``. Tests pass a filter over the
            real entry points to ignore whatever else is installed.

    Hooks run in registration order: entry-point plugins first (in discovery order), then
    plugins registered in-process with :meth:`register_plugin` before loading, so an
    in-process plugin may override an installed one with ``override=True``.
    """

    def __init__(
        self,
        registry: Registry = REGISTRY,
        *,
        group: str = ENTRY_POINT_GROUP,
        discover: Callable[[], Iterable[metadata.EntryPoint]] | None = None,
    ) -> None:
        self.registry = registry
        self.group = group
        self._discover = discover if discover is not None else _default_discover(group)
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._entries: dict[str, _Entry] = {}
        self._state = "new"  # -> "loading" -> "loaded"
        self._lock = threading.RLock()

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run (or is running)."""
        return self._state != "new"

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Load entry-point plugins and run pending hooks; later calls do nothing.

        Never raises because of a plugin: broken ones are skipped with one
        :class:`RefSRPluginWarning` each.
        """
        with self._lock:
            if self._state != "new":
                return
            self._state = "loading"
            try:
                for entry_point in self._entry_points():
                    self._load_entry_point(entry_point)
                # in-process plugins registered before loading (or during it)
                while pending := [e for e in self._entries.values() if e.status == PENDING]:
                    for entry in pending:
                        self._entries[entry.name] = self._entries.pop(entry.name)  # list order
                        self._run_hook(entry)
            finally:
                self._state = "loaded"

    def _entry_points(self) -> list[metadata.EntryPoint]:
        try:
            return list(self._discover())
        except Exception as exc:  # corrupt metadata must not take the library down
            warnings.warn(
                f"refsr_blocks could not list plugin entry points of group "
                f"{self.group!r}; no plugin was loaded: {_error_text(exc)}",
                RefSRPluginWarning,
                stacklevel=4,
            )
            return []

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        entry = self._entry_for(entry_point)
        self._entries[entry.name] = entry
        if plugins_disabled():
            entry.status = DISABLED
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            self._fail(entry, exc, "could not be imported")
            return
        try:
            self._add_to_pluggy(entry, plugin)
        except Exception as exc:
            self._fail(entry, exc, "is not a valid plugin")
            return
        self._run_hook(entry)

    def _entry_for(self, entry_point: metadata.EntryPoint) -> _Entry:
        dist = getattr(entry_point, "dist", None)
        dist_name = dist.name if dist is not None else None
        version = dist.version if dist is not None else None
        name = entry_point.name
        if name in self._entries or self._pm.has_plugin(name):
            name = f"{dist_name or entry_point.value}:{entry_point.name}"
        return _Entry(
            name=name,
            owner=dist_name or entry_point.name,
            distribution=dist_name,
            version=version,
            entry_point=entry_point.name,
            value=entry_point.value,
        )

    def _add_to_pluggy(self, entry: _Entry, plugin: Any) -> None:
        """Register ``plugin`` with pluggy and validate its hook implementations.

        Raises:
            pluggy.PluginValidationError: a hook implementation with an unknown name (a
                misspelling) or with arguments the hook spec does not have.
            ValueError: the object or the name is already registered.
        """
        self._pm.register(plugin, name=entry.name)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._pm.unregister(name=entry.name)
            known = ", ".join(self._known_hooks())
            raise pluggy.PluginValidationError(
                exc.plugin, f"{exc}; the hooks refsr_blocks defines are: {known}"
            ) from None
        entry.plugin = plugin

    def _known_hooks(self) -> list[str]:
        return sorted(
            name for name, caller in vars(self._pm.hook).items() if not name.startswith("_") and caller.has_spec()
        )

    def _call_hook(self, entry: _Entry) -> None:
        """Run ``register_components`` of ``entry``'s plugin alone, through a registrar.

        On success the entry is marked loaded; if the hook raises, whatever it registered
        is rolled back and the exception propagates.
        """
        registrar = PluginRegistrar(self.registry, owner=entry.owner)
        others = [p for p in self._pm.get_plugins() if p is not entry.plugin]
        caller = self._pm.subset_hook_caller("register_components", remove_plugins=others)
        try:
            caller(registry=registrar)
        except BaseException:
            registrar.rollback()
            raise
        entry.registrar = registrar
        entry.status = LOADED

    def _run_hook(self, entry: _Entry) -> None:
        """Run one plugin's hook at load time; a failure skips it with a warning."""
        try:
            self._call_hook(entry)
        except Exception as exc:
            self._fail(entry, exc, "failed in register_components")

    def _fail(self, entry: _Entry, exc: Exception, stage: str) -> None:
        """Mark ``entry`` failed, drop it from pluggy, and warn once."""
        if entry.plugin is not None and self._pm.is_registered(entry.plugin):
            self._pm.unregister(entry.plugin)
        entry.plugin = None
        entry.error = exc
        entry.status = f"{FAILED}: {_error_text(exc)}"
        logger.debug("refsr_blocks plugin %s %s", entry.label, stage, exc_info=exc)
        warnings.warn(
            f"refsr_blocks plugin {entry.label} {stage} and was skipped: {_error_text(exc)}",
            RefSRPluginWarning,
            stacklevel=5,
        )

    # -- in-process plugins ---------------------------------------------------------------
    def register_plugin(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Register a plugin object (a module, class or instance with hook functions).

        Its hooks are validated now. ``register_components`` runs now if plugins are
        already loaded, else at loading time, after the entry-point plugins.

        Args:
            plugin: the object carrying ``@hookimpl`` functions.
            name: its name in :func:`list_plugins` and the owner of its components;
                defaults to the module name, or the class name of an instance.

        Raises:
            PluginError: the name is taken, a hook implementation is invalid (misspelled
                hook name, wrong arguments), or, when it runs now, the hook raised (its
                components are then rolled back). A call made in your own code can
                handle the error, so it is raised rather than turned into a warning.
        """
        with self._lock:
            name = name or _default_name(plugin)
            old = self._entries.get(name)
            if old is not None and not old.status.startswith(FAILED):
                raise PluginError(
                    f"a refsr_blocks plugin named {name!r} is already registered ({old.value}); pass another name="
                )
            entry = _Entry(name=name, owner=name, value=_describe(plugin))
            try:
                self._add_to_pluggy(entry, plugin)
            except (pluggy.PluginValidationError, ValueError) as exc:
                raise PluginError(f"plugin {name!r} is not valid: {exc}") from exc
            self._entries[name] = entry
            if self._state == "loaded":
                self._run_now(entry)
            return entry.info()

    def _run_now(self, entry: _Entry) -> None:
        """Run an in-process plugin's hook; a failure removes it again and raises."""
        try:
            self._call_hook(entry)
        except Exception as exc:
            self._pm.unregister(entry.plugin)
            del self._entries[entry.name]
            if isinstance(exc, PluginError):
                raise
            raise PluginError(f"plugin {entry.name!r} failed in register_components: {_error_text(exc)}") from exc

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and the components it registered (restoring replaced ones).

        Raises:
            PluginError: no plugin of that name.
        """
        with self._lock:
            entry = self._entries.pop(name, None)
            if entry is None:
                raise PluginError(
                    f"no refsr_blocks plugin named {name!r}; plugins: {', '.join(self._entries) or '(none)'}"
                )
            if entry.registrar is not None:
                entry.registrar.rollback()
            if entry.plugin is not None and self._pm.is_registered(entry.plugin):
                self._pm.unregister(entry.plugin)

    def unregister_all(self) -> None:
        """Remove every plugin, newest first, and their components."""
        for name in reversed(list(self._entries)):
            self.unregister_plugin(name)

    # -- listing ------------------------------------------------------------------------
    def list_plugins(self) -> list[PluginInfo]:
        """Every plugin seen, in the order their hooks ran, loading plugins first if needed."""
        self.load()
        with self._lock:
            return [entry.info() for entry in self._entries.values()]


def _default_name(plugin: Any) -> str:
    name = getattr(plugin, "__name__", None)  # modules, classes, functions
    return name if isinstance(name, str) else type(plugin).__name__


# ---------------------------------------------------------------------------------------
# the library-wide manager
# ---------------------------------------------------------------------------------------
_MANAGER: PluginManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The manager bound to the global :data:`~refsr_blocks.registry.REGISTRY`."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = PluginManager(REGISTRY)
        return _MANAGER


def load_plugins() -> None:
    """Load plugins into the global registry once; set as ``REGISTRY.before_lookup``."""
    get_plugin_manager().load()


def list_plugins() -> list[PluginInfo]:
    """All plugins of the global registry (loading them first if needed).

    Example:
        >>> from refsr_blocks.plugins import list_plugins
        >>> all(p.status for p in list_plugins())
        True
    """
    return get_plugin_manager().list_plugins()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Register a plugin object with the global registry (see
    :meth:`PluginManager.register_plugin`)."""
    return get_plugin_manager().register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin and its components from the global registry."""
    get_plugin_manager().unregister_plugin(name)


def _reset_for_tests(rearm: bool = True) -> None:
    """Forget the global manager, removing every component its plugins registered.

    With ``rearm``, the global registry loads plugins again on its next lookup, as after
    a fresh ``import refsr_blocks``.
    """
    global _MANAGER
    with _MANAGER_LOCK:
        manager, _MANAGER = _MANAGER, None
    if manager is not None:
        manager.unregister_all()
    if rearm:
        REGISTRY.before_lookup = load_plugins


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------
_COLUMNS = ("distribution", "version", "entry point", "components", "status")


def format_plugin_table(records: Sequence[PluginInfo]) -> str:
    """A plain-text table of ``records``, one plugin per row."""
    if not records:
        return f"No refsr_blocks plugins found (entry-point group {ENTRY_POINT_GROUP!r})."
    rows = [
        (
            r.distribution or f"({r.name}, in-process)",
            r.version or "-",
            r.entry_point or "-",
            ", ".join(r.components) or "-",
            r.status,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [_COLUMNS, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m refsr_blocks.plugins [--json]``: print the installed plugins."""
    parser = argparse.ArgumentParser(
        prog="python -m refsr_blocks.plugins",
        description="List refsr_blocks plugins: distribution, version, entry point, "
        f"components added and status. Set {DISABLE_ENV_VAR}=1 to skip loading them.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    print_plugins(as_json=args.json)
    return 0


def print_plugins(as_json: bool = False) -> None:
    """Print :func:`list_plugins` as a table, or as JSON records."""
    records = list_plugins()
    if as_json:
        print(json.dumps([r.as_dict() for r in records], indent=2))
    else:
        print(format_plugin_table(records))


if __name__ == "__main__":
    # Run the canonical ``refsr_blocks.plugins`` module, not this ``__main__`` copy, so the
    # state listed is the one the registry's lazy loader uses.
    from refsr_blocks import plugins as _plugins

    sys.exit(_plugins.main())
