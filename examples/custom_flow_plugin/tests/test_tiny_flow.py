from refsr_blocks.testing import check_component


def test_tiny_flow_honours_the_flow_contract():
    check_component("flow", "tiny_flow")
