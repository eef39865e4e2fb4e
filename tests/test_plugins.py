"""Plugin loading through real entry points, without pip-installing anything.

Each test installs fake distributions into a temporary folder on ``sys.path``: a module
copied from ``tests/plugin_fixtures/`` plus a ``<name>-<version>.dist-info/`` folder with
``METADATA`` and ``entry_points.txt``, which ``importlib.metadata`` discovers like any
installed package. Tests use a fresh :class:`Registry` and :class:`PluginManager`; the few
that exercise the module-level functions swap in a fresh manager, so the global registry is
never changed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import runpy
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

from refsr_blocks import plugins
from refsr_blocks.errors import PluginError, RegistryError
from refsr_blocks.hookspecs import ENTRY_POINT_GROUP, hookimpl
from refsr_blocks.plugins import (
    DISABLE_ENV_VAR,
    PluginInfo,
    PluginManager,
    PluginRegistrar,
    RefSRPluginWarning,
)
from refsr_blocks.registry import Registry

FIXTURES = Path(__file__).parent / "plugin_fixtures"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "custom_flow_plugin"


class BaseFlow(nn.Module):
    """Stands for a flow estimator of the library."""


class FakeSite:
    """A folder on ``sys.path`` holding fake installed distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.distributions: set[str] = set()
        self.modules: set[str] = set()

    def install(
        self,
        dist: str,
        module: str,
        *,
        version: str = "1.0",
        entry_point: str | None = None,
        source: Path | None = None,
    ) -> None:
        """Copy a fixture module and write the dist-info declaring it as a plugin."""
        shutil.copy(source or FIXTURES / f"{module}.py", self.root / f"{module}.py")
        dist_info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        name = entry_point or module.removeprefix("refsr_fixture_")
        (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {module}\n")
        self.distributions.add(dist)
        self.modules.add(module)

    def discover(self) -> list[metadata.EntryPoint]:
        """The real entry points of the group, limited to this site's distributions."""
        return [
            ep
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
            if ep.dist is not None and ep.dist.name in self.distributions
        ]

    def events(self) -> list[str]:
        """Lines the fixture plugins appended to events.log ("<module> import|hook")."""
        log = self.root / "events.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    fake = FakeSite(tmp_path)
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)


@pytest.fixture
def registry() -> Registry:
    """A registry holding two "library" components, owned by refsr_blocks."""
    fresh = Registry()
    fresh.register("flow", "base_flow", BaseFlow)
    fresh.register("loss", "base_loss", nn.MSELoss)
    return fresh


def manager_for(registry: Registry, site: FakeSite) -> PluginManager:
    return PluginManager(registry, discover=site.discover)


@contextmanager
def plugin_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every RefSRPluginWarning (none are deduplicated)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found: list[warnings.WarningMessage] = []
        yield found
    found.extend(w for w in caught if issubclass(w.category, RefSRPluginWarning))


def by_name(manager: PluginManager) -> dict[str, PluginInfo]:
    return {p.name: p for p in manager.list_plugins()}


