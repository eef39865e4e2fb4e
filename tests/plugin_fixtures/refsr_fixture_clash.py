"""A plugin that registers one new component, then one whose name the library owns."""

from torch import nn

from refsr_blocks.core.hookspecs import hookimpl


class ClashingFlow(nn.Module):
    pass


@hookimpl
def register_components(registry):
    registry.register("loss", "fixture_clash_ok", nn.L1Loss)
    registry.register("flow", "base_flow", ClashingFlow)
