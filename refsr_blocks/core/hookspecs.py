"""Hook specification of refsr-blocks plugins.

A plugin package names a module in the entry-point group ``refsr_blocks``
(``[project.entry-points.refsr_blocks]`` ``my_flow = "my_package.plugin"`` in its
pyproject.toml). On the first registry lookup refsr-blocks imports that module, which may
simply register at import (``@register_component("flow", "my_flow")``), and calls its
``register_components`` hook if it has one (``@hookimpl def register_components(registry):
registry.register("flow", "my_flow", MyFlow)``). Everything registered meanwhile belongs to the
plugin's distribution, and is removed again if the plugin fails (see :mod:`refsr_blocks.core.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec", "register_components"]

#: The pluggy project name (hook markers of other projects are ignored) and entry-point group.
PROJECT_NAME = ENTRY_POINT_GROUP = "refsr_blocks"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin function as an implementation of a hook defined here.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_components(registry: Registry) -> None:
    """Add the plugin's kinds and components to ``registry`` (optional: registering at import works too).

    ``registry.register_kind(name, contract=...)`` adds a kind, ``registry.register(kind, name,
    factory)`` a component (``override=True`` replaces one on purpose); a name another owner
    has raises :class:`~refsr_blocks.core.errors.RegistryError` naming both. If the hook
    raises, all the plugin registered is removed and it is skipped with a warning.
    """
