"""Fixtures of the inference tests."""

from __future__ import annotations

import pytest

from refsr_blocks.inference import runtime


@pytest.fixture
def mallopt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """glibc's ``mallopt`` calls, recorded instead of made (it changes the whole process's allocator)."""
    calls: list[tuple[int, ...]] = []

    class RecordingLibc:
        def mallopt(self, *args: int) -> int:
            calls.append(args)
            return 1

    monkeypatch.setattr(runtime, "_glibc", lambda: RecordingLibc())
    return calls
