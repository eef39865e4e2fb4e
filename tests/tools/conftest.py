"""Fixtures of the tools tests: a tiny checkpoint, no change to this process's allocator, deterministic mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from small import TINY_CROSSNET

from refsr_blocks import build_model, save_model


@pytest.fixture(autouse=True)
def retain_calls(monkeypatch) -> list[bool]:
    """`sr` keeps freed memory for its whole process: record the calls instead of changing this one's allocator."""
    calls: list[bool] = []
    monkeypatch.setattr("refsr_blocks.inference.runtime.retain_freed_memory", lambda: calls.append(True) or True)
    return calls


@pytest.fixture
def deterministic_algorithms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True)`` for one test, then the previous setting; on CUDA,
    cuBLAS needs a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``) for deterministic matmuls."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A ×2 tiny CrossNet checkpoint."""
    torch.manual_seed(0)
    return save_model(build_model(TINY_CROSSNET), tmp_path_factory.mktemp("ckpt") / "tiny_x2.safetensors")
