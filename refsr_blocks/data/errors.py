"""Exceptions raised by :mod:`refsr_blocks.data`.

Both subclass :class:`refsr_blocks.core.errors.RefSRError` and the built-in exception a caller
would otherwise catch, so ``except ValueError`` / ``except FileNotFoundError`` keep working.
"""

from __future__ import annotations

from refsr_blocks.core.errors import RefSRError

__all__ = ["DataError", "DataNotFoundError"]


class DataError(RefSRError, ValueError):
    """An argument, a tensor or a file on disk does not meet what the data layer accepts."""


class DataNotFoundError(RefSRError, FileNotFoundError):
    """A folder or file the data layer was pointed at does not exist or holds no images."""
