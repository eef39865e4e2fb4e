"""Hook specification of refsr-blocks plugins: modules named by an entry point of the group
``refsr_blocks`` (``my_flow = "my_package.plugin"``), see docs/plugins.md."""

from __future__ import annotations

import pluggy

from .registry import Registry

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec", "register_components"]

PROJECT_NAME = ENTRY_POINT_GROUP = "refsr_blocks"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin function as an implementation of a hook defined here.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_components(registry: Registry) -> None:
    """Add the plugin's kinds and components with ``registry.register_kind(name, contract=...)`` and
    ``registry.register(kind, name, factory)`` (registering at import works too)."""
