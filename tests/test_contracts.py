"""Every registered component of every kind goes through its kind's contract.

Driven by the registry: registering a component adds its tests, with no new test code.
"""

from __future__ import annotations

import pytest
from small import SMALL_PARAMS

from refsr_blocks.core.registry import REGISTRY
from refsr_blocks.testing import contract_for

CASES = [
    pytest.param(c.kind, c.name, rule, id=f"{c.kind}/{c.name}::{rule}")
    for c in REGISTRY
    if contract_for(c.kind) is not None
    for rule in contract_for(c.kind)().rules()
]


@pytest.mark.parametrize(("kind", "name", "rule"), CASES)
def test_component_contract(kind: str, name: str, rule: str) -> None:
    contract = type("Contract", (contract_for(kind),), {"name": name, "params": SMALL_PARAMS.get((kind, name), {})})
    getattr(contract(), rule)()


def test_every_kind_has_components() -> None:
    for kind in REGISTRY.kinds:
        assert REGISTRY.list(kind), f"no {kind} component registered"