# ---------------------------------------------------------------------------------------
# discovery and laziness
# ---------------------------------------------------------------------------------------
def test_a_good_plugin_registers_through_its_entry_point(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert caught == []
    component = registry.get("flow", "fixture_flow")
    assert component.owner == "refsr-fixture-good"
    assert component.factory.__module__ == "refsr_fixture_good"
    assert manager.list_plugins() == [
        PluginInfo(
            name="good",
            distribution="refsr-fixture-good",
            version="1.2.3",
            entry_point="good",
            value="refsr_fixture_good",
            components=("flow/fixture_flow",),
            status="loaded",
        )
    ]


def test_default_discovery_reads_installed_metadata(site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")
    registry = Registry()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RefSRPluginWarning)  # whatever else is installed
        records = PluginManager(registry).list_plugins()
    (ours,) = [r for r in records if r.distribution == "refsr-fixture-good"]
    assert ours.status == "loaded"
    assert ("flow", "fixture_flow") in registry


def test_loading_is_lazy_and_happens_once(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")
    calls: list[int] = []

    def counting_discover() -> list[metadata.EntryPoint]:
        calls.append(1)
        return site.discover()

    manager = PluginManager(registry, discover=counting_discover)
    registry.before_lookup = manager.load
    registry.register("loss", "another_library_loss", nn.L1Loss)  # registering is no lookup
    assert (site.events(), calls, manager.loaded) == ([], [], False)

    assert registry.get("flow", "fixture_flow").owner == "refsr-fixture-good"
    registry.list()
    assert ("flow", "fixture_flow") in registry
    list(registry)
    manager.load()
    manager.list_plugins()
    assert site.events() == ["refsr_fixture_good import", "refsr_fixture_good hook"]
    assert calls == [1]


# ---------------------------------------------------------------------------------------
# broken plugins: one warning each, everything else keeps working
# ---------------------------------------------------------------------------------------
def test_a_plugin_that_fails_to_import_is_skipped_with_one_warning(registry, site) -> None:
    site.install("refsr-fixture-broken", "refsr_fixture_broken_import", version="0.4.1")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'refsr-fixture-broken' 0.4.1" in message
    assert "ModuleNotFoundError" in message and "refsr_fixture_no_such_dependency" in message
    records = by_name(manager)
    assert records["broken_import"].status.startswith("failed: ModuleNotFoundError:")
    assert isinstance(records["broken_import"].error, ModuleNotFoundError)
    assert records["good"].status == "loaded"
    assert registry.list("flow") == ["base_flow", "fixture_flow"]


def test_a_hook_that_raises_is_rolled_back(registry, site) -> None:
    site.install("refsr-fixture-raises", "refsr_fixture_hook_raises", version="2.0")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'refsr-fixture-raises' 2.0" in message
    assert "RuntimeError: fixture hook failed on purpose" in message
    # the new component is gone and the one it overrode is back, with its owner
    assert "fixture_partial_loss" not in registry.list("loss")
    restored = registry.get("loss", "base_loss")
    assert (restored.factory, restored.owner) == (nn.MSELoss, "refsr_blocks")
    records = by_name(manager)
    assert records["hook_raises"].components == ()
    assert records["hook_raises"].status == "failed: RuntimeError: fixture hook failed on purpose"
    assert records["good"].status == "loaded"


def test_a_clash_with_the_library_names_both_owners_and_skips_the_plugin(registry, site) -> None:
    site.install("refsr-fixture-clash", "refsr_fixture_clash", version="0.1")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'refsr-fixture-clash' 0.1" in message and "PluginError" in message
    assert "plugin 'refsr-fixture-clash' tried to register flow component 'base_flow'" in message
    assert "already registered by 'refsr_blocks'" in message
    assert "override=True" in message
    (record,) = manager.list_plugins()
    assert isinstance(record.error, PluginError)
    assert registry.get("flow", "base_flow").factory is BaseFlow
    assert "fixture_clash_ok" not in registry.list("loss")


def test_a_clash_between_two_plugins_names_both_distributions(registry, site) -> None:
    registry.register("flow", "fixture_flow", BaseFlow, owner="refsr-other-plugin")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    (warning,) = caught
    assert "'refsr-fixture-good'" in str(warning.message)
    assert "already registered by 'refsr-other-plugin'" in str(warning.message)


def test_override_true_replaces_and_unregistering_restores(registry, site) -> None:
    site.install("refsr-fixture-override", "refsr_fixture_override")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert caught == []
    replaced = registry.get("flow", "base_flow")
    assert (replaced.factory.__name__, replaced.owner) == ("OverridingFlow", "refsr-fixture-override")
    assert by_name(manager)["override"].components == ("flow/base_flow",)
    manager.unregister_plugin("override")
    restored = registry.get("flow", "base_flow")
    assert (restored.factory, restored.owner) == (BaseFlow, "refsr_blocks")


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("refsr_fixture_misspelled", "unknown hook 'register_component'"),
        ("refsr_fixture_bad_argument", "registy"),
    ],
)
def test_an_invalid_hook_implementation_is_reported(registry, site, module, expected) -> None:
    site.install("refsr-fixture-invalid", module, version="3.1")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'refsr-fixture-invalid' 3.1" in message and expected in message
    assert "PluginValidationError" in message
    if "misspelled" in module:
        assert "the hooks refsr_blocks defines are: register_components" in message
    assert "fixture_never_registered" not in registry.list("loss")
    assert [r.status for r in manager.list_plugins() if r.name == "good"] == ["loaded"]
    # the broken plugin left nothing behind in pluggy: validating again passes
    manager._pm.check_pending()


def test_a_plugin_using_an_unknown_kind_fails_with_the_registry_error(registry) -> None:
    class UnknownKind:
        @hookimpl
        def register_components(self, registry):
            registry.register("flows", "x", BaseFlow)

    manager = PluginManager(registry, discover=lambda: [])
    manager.register_plugin(UnknownKind(), name="unknown-kind")
    with plugin_warnings() as caught:
        manager.load()
    (warning,) = caught
    assert "RegistryError" in str(warning.message) and "Did you mean 'flow'" in str(warning.message)


