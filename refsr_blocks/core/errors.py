"""The library's exceptions: each says what was wrong and what is accepted, and subclasses the
built-in a user would otherwise catch (``KeyError``, ``ValueError``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CheckpointError", "InputError", "PluginError", "RefSRError", "RefSROwnerWarning", "RegistryError"]
__all__ += ["SpecError", "UnknownComponentError", "did_you_mean"]


def did_you_mean(name: object, choices: Iterable[str], n: int = 3) -> str:
    """A " Did you mean 'x' or 'y'?" hint for ``name`` among ``choices`` ("" when none is close).

    Example:
        >>> did_you_mean("flwo", ["flow", "warper"])
        " Did you mean 'flow'?"
    """
    close = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.5)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


class RefSRError(Exception):
    """Base class of every error raised on purpose by refsr-blocks."""


class RegistryError(RefSRError, ValueError):
    """A component could not be registered (duplicate name, unknown kind, bad factory)."""


class UnknownComponentError(RefSRError, KeyError):
    """A component name is not registered under the requested kind."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class SpecError(RefSRError, ValueError):
    """A malformed spec or configuration; ``path`` is where in the document (``components.flow.params``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


class CheckpointError(RefSRError, ValueError):
    """A checkpoint file is missing, truncated, foreign or does not match its spec."""


class PluginError(RefSRError, RuntimeError):
    """A plugin broke a rule that cannot be skipped (for example a name clash)."""


class InputError(RefSRError, ValueError):
    """A tensor or file handed to a model has the wrong shape, dtype, size or values."""


class RefSROwnerWarning(UserWarning):
    """A component replaced another owner's, or a spec names another owner than the registered one."""
