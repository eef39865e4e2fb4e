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
    ("aligner", "flow_warp"): {"flow_params": {"width": 0.125}},
    ("aligner", "deformable"): {"hidden": 8},
    ("aligner", "match_flow"): {"flow_params": {"width": 0.125}},
    ("texture_fusion", "ttsr_csfi"): {"blocks": [1, 1, 1, 1]},
    ("correspondence", "c2_contrastive"): {"channels": 4},
    ("aligner", "correspondence_warp"): {"correspondence_params": {"channels": 4}},
    ("restoration", "c2_dynamic_aggregation"): {"blocks": 1, "offset_groups": 2},
    ("restoration", "datsr_rfa"): {
        "depths": [1],
        "num_heads": [2],
        "groups": 2,
        "window_size": 4,
        "content_blocks": 1,
    },
    ("model", "c2_matching"): {
        "params": {"channels": 8},
        "components": {
            "correspondence": {"name": "c2_contrastive", "params": {"channels": 4}},
            "extractor": {"name": "ttsr_lte", "params": {"channels": 4}},
            "restoration": {"name": "c2_dynamic_aggregation", "params": {"blocks": 1, "offset_groups": 2}},
        },
    },
    ("model", "ttsr"): {
        "params": {"channels": 8, "residual": True},
        "components": {
            "extractor": {"name": "ttsr_lte", "params": {"channels": 4}},
            "fusion": {"name": "ttsr_csfi", "params": {"blocks": [1, 1, 1]}},
        },
    },
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
