"""Conformance kit: check that a component honours its kind's contract.

A plugin author tests a new component in one line::

    from refsr_blocks.testing import check_component
    check_component("flow", "my_flow")            # raises AssertionError on a violation

or by subclassing the contract for its kind, which pytest collects as one test per rule::

    from refsr_blocks.testing import FlowContract

    class TestMyFlow(FlowContract):
        name = "my_flow"
        params = {"width": 0.5}

The library tests every registered component with this same kit. A pytest subclass of
:class:`WarperContract` also runs the hypothesis properties of a backward warp (zero flow is
the identity, integer flows are exact shifts, …); they need ``hypothesis``, imported only when
a property runs.
"""

from . import contracts
from .contracts import *  # noqa: F403 - the kit is the contracts' public names

__all__ = contracts.__all__
