"""A plugin whose hook asks for an argument the hook spec does not provide."""

from torch import nn

from refsr_blocks.core.hookspecs import hookimpl


@hookimpl
def register_components(registy):  # should be registry
    registy.register("loss", "fixture_never_registered", nn.L1Loss)
