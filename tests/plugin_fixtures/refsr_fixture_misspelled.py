"""A plugin whose hook name is misspelled: pluggy alone would ignore it silently."""

from torch import nn

from refsr_blocks.core.hookspecs import hookimpl


@hookimpl
def register_component(registry):  # should be register_components
    registry.register("loss", "fixture_never_registered", nn.L1Loss)
