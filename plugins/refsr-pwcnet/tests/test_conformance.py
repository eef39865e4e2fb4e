"""The refsr-blocks conformance kit, applied to ``flow/pwcnet``."""

from __future__ import annotations

from typing import Any, ClassVar

from refsr_blocks.testing import FlowContract, check_component


class TestPWCNetContract(FlowContract):
    """Every flow-contract rule, one pytest test each: default depth and search radius,
    narrower layers so the checks stay fast on a CPU."""

    name = "pwcnet"
    params: ClassVar[dict[str, Any]] = {"width": 8, "base_channels": 8}


def test_contract_with_a_small_configuration() -> None:
    check_component(
        "flow",
        "pwcnet",
        params={"pyramid_levels": 4, "max_displacement": 2, "width": 8, "base_channels": 8},
    )
