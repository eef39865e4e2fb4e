"""Hook specifications for refsr-blocks plugins.

A plugin is any importable object (usually a module) with functions marked by
:data:`hookimpl` whose names are hooks defined here. Third-party packages make their
plugin discoverable by declaring an entry point in the ``refsr_blocks`` group::

    # pyproject.toml of the plugin package
    [project.entry-points.refsr_blocks]
    my_flow = "my_package.plugin"

and ``my_package/plugin.py``::

    from refsr_blocks.hookspecs import hookimpl   # also exported as refsr_blocks.hookimpl

    @hookimpl
    def register_components(registry):
        registry.register("flow", "my_flow", MyFlowEstimator)

Plugins load once, lazily, on the first registry lookup (see :mod:`refsr_blocks.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .registry import Component

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "ComponentRegistrar",
    "hookimpl",
    "hookspec",
    "register_components",
]

#: The pluggy project name: hook markers of other projects are ignored.
PROJECT_NAME = "refsr_blocks"
#: The entry-point group scanned for plugins (``[project.entry-points.refsr_blocks]``).
ENTRY_POINT_GROUP = "refsr_blocks"

#: Marks a function in this module as a hook specification.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin function as an implementation of a hook defined here.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class ComponentRegistrar(Protocol):
    """What a plugin's ``register_components`` hook receives as ``registry``.

    It is a thin per-plugin view of the real :class:`~refsr_blocks.registry.Registry`: it
    records which components the plugin added (shown by
    :func:`refsr_blocks.plugins.list_plugins`), and registers them with the plugin's
    distribution name as owner, so a name clash names both owners.
    """

    kinds: tuple[str, ...]

    def register(self, kind: str, name: str, factory: Callable[..., Any], *, override: bool = False) -> Component:
        """Add ``factory`` as component ``name`` of ``kind`` (see the hook's docstring)."""
        ...


@hookspec
def register_components(registry: ComponentRegistrar) -> None:
    """Add the plugin's components to the library.

    Called once per plugin, when plugins are loaded (lazily, on the first registry lookup),
    or immediately by :func:`refsr_blocks.plugins.register_plugin` when plugins are
    already loaded.

    Args:
        registry: call ``registry.register(kind, name, factory, *, override=False)`` once
            per component. ``kind`` is one of ``registry.kinds`` (``"upsampler"``,
            ``"flow"``, ``"warper"``, ``"encoder"``, ``"decoder"``, ``"loss"``,
            ``"model"``); ``factory`` is the class (or function) that builds the component
            from keyword parameters and must honour that kind's call contract (check it
            with :mod:`refsr_blocks.testing`). Registering a name that already exists
            raises :class:`~refsr_blocks.errors.PluginError` naming both owners, unless
            ``override=True`` is passed to replace the existing component on purpose.

    Register through the ``registry`` received here, not through
    :func:`refsr_blocks.register_component`: only the former records the plugin as owner,
    lists the component under the plugin and can roll it back.

    If this hook raises (a clash included), every component it had already registered is
    rolled back, the plugin is skipped with a
    :class:`~refsr_blocks.plugins.RefSRPluginWarning`, and the library and the other
    plugins keep working.
    """
