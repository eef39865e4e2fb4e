"""A plugin that replaces the library's ``base_flow`` on purpose."""

from torch import nn

from refsr_blocks.core.hookspecs import hookimpl


class OverridingFlow(nn.Module):
    pass


@hookimpl
def register_components(registry):
    registry.register("flow", "base_flow", OverridingFlow, override=True)
