"""Shared fixtures (a fresh registry, a tiny training configuration) and the hypothesis profiles."""

from __future__ import annotations

import copy
import os
from typing import Any

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


#: A CrossNet small enough to train a step in well under a second on one CPU core.
TINY_MODEL: dict[str, Any] = {
    "preset": "crossnet_lite",
    "overrides": {
        "upscale": 2,
        "scales": 3,
        "channels": 8,
        "upsampler": {"params": {"num_blocks": 1, "channels": 8}},
        "flow.width": 0.125,
    },
}

TINY_CONFIG: dict[str, Any] = {
    "seed": 0,
    "model": TINY_MODEL,
    "data": {
        "train": {
            "kind": "synthetic",
            "images": {"builtin": "procedural", "count": 2, "size": [48, 48]},
            "crop": 16,
            "length": 8,
            "max_disparity": 3,
            "augment": {"dihedral": True},
        },
        "val": {
            "kind": "synthetic",
            "images": {"builtin": "procedural", "count": 1, "size": [48, 48], "seed": 50},
            "crop": 32,
            "crop_mode": "center",
            "length": 2,
            "max_disparity": 3,
        },
    },
    "schedule": {"steps": 4, "batch_size": 2, "lr": 1e-3, "milestones": [2], "gamma": 0.5},
    "runtime": {"log_every": 1, "val_every": 2, "checkpoint_every": 2, "progress": False, "keep_checkpoints": 10},
}


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``changes`` merged in recursively."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    """A fresh copy of :data:`TINY_CONFIG` (a raw dict; tests change it freely)."""
    return copy.deepcopy(TINY_CONFIG)


@pytest.fixture
def make_config():
    """``make_config(changes)``: :data:`TINY_CONFIG` with ``changes`` merged in."""
    return lambda changes=None: deep_update(TINY_CONFIG, changes or {})