# ---------------------------------------------------------------------------------------
# the disable switch
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "disabled"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_disable_switch(registry, site, monkeypatch, value, disabled) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.0")
    monkeypatch.setenv(DISABLE_ENV_VAR, value)
    manager = manager_for(registry, site)
    (record,) = manager.list_plugins()
    if disabled:
        assert (record.distribution, record.status, record.components) == ("refsr-fixture-good", "disabled", ())
        assert site.events() == []  # not even imported
        assert "fixture_flow" not in registry.list("flow")
    else:
        assert record.status == "loaded"
        assert "fixture_flow" in registry.list("flow")


def test_in_process_plugins_still_load_when_entry_points_are_disabled(registry, monkeypatch) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, "1")
    manager = PluginManager(registry, discover=lambda: [])
    manager.register_plugin(L1Plugin(), name="in-process")
    assert [p.status for p in manager.list_plugins()] == ["loaded"]


# ---------------------------------------------------------------------------------------
# in-process plugins
# ---------------------------------------------------------------------------------------
class L1Plugin:
    """A plugin object registering ``loss/plugin_l1``."""

    def __init__(self, override: bool = False) -> None:
        self.override = override

    @hookimpl
    def register_components(self, registry):
        registry.register("loss", "plugin_l1", nn.L1Loss, override=self.override)


def test_register_plugin_before_loading_defers_the_hook(registry) -> None:
    manager = PluginManager(registry, discover=lambda: [])
    info = manager.register_plugin(L1Plugin(), name="l1")
    assert (info.status, info.components) == ("pending", ())
    assert "plugin_l1" not in registry.list("loss")
    manager.load()
    assert registry.get("loss", "plugin_l1").owner == "l1"
    assert [(p.name, p.components, p.status) for p in manager.list_plugins()] == [("l1", ("loss/plugin_l1",), "loaded")]


def test_register_plugin_after_loading_runs_the_hook_now(registry) -> None:
    manager = PluginManager(registry, discover=lambda: [])
    manager.load()
    info = manager.register_plugin(L1Plugin())
    assert (info.name, info.status, info.components) == ("L1Plugin", "loaded", ("loss/plugin_l1",))
    assert registry.get("loss", "plugin_l1").owner == "L1Plugin"
    manager.unregister_plugin("L1Plugin")
    assert "plugin_l1" not in registry.list("loss")
    assert manager.list_plugins() == []


def test_register_plugin_raises_for_broken_plugins_and_keeps_nothing(registry) -> None:
    class Raising:
        @hookimpl
        def register_components(self, registry):
            registry.register("loss", "half_done", nn.L1Loss)
            raise ValueError("bad plugin")

    class Misspelled:
        @hookimpl
        def register_componnets(self, registry):
            pass

    manager = PluginManager(registry, discover=lambda: [])
    manager.load()
    with pytest.raises(PluginError, match="'raising' failed in register_components: ValueError: bad plugin"):
        manager.register_plugin(Raising(), name="raising")
    with pytest.raises(PluginError, match="unknown hook 'register_componnets'"):
        manager.register_plugin(Misspelled(), name="misspelled")
    with pytest.raises(PluginError, match="already registered by 'refsr_blocks'"):
        manager.register_plugin(
            type(
                "Clash",
                (),
                {
                    "register_components": staticmethod(
                        hookimpl(lambda registry: registry.register("flow", "base_flow", nn.Identity))
                    )
                },
            )(),
            name="clash",
        )
    assert "half_done" not in registry.list("loss")
    assert manager.list_plugins() == []
    manager.register_plugin(L1Plugin(), name="l1")
    with pytest.raises(PluginError, match="named 'l1' is already registered"):
        manager.register_plugin(L1Plugin(), name="l1")
    with pytest.raises(PluginError, match="no refsr_blocks plugin named 'nope'"):
        manager.unregister_plugin("nope")


