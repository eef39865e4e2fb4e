"""Hook specification of refsr-blocks plugins.

A plugin package names a module in the entry-point group ``refsr_blocks``::

    # pyproject.toml of the plugin package
    [project.entry-points.refsr_blocks]
    my_flow = "my_package.plugin"

On the first registry lookup, refsr-blocks imports that module and calls its
``register_components`` hook if it has one. Everything registered meanwhile, at import
(``@register_component``, ``register_kind``) or in the hook, belongs to the plugin's
distribution: it is listed under the plugin and removed again if the plugin fails. So
``my_package/plugin.py`` may be just::

    from refsr_blocks import register_component

    @register_component("flow", "my_flow")
    class MyFlowEstimator(nn.Module): ...

or, registering in the hook (the same calls, made when refsr-blocks asks)::

    from refsr_blocks import hookimpl

    @hookimpl
    def register_components(registry):
        registry.register("flow", "my_flow", MyFlowEstimator)

See :mod:`refsr_blocks.core.plugins` for how plugins are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec", "register_components"]

#: The pluggy project name: hook markers of other projects are ignored.
PROJECT_NAME = "refsr_blocks"
#: The entry-point group scanned for plugins (``[project.entry-points.refsr_blocks]``).
ENTRY_POINT_GROUP = "refsr_blocks"

#: Marks a function in this module as a hook specification.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin function as an implementation of a hook defined here.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_components(registry: Registry) -> None:
    """Add the plugin's kinds and components (optional: registering at import works too).

    Called once, right after the plugin's module is imported (on the first registry lookup),
    or by :func:`refsr_blocks.core.plugins.register_plugin`.

    Args:
        registry: the registry to add to: ``registry.register_kind(name, contract=...)``
            for a new kind, ``registry.register(kind, name, factory)`` for a component
            (``override=True`` to replace an existing one on purpose). Both record the
            plugin's distribution as owner; a name another owner already has raises
            :class:`~refsr_blocks.core.errors.RegistryError` naming both.

    If it raises, everything the plugin registered is removed again and the plugin is skipped
    with a :class:`~refsr_blocks.core.plugins.RefSRPluginWarning`.
    """
