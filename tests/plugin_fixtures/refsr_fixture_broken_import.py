"""A plugin whose import fails: it needs a package that is not installed."""

import refsr_fixture_no_such_dependency  # noqa: F401

from refsr_blocks.core.hookspecs import hookimpl


@hookimpl
def register_components(registry):
    raise AssertionError("never reached")
