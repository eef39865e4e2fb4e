"""Conformance kit: check that a component honours its kind's contract.

A plugin author tests a new component in one line::

    from refsr_blocks.testing import check_component
    check_component("flow", "my_flow")            # raises AssertionError on a violation

or by subclassing the contract for its kind, which pytest collects as one test per rule::

    from refsr_blocks.testing import FlowContract

    class TestMyFlow(FlowContract):
        name = "my_flow"
        params = {"width": 0.5}

The library tests every registered component with this same kit.
"""

from .contracts import (
    CONTRACTS,
    ComponentContract,
    DecoderContract,
    EncoderContract,
    FlowContract,
    LossContract,
    ModelContract,
    UpsamplerContract,
    WarperContract,
    check_component,
)

__all__ = [
    "CONTRACTS",
    "ComponentContract",
    "DecoderContract",
    "EncoderContract",
    "FlowContract",
    "LossContract",
    "ModelContract",
    "UpsamplerContract",
    "WarperContract",
    "check_component",
]
