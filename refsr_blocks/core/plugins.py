"""Plugins: installed packages that add component kinds, components and architectures.

A plugin is a module named by an entry point of the group ``refsr_blocks`` (see
:mod:`refsr_blocks.core.hookspecs`). On the first registry lookup every entry point is imported,
once, and its ``register_components(registry)`` hook, if any, is run. What the plugin
registers meanwhile (``register_kind``, ``register_component``, ``registry.register``) is
owned by its distribution and recorded (:func:`refsr_blocks.core.registry.recording`), so a broken
plugin (import error, invalid or raising hook, name clash) is skipped with one
:class:`RefSRPluginWarning` naming it and its error, and all it registered, kinds included, is
removed again. ``sys.exit()`` (or an ``argparse`` error) in a plugin counts as such a failure,
not as the host program's exit. ``Ctrl-C`` while a plugin loads undoes that plugin and is then
re-raised. A plugin that does not finish loading within ``REFSR_BLOCKS_PLUGIN_TIMEOUT`` seconds
(default :data:`DEFAULT_TIMEOUT`; ``0`` for no limit) is given up on the same way: each plugin
loads in a worker thread that the first lookup waits for, and an abandoned one can no longer
register anything. :func:`list_plugins` (``refsr-blocks plugins``) shows each plugin, its
status and what it added. ``REFSR_BLOCKS_DISABLE_PLUGINS=1`` skips the entry points;
:func:`register_plugin` adds a plugin object in-process (in the calling thread, no time limit).

Example:
    >>> import torch
    >>> from refsr_blocks.core.registry import Registry
    >>> class MyPlugin:
    ...     @hookimpl
    ...     def register_components(self, registry):
    ...         registry.register_kind("my_kind")
    ...         registry.register("my_kind", "my_l1", torch.nn.L1Loss)
    >>> info = PluginManager(Registry(), discover=list).register_plugin(MyPlugin(), name="mine")
    >>> info.kinds, info.components, info.status
    (('my_kind',), ('my_kind/my_l1',), 'loaded')
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from .registry import REGISTRY, Change, ChangeLog, Kind, Registry, recording

__all__ = ["DISABLE_ENV_VAR", "PluginInfo", "PluginManager", "RefSRPluginWarning", "format_plugin_table", "hookimpl"]
__all__ += ["TIMEOUT_ENV_VAR", "PluginTimeoutError", "plugin_timeout"]
__all__ += ["list_plugins", "load_plugins", "main", "print_plugins", "register_plugin", "unregister_plugin"]

#: Set to ``1`` (anything but "", 0, false, no, off) to skip entry-point plugins.
DISABLE_ENV_VAR = "REFSR_BLOCKS_DISABLE_PLUGINS"
#: Seconds an entry-point plugin may take to import and register (``0``: no limit).
TIMEOUT_ENV_VAR = "REFSR_BLOCKS_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


class PluginTimeoutError(PluginError):
    """A plugin did not finish loading within the time limit (it was given up on)."""


def plugin_timeout() -> float | None:
    """The time limit for loading one plugin, from ``REFSR_BLOCKS_PLUGIN_TIMEOUT`` (``None``: none)."""
    text = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        warnings.warn(
            f"{TIMEOUT_ENV_VAR}={text!r} is not a number of seconds; using {DEFAULT_TIMEOUT}",
            RefSRPluginWarning,
            stacklevel=3,
        )
        return DEFAULT_TIMEOUT
    return value if value > 0 else None


class RefSRPluginWarning(UserWarning):
    """A plugin was skipped because it is broken; the message names it and the error."""


@dataclass
class PluginInfo:
    """One plugin, as :func:`list_plugins` reports it.

    Attributes:
        name: the entry point's name, or the name given to :func:`register_plugin`.
        distribution: the distribution providing it, with its ``version``, and the
            ``entry_point``'s name and ``value`` (``None`` for in-process plugins).
        kinds: the kinds it added; ``components``: the components, as ``"kind/name"``.
        status: ``"loaded"``, ``"disabled"`` or ``"failed: <Error>: <message>"``.
        error: the exception that made it fail.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    value: str | None = None
    kinds: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    status: str = "loaded"
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (without ``error``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items() if k != "error"}


@dataclass
class _Plugin:
    info: PluginInfo
    log: ChangeLog = field(default_factory=ChangeLog)

    def report(self) -> PluginInfo:
        added = [new for _, new, _ in self.log]
        kinds = tuple(dict.fromkeys(r.name for r in added if isinstance(r, Kind)))
        components = tuple(dict.fromkeys(f"{r.kind}/{r.name}" for r in added if not isinstance(r, Kind)))
        return replace(self.info, kinds=kinds, components=components)


