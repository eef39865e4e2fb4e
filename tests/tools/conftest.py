"""Fixtures of the command-line tests: a tiny checkpoint, and no change to this process's allocator."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A ×2 tiny CrossNet checkpoint."""
    torch.manual_seed(0)
    return save_model(build_model(TINY_CROSSNET), tmp_path_factory.mktemp("ckpt") / "tiny_x2.safetensors")
