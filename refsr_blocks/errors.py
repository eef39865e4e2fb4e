"""Exceptions raised by refsr-blocks.

Every user mistake (an unknown component, a malformed spec, a corrupt checkpoint, a bad
input tensor) surfaces as one of these, with a message that says what was wrong and what
is accepted. They subclass the built-in exception a user would otherwise catch
(``KeyError``, ``ValueError``) so that generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "PluginError",
    "RefSRError",
    "RegistryError",
    "SpecError",
    "UnknownComponentError",
]


class RefSRError(Exception):
    """Base class of every error raised on purpose by refsr-blocks."""


class RegistryError(RefSRError, ValueError):
    """A component could not be registered (duplicate name, unknown kind, bad factory)."""


class UnknownComponentError(RefSRError, KeyError):
    """A component name is not registered under the requested kind."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class SpecError(RefSRError, ValueError):
    """A model spec is malformed.

    Attributes:
        path: dotted location of the mistake inside the spec, e.g. ``components.flow.params``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class CheckpointError(RefSRError, ValueError):
    """A checkpoint file is missing, truncated, foreign or does not match its spec."""


class PluginError(RefSRError, RuntimeError):
    """A plugin broke a rule that cannot be skipped (for example a name clash)."""
