"""Make sure ``flow/pwcnet`` is registered in the global registry for the contract tests.

Installed (``pip install -e``), the plugin is found through its entry point; run from a
source tree (``PYTHONPATH=plugins/refsr-pwcnet``) it has no entry point, so it is
registered in-process exactly as the entry point would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from refsr_blocks.core.plugins import load_plugins, register_plugin, unregister_plugin
from refsr_blocks.core.registry import REGISTRY


@pytest.fixture(scope="session", autouse=True)
def pwcnet_registered() -> Iterator[None]:
    load_plugins()
    if ("flow", "pwcnet") in REGISTRY:
        yield
        return
    import refsr_pwcnet.plugin

    register_plugin(refsr_pwcnet.plugin, name="refsr-pwcnet")
    yield
    unregister_plugin("refsr-pwcnet")
