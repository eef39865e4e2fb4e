"""Every registered component of every kind goes through its kind's contract.

Driven by the registry: registering a component adds its tests, with no new test code.
Warpers go through the same contract in ``test_warper_contract.py``, with the tolerances each
declares for the warper properties.
"""

from __future__ import annotations

import pytest
from small import SMALL_PARAMS

from refsr_blocks.core.registry import REGISTRY
from refsr_blocks.testing import contract_for

CASES = [
    pytest.param(c.kind, c.name, rule, id=f"{c.kind}/{c.name}::{rule}")
    for c in REGISTRY
    if contract_for(c.kind) is not None and c.kind != "warper"
    for rule in contract_for(c.kind)().rules()
]


@pytest.mark.parametrize(("kind", "name", "rule"), CASES)
def test_component_contract(kind: str, name: str, rule: str) -> None:
    contract = type("Contract", (contract_for(kind),), {"name": name, "params": SMALL_PARAMS.get((kind, name), {})})
    getattr(contract(), rule)()


def test_every_kind_has_components() -> None:
    for kind in REGISTRY.kinds:
        assert REGISTRY.list(kind), f"no {kind} component registered"


def test_a_parameter_free_component_fails_the_gradient_rule_by_name(fresh_registry) -> None:
    import torch

    from refsr_blocks.ops.flow import level_size
    from refsr_blocks.testing import check_component

    class ZeroFlow(torch.nn.Module):
        """A no-motion baseline: no parameters, and an output that ignores its inputs."""

        def __init__(self, scales: int = 3) -> None:
            super().__init__()
            self.scales = scales

        def forward(self, a, b):
            h, w = a.shape[-2:]
            return [a.new_zeros(a.shape[0], 2, *level_size(h, w, k)) for k in range(self.scales)]

    fresh_registry.register("flow", "zero_flow_baseline", ZeroFlow)
    with pytest.raises(
        AssertionError, match=r"\[test_gradient_flow\] flow 'zero_flow_baseline': its output carries no gradient"
    ):
        check_component("flow", "zero_flow_baseline")


def test_a_crash_inside_a_rule_names_the_rule(fresh_registry) -> None:
    import torch

    from refsr_blocks.testing import check_component

    class Crashing(torch.nn.Module):
        def __init__(self, scales: int = 3) -> None:
            super().__init__()

        def forward(self, a, b):
            raise RuntimeError("internal bug")

    fresh_registry.register("flow", "crashing_flow", Crashing)
    with pytest.raises(AssertionError, match=r"^\[test_\w+\] flow 'crashing_flow' raised RuntimeError: internal bug"):
        check_component("flow", "crashing_flow")