def _undo(log: list[Change]) -> None:
    """Reverse the logged registrations, newest first, except those someone has changed since."""
    for registry, new, old in reversed(log):
        if isinstance(new, Kind):
            if new.name in registry.kinds and registry.get_kind(new.name) == new:
                registry.unregister_kind(new.name)  # with its components
        elif (new.kind, new.name) in registry and registry.get(new.kind, new.name) == new:
            if old is None:
                registry.unregister(new.kind, new.name)
            else:
                registry.register(old.kind, old.name, old.factory, override=True, owner=old.owner, quiet=True)
    log.clear()


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads the plugins of one registry, holding the registry's lock (lookups wait for it).

    ``discover`` returns the entry points to load (default: those of the group ``refsr_blocks``).
    """

    def __init__(self, registry: Registry = REGISTRY, *, discover: Callable[[], Iterable[Any]] | None = None) -> None:
        self.registry = registry
        self._discover = discover or (lambda: metadata.entry_points(group=ENTRY_POINT_GROUP))
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, _Plugin] = {}
        self.loaded = False
        registry.unknown_hint = self.unknown_hint

    def unknown_hint(self) -> str:
        """For "unknown component" errors: the plugins that are installed but not loaded."""
        idle = [p.info for p in self._plugins.values() if p.info.status != "loaded"]
        if not idle:
            return ""
        names = ", ".join(f"{i.distribution or i.name} ({i.status.split(':')[0]})" for i in idle)
        disabled = any(i.status == "disabled" for i in idle)
        fix = f"unset {DISABLE_ENV_VAR} to load them" if disabled else "`refsr-blocks plugins` says why"
        return f" Installed plugins that are not loaded, which may provide it: {names}; {fix}."

    def load(self) -> None:
        """Load the entry-point plugins, once; a broken one warns and is undone, never raises."""
        with self.registry._loading:
            if self.loaded:
                return
            self.loaded = True
            try:
                entry_points = list(self._discover())
            except Exception as exc:  # corrupt metadata must not take the library down
                warnings.warn(
                    f"refsr_blocks could not list its plugins: {_text(exc)}", RefSRPluginWarning, stacklevel=2
                )
                entry_points = []
            for ep in entry_points:
                dist = ep.dist
                name = f"{dist.name if dist else ep.value}:{ep.name}" if ep.name in self._plugins else ep.name
                info = PluginInfo(name, dist and dist.name, dist and dist.version, ep.name, ep.value)
                plugin = self._plugins[name] = _Plugin(info)
                if os.environ.get(DISABLE_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off"):
                    info.status = "disabled"
                    continue
                try:
                    self._run_limited(plugin, ep.load)
                except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the host
                    info.status, info.error = f"failed: {_text(exc)}", exc
                    warnings.warn(
                        f"refsr_blocks plugin {info.distribution or name!r} {info.version} (entry point "
                        f"{ep.name!r} = {ep.value!r}) was skipped, and all it registered removed: {_text(exc)}",
                        RefSRPluginWarning,
                        stacklevel=2,
                    )
                except KeyboardInterrupt:
                    info.status = "failed: interrupted (Ctrl-C) while loading"
                    raise

    def _run_limited(self, plugin: _Plugin, load: Callable[[], Any]) -> None:
        """:meth:`_run` in a worker thread, giving up after :func:`plugin_timeout` seconds.

        Raises:
            PluginTimeoutError: the plugin did not finish in time; what it registered so far is
                undone and its log closed, so it cannot register anything later.
            BaseException: whatever the plugin raised (already undone by :meth:`_run`).
        """
        limit = plugin_timeout()
        if limit is None:
            self._run(plugin, load)
            return
        outcome: list[BaseException] = []
        done = threading.Event()

        def work() -> None:
            ident = threading.get_ident()
            self.registry.loader_threads.add(ident)  # its lookups must not wait for our lock
            try:
                self._run(plugin, load)
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)
            finally:
                self.registry.loader_threads.discard(ident)
                done.set()

        worker = threading.Thread(target=work, name=f"refsr_blocks plugin {plugin.info.name}", daemon=True)
        worker.start()
        try:
            finished = done.wait(limit)
        except BaseException:  # Ctrl-C while waiting: give the plugin up, then let it through
            self._abandon(plugin)
            raise
        if not finished:
            self._abandon(plugin)
            raise PluginTimeoutError(
                f"it did not finish loading within {limit:g} s (a hang at import or in its hook?); it keeps "
                f"running in the background without effect. Raise {TIMEOUT_ENV_VAR} if it is just slow, or set "
                f"{DISABLE_ENV_VAR}=1 to skip plugins"
            )
        if outcome:
            raise outcome[0]

    def _abandon(self, plugin: _Plugin) -> None:
        """Close ``plugin``'s log (no more registrations) and undo what it registered."""
        plugin.log.closed = True
        _undo(list(plugin.log))
        if self._pm.has_plugin(plugin.info.name):
            self._pm.unregister(name=plugin.info.name)

    def _run(self, plugin: _Plugin, load: Callable[[], Any]) -> None:
        """Import (``load``), validate and run one plugin, recording; on failure undo and raise."""
        try:
            with recording(plugin.info.distribution or plugin.info.name) as plugin.log:
                obj = load()
                if plugin.log.closed:  # given up on while importing: leave no trace
                    raise PluginTimeoutError("it finished loading after the time limit")
                self._pm.register(obj, name=plugin.info.name)  # checks the hooks' arguments
                try:
                    self._pm.check_pending()  # misspelled hook names
                except pluggy.PluginValidationError as exc:
                    raise pluggy.PluginValidationError(
                        exc.plugin, f"{exc}; the hooks refsr_blocks defines are: register_components"
                    ) from None
                others = [p for p in self._pm.get_plugins() if p is not obj]
                self._pm.subset_hook_caller("register_components", others)(registry=self.registry)
        except BaseException:  # SystemExit and KeyboardInterrupt too: never leave half a plugin
            _undo(plugin.log)
            if self._pm.has_plugin(plugin.info.name):
                self._pm.unregister(name=plugin.info.name)
            raise

    def register_plugin(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Run a plugin object (module, class or instance with ``@hookimpl`` functions) now.

        Entry-point plugins are loaded first, so it may override their components. It owns what
        it registers under ``name`` (default: its ``__name__`` or class name).

        Raises:
            PluginError: the name is taken, or the plugin failed (all it registered is undone).
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        with self.registry._loading:
            self.load()
            if name in self._plugins:
                raise PluginError(f"a refsr_blocks plugin named {name!r} is already registered; pass another name=")
            entry = _Plugin(PluginInfo(name, value=getattr(plugin, "__qualname__", None) or repr(plugin)))
            try:
                self._run(entry, lambda: plugin)
            except (Exception, SystemExit) as exc:
                raise PluginError(f"plugin {name!r} failed: {_text(exc)}") from exc
            self._plugins[name] = entry
            return entry.report()

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and everything it registered (restoring what it had replaced)."""
        with self.registry._loading:
            plugin = self._plugins.pop(name, None)
            if plugin is None:
                raise PluginError(f"no refsr_blocks plugin named {name!r}; plugins: {', '.join(self._plugins) or '-'}")
            _undo(plugin.log)
            if self._pm.has_plugin(name):
                self._pm.unregister(name=name)

    def unregister_all(self) -> None:
        """Remove every plugin, newest first."""
        for name in reversed(list(self._plugins)):
            self.unregister_plugin(name)

    def list_plugins(self) -> list[PluginInfo]:
        """Every plugin, in the order they were loaded (loading them first if needed)."""
        self.load()
        with self.registry._loading:
            return [plugin.report() for plugin in self._plugins.values()]


#: The manager of the global registry (plugins.py is imported on the first lookup).
_MANAGER = PluginManager(REGISTRY)


def load_plugins() -> None:
    """Load the plugins into the global registry, once (``REGISTRY.before_lookup``)."""
    _MANAGER.load()


def list_plugins() -> list[PluginInfo]:
    """The plugins of the global registry (see :meth:`PluginManager.list_plugins`)."""
    return _MANAGER.list_plugins()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Add a plugin object to the global registry (see :meth:`PluginManager.register_plugin`)."""
    return _MANAGER.register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin and everything it registered from the global registry."""
    _MANAGER.unregister_plugin(name)


def format_plugin_table(records: Sequence[PluginInfo]) -> str:
    """A plain-text table of ``records``, one plugin per row."""
    if not records:
        return f"No refsr_blocks plugins found (entry-point group {ENTRY_POINT_GROUP!r})."
    rows = [("distribution", "version", "entry point", "kinds", "components", "status")]
    for r in records:
        cells = (r.distribution or f"({r.name}, in-process)", r.version, r.entry_point, ", ".join(r.kinds))
        rows.append((*(c or "-" for c in cells), ", ".join(r.components) or "-", r.status))
    widths = [max(map(len, column)) for column in zip(*rows)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def print_plugins(as_json: bool = False) -> None:
    """Print :func:`list_plugins` as a table, or as JSON records."""
    records = list_plugins()
    print(json.dumps([r.as_dict() for r in records], indent=2) if as_json else format_plugin_table(records))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m refsr_blocks.core.plugins [--json]``: print the installed plugins."""
    print_plugins(as_json="--json" in (sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":  # run the canonical module, whose state the registry's loader uses
    from refsr_blocks.core import plugins

    sys.exit(plugins.main())
