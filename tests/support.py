"""Checks and context managers that test modules of several packages share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from refsr_blocks.ops.inputs import set_debug_checks


@contextmanager
def debug_checks_on() -> Iterator[None]:
    """Models check their inputs' values on every forward inside the block (off again after)."""
    set_debug_checks(True)
    try:
        yield
    finally:
        set_debug_checks(False)


def train_steps(
    model: nn.Module, lr: Tensor, refs: object, hr: Tensor, steps: int = 4
) -> tuple[list[float], list[bool]]:
    """``steps`` Adam steps (learning rate 1e-3) of ``model(lr, refs)`` on the L1 loss to ``hr`` (B×3×H×W).

    Returns the losses and, per trainable tensor, whether the steps changed it.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.Adam(trainable, lr=1e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (model(lr, refs) - hr).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [not torch.equal(a, p) for a, p in zip(before, trainable)]


def assert_refuses_bad_files(load: Callable[[Path], object], error: type[Exception], folder: Path) -> None:
    """``load`` refuses a missing file and a file that is not YAML with ``error``, saying which."""
    with pytest.raises(error, match="does not exist"):
        load(folder / "missing.yaml")
    bad = folder / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(error, match="cannot parse"):
        load(bad)
