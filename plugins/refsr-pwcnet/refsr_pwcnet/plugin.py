"""The refsr-blocks plugin entry point of refsr-pwcnet.

Declared in pyproject.toml as ``[project.entry-points.refsr_blocks] pwcnet =
"refsr_pwcnet.plugin"``; refsr-blocks imports this module on its first registry lookup
and calls :func:`register_components`.
"""

from __future__ import annotations

from refsr_blocks.core.hookspecs import hookimpl
from refsr_blocks.core.registry import Registry

from .model import PWCNet


@hookimpl
def register_components(registry: Registry) -> None:
    """Register :class:`~refsr_pwcnet.model.PWCNet` as the ``flow`` component ``pwcnet``."""
    registry.register("flow", "pwcnet", PWCNet)
