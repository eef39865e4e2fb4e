"""Conformance kit: check that a component honours its kind's contract.

A plugin author tests a new component in one line::

    from refsr_blocks.testing import check_component
    check_component("flow", "my_flow")            # raises AssertionError on a violation

or by subclassing the contract for its kind, which pytest collects as one test per rule::

    from refsr_blocks.testing import FlowContract

    class TestMyFlow(FlowContract):
        name = "my_flow"
        params = {"width": 0.5}

The library tests every registered component with this same kit. A new warper also gets the
hypothesis property suite (zero flow is the identity, integer flows are exact shifts, …) by
subclassing :class:`WarperProperties` (needs ``hypothesis``).
"""

from . import contracts
from .contracts import *  # noqa: F403 - the kit is the contracts' public names

_WARP_PROPERTY_API = ("WarpCase", "WarperProperties", "warp_cases")
__all__ = [*contracts.__all__, *_WARP_PROPERTY_API]


def __getattr__(name: str) -> object:
    # The hypothesis-based warp properties import pytest and hypothesis (test-time
    # dependencies), so they load only when asked for.
    if name in _WARP_PROPERTY_API:
        from . import warp_properties

        return getattr(warp_properties, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