def test_in_process_plugins_run_after_entry_points_so_they_can_override(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")

    class Replacement:
        @hookimpl
        def register_components(self, registry):
            registry.register("flow", "fixture_flow", BaseFlow, override=True)

    manager = manager_for(registry, site)
    manager.register_plugin(Replacement(), name="mine")
    manager.load()
    assert [p.name for p in manager.list_plugins()] == ["good", "mine"]
    assert registry.get("flow", "fixture_flow").owner == "mine"
    manager.unregister_all()
    assert registry.list("flow") == ["base_flow"]


def test_registrar_records_additions_and_forwards_errors(registry) -> None:
    registrar = PluginRegistrar(registry, owner="some-dist")
    assert registrar.kinds == registry.kinds
    registrar.register("loss", "a", nn.L1Loss)
    registrar.register("loss", "base_loss", nn.L1Loss, override=True)
    assert registrar.added == ("loss/a", "loss/base_loss")
    with pytest.raises(RegistryError, match="invalid component name"):
        registrar.register("loss", "has space", nn.L1Loss)
    registrar.rollback()
    assert registry.list("loss") == ["base_loss"]
    assert registry.get("loss", "base_loss").factory is nn.MSELoss


# ---------------------------------------------------------------------------------------
# module-level API and command line
# ---------------------------------------------------------------------------------------
@pytest.fixture
def global_manager(registry, site, monkeypatch) -> Callable[[], PluginManager]:
    """Point the module-level functions at a fresh registry (the global one is untouched)."""
    monkeypatch.setattr(plugins, "REGISTRY", registry)
    monkeypatch.setattr(plugins, "_MANAGER", None)
    monkeypatch.setattr(plugins, "_default_discover", lambda group: site.discover)
    return plugins.get_plugin_manager


def test_module_level_functions_share_one_manager(registry, site, global_manager) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    assert global_manager() is global_manager()
    plugins.register_plugin(L1Plugin(), name="l1")
    plugins.load_plugins()
    assert [(p.name, p.status) for p in plugins.list_plugins()] == [("good", "loaded"), ("l1", "loaded")]
    plugins.unregister_plugin("l1")
    assert "plugin_l1" not in registry.list("loss")


def test_reset_for_tests_removes_plugin_components_and_rearms(registry, site, global_manager) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")
    plugins.load_plugins()
    assert "fixture_flow" in registry.list("flow")
    plugins._reset_for_tests()
    assert registry.before_lookup is plugins.load_plugins
    assert plugins._MANAGER is None
    registry.before_lookup = None
    assert registry.list("flow") == ["base_flow"]


def test_the_table_and_json_listing(site, global_manager, capsys) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    site.install("refsr-fixture-broken", "refsr_fixture_broken_import", version="0.4.1")
    with plugin_warnings():
        assert plugins.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["distribution", "version", "entry", "point", "components", "status"]
    good = next(line for line in lines if line.startswith("refsr-fixture-good"))
    assert good.split() == ["refsr-fixture-good", "1.2.3", "good", "flow/fixture_flow", "loaded"]
    broken = next(line for line in lines if line.startswith("refsr-fixture-broken"))
    assert "failed: ModuleNotFoundError" in broken
    assert plugins.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["distribution"]: d["components"] for d in data} == {
        "refsr-fixture-good": ["flow/fixture_flow"],
        "refsr-fixture-broken": [],
    }


def test_the_table_says_when_there_is_no_plugin() -> None:
    assert "No refsr_blocks plugins found" in plugins.format_plugin_table([])


def test_python_m_refsr_blocks_plugins_runs_main(site, global_manager, monkeypatch, capsys) -> None:
    # `python -m refsr_blocks.plugins`, in-process (a subprocess would spend seconds on
    # importing torch): the __main__ copy must delegate to the canonical module's state.
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    monkeypatch.setattr(sys, "argv", ["refsr_blocks.plugins"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: module already imported
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_module("refsr_blocks.plugins", run_name="__main__")
    assert exit_info.value.code == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "refsr-fixture-good" in line)
    assert row.split() == ["refsr-fixture-good", "1.2.3", "good", "flow/fixture_flow", "loaded"]
    assert global_manager().loaded


# ---------------------------------------------------------------------------------------
# the example plugin of the documentation
# ---------------------------------------------------------------------------------------
def test_the_example_plugin_loads_and_honours_the_flow_contract(site) -> None:
    import tomllib

    from refsr_blocks.testing import FlowContract

    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    ((ep_name, module),) = meta["project"]["entry-points"]["refsr_blocks"].items()
    site.install(
        meta["project"]["name"],
        module,
        entry_point=ep_name,
        source=EXAMPLE / f"{module}.py",
        version=meta["project"]["version"],
    )
    registry = Registry()
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    assert caught == [], [str(w.message) for w in caught]
    assert [(p.distribution, p.components) for p in manager.list_plugins()] == [("refsr-tinyflow", ("flow/tiny_flow",))]

    class ExampleContract(FlowContract):
        name = "tiny_flow"

        @property
        def component(self):  # the fresh registry, not the global one
            return registry.get("flow", "tiny_flow")

    ExampleContract().run_all()
    flows = registry.get("flow", "tiny_flow").factory(scales=3)(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 37, 53))
    assert [tuple(f.shape) for f in flows] == [(1, 2, 37, 53), (1, 2, 19, 27), (1, 2, 10, 14)]
