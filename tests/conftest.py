"""Shared fixtures and the hypothesis profiles."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def fresh_registry(monkeypatch):
    """A copy of the global registry that tests may change freely."""
    import copy

    from refsr_blocks.core import registry as registry_module

    registry = registry_module.REGISTRY
    registry.list()  # load plugins first, so they are part of the copy and survive the test
    saved = copy.copy(registry._components), dict(registry._kinds)
    registry._components = {k: dict(v) for k, v in saved[0].items()}
    yield registry
    registry._components, registry._kinds = saved
