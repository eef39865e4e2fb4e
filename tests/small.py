"""Small constructor parameters so every registered component is tested quickly."""

from __future__ import annotations

from typing import Any

#: Extra parameters per registered component (kind, name) for fast contract tests.
SMALL_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("upsampler", "mdsr"): {"num_blocks": 2, "channels": 8},
    ("flow", "flownets"): {"width": 0.125},
    ("flow", "flownets_plus"): {"width": 0.125},
    ("flow", "pwcnet"): {"width": 8, "base_channels": 8},  # the refsr-pwcnet plugin, when installed
    ("encoder", "crossnet"): {},
    ("decoder", "unet_fusion"): {"output_activation": "none"},
    ("model", "crossnet"): {
        "params": {"channels": 8, "scales": 3, "residual": True},
        "components": {
            "upsampler": {"name": "mdsr", "params": {"num_blocks": 1, "channels": 8}},
            "flow": {"name": "flownets_plus", "params": {"width": 0.125}},
            "decoder": {"name": "unet_fusion", "params": {"output_activation": "none"}},
        },
    },
}

#: A small CrossNet spec for tests that need a whole model.
TINY_CROSSNET: dict[str, Any] = {
    "model": "crossnet",
    "params": {**SMALL_PARAMS[("model", "crossnet")]["params"], "upscale": 2},
    "components": SMALL_PARAMS[("model", "crossnet")]["components"],
}
