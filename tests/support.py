"""Checks and context managers that test modules of several packages share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from refsr_blocks.ops.inputs import set_debug_checks


@contextmanager
def debug_checks_on() -> Iterator[None]:
    """Models check their inputs' values on every forward inside the block (off again after)."""
    set_debug_checks(True)
    try:
        yield
    finally:
        set_debug_checks(False)


def assert_refuses_bad_files(load: Callable[[Path], object], error: type[Exception], folder: Path) -> None:
    """``load`` refuses a missing file and a file that is not YAML with ``error``, saying which."""
    with pytest.raises(error, match="does not exist"):
        load(folder / "missing.yaml")
    bad = folder / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(error, match="cannot parse"):
        load(bad)
