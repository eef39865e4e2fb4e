"""A working plugin: registers the flow estimator ``fixture_flow``.

It appends "import" and "hook" lines to ``events.log`` next to itself, so tests can count
how often it is imported and how often its hook runs.
"""

from pathlib import Path

import torch
from torch import nn

from refsr_blocks.core.hookspecs import hookimpl

_LOG = Path(__file__).with_name("events.log")


def _record(event):
    with _LOG.open("a") as log:
        log.write(f"{__name__} {event}\n")


_record("import")


class FixtureFlow(nn.Module):
    """Zero flows at every level: B×2×ceil(H/2^k)×ceil(W/2^k)."""

    def __init__(self, scales=4, in_channels=3):
        super().__init__()
        self.scales = scales
        self.bias = nn.Parameter(torch.zeros(2, 1, 1))

    def forward(self, target, ref):
        h, w = target.shape[-2:]
        return [self.bias.expand(target.shape[0], 2, -(-h // 2**k), -(-w // 2**k)) for k in range(self.scales)]


@hookimpl
def register_components(registry):
    _record("hook")
    registry.register("flow", "fixture_flow", FixtureFlow)
