"""A plugin whose hook registers two components, then raises."""

from torch import nn

from refsr_blocks.core.hookspecs import hookimpl


@hookimpl
def register_components(registry):
    registry.register("loss", "fixture_partial_loss", nn.L1Loss)
    registry.register("loss", "base_loss", nn.SmoothL1Loss, override=True)
    raise RuntimeError("fixture hook failed on purpose")
