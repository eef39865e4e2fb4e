"""Plugins: installed packages that add component kinds, components and architectures (docs/plugins.md).

The first registry lookup imports each entry point of the group ``refsr_blocks`` in a worker thread and
runs its hook; what it registers is recorded, so a broken plugin (an error, ``sys.exit()``, a hang past
``REFSR_BLOCKS_PLUGIN_TIMEOUT`` seconds) costs one :class:`RefSRPluginWarning` and all it registered.

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
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from .registry import REGISTRY, ChangeLog, Kind, Registry, recording, undo

__all__ = ["DISABLE_ENV_VAR", "TIMEOUT_ENV_VAR", "PluginInfo", "PluginManager", "PluginTimeoutError"]
__all__ += ["RefSRPluginWarning", "hookimpl", "list_plugins", "load_plugins", "register_plugin", "unregister_plugin"]

DISABLE_ENV_VAR = "REFSR_BLOCKS_DISABLE_PLUGINS"  # anything but "", 0, false, no, off
TIMEOUT_ENV_VAR = "REFSR_BLOCKS_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


class PluginTimeoutError(PluginError):
    """A plugin did not finish loading within the time limit (it was given up on)."""


class RefSRPluginWarning(UserWarning):
    """A plugin was skipped because it is broken; the message names it and the error."""


def _timeout() -> float | None:
    """Seconds one plugin may take to load (``None``: no limit)."""
    text = os.environ.get(TIMEOUT_ENV_VAR, "").strip() or str(DEFAULT_TIMEOUT)
    try:
        return float(text) if float(text) > 0 else None
    except ValueError:
        warnings.warn(
            f"{TIMEOUT_ENV_VAR}={text!r} is not a number of seconds; using {DEFAULT_TIMEOUT}",
            RefSRPluginWarning,
            stacklevel=4,
        )
        return DEFAULT_TIMEOUT


@dataclass
class PluginInfo:
    """One plugin: where it comes from (``None`` in-process), the ``kinds`` and ``components``
    (``"kind/name"``) it added, its ``status`` (``"loaded"``, ``"disabled"`` or ``"failed: <error>"``)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    value: str | None = None
    kinds: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    status: str = "loaded"
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:  # for JSON
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


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads the plugins of one registry (``discover``: the entry points), holding its lock."""

    def __init__(self, registry: Registry = REGISTRY, *, discover: Callable[[], Iterable[Any]] | None = None) -> None:
        self.registry = registry
        self._discover = discover or (lambda: metadata.entry_points(group=ENTRY_POINT_GROUP))
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, _Plugin] = {}
        self.loaded = False
        registry.unknown_hint = self.unknown_hint

    def unknown_hint(self) -> str:  # for "unknown component" errors
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
            disabled = os.environ.get(DISABLE_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")
            for ep in entry_points:
                dist = ep.dist
                name = f"{dist.name if dist else ep.value}:{ep.name}" if ep.name in self._plugins else ep.name
                info = PluginInfo(name, dist and dist.name, dist and dist.version, ep.name, ep.value)
                plugin = self._plugins[name] = _Plugin(info)
                if disabled:
                    info.status = "disabled"
                    continue
                try:
                    self._run(plugin, ep.load, _timeout())
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

    def _run(self, plugin: _Plugin, load: Callable[[], Any], limit: float | None) -> None:
        """Import (``load``), validate and run one plugin in a worker thread, waiting up to ``limit`` s;
        on any failure or timeout its log is closed, what it registered undone, and the error raised."""
        outcome: list[BaseException] = []
        done = threading.Event()

        def work() -> None:
            self.registry.loader_threads.add(threading.get_ident())  # its lookups must not wait for our lock
            try:
                with recording(plugin.info.distribution or plugin.info.name, plugin.log):
                    obj = load()
                    if plugin.log.closed:
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
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too: handed to the waiting thread
                outcome.append(exc)
            finally:
                self.registry.loader_threads.discard(threading.get_ident())
                done.set()

        threading.Thread(target=work, name=f"refsr_blocks plugin {plugin.info.name}", daemon=True).start()
        try:
            if not done.wait(limit):
                outcome.append(
                    PluginTimeoutError(
                        f"it did not finish loading within {limit:g} s (a hang at import or in its hook?); it keeps "
                        f"running in the background without effect. Raise {TIMEOUT_ENV_VAR} if it is just slow, or "
                        f"set {DISABLE_ENV_VAR}=1 to skip plugins"
                    )
                )
        finally:  # Ctrl-C while waiting too: never leave half a plugin
            if outcome or not done.is_set():
                self._remove(plugin)
        if outcome:
            raise outcome[0]

    def _remove(self, plugin: _Plugin) -> None:
        plugin.log.closed = True
        undo(plugin.log)
        if self._pm.has_plugin(plugin.info.name):
            self._pm.unregister(name=plugin.info.name)

    def register_plugin(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Run a plugin object (with ``@hookimpl`` functions) now, after the entry points, without a time
        limit; it owns what it registers under ``name``. A failure undoes it and raises :class:`PluginError`."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        with self.registry._loading:
            self.load()
            if name in self._plugins:
                raise PluginError(f"a refsr_blocks plugin named {name!r} is already registered; pass another name=")
            entry = _Plugin(PluginInfo(name, value=getattr(plugin, "__qualname__", None) or repr(plugin)))
            try:
                self._run(entry, lambda: plugin, None)
            except (Exception, SystemExit) as exc:
                raise PluginError(f"plugin {name!r} failed: {_text(exc)}") from exc
            self._plugins[name] = entry
            return entry.report()

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and everything it registered (restoring what it had replaced)."""
        with self.registry._loading:
            if name not in self._plugins:
                raise PluginError(f"no refsr_blocks plugin named {name!r}; plugins: {', '.join(self._plugins) or '-'}")
            self._remove(self._plugins.pop(name))

    def unregister_all(self) -> None:
        for name in reversed(list(self._plugins)):
            self.unregister_plugin(name)

    def list_plugins(self) -> list[PluginInfo]:
        """Every plugin, in loading order."""
        self.load()
        with self.registry._loading:
            return [plugin.report() for plugin in self._plugins.values()]


_MANAGER = PluginManager(REGISTRY)


def load_plugins() -> None:  # REGISTRY.before_lookup
    _MANAGER.load()


def list_plugins() -> list[PluginInfo]:
    """The global registry's plugins (see :meth:`PluginManager.list_plugins`)."""
    return _MANAGER.list_plugins()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Add a plugin object to the global registry (see :meth:`PluginManager.register_plugin`)."""
    return _MANAGER.register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin and all it registered from the global registry."""
    _MANAGER.unregister_plugin(name)
