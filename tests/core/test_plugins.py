"""Plugin loading through real entry points, without pip-installing anything.

Each test installs fake distributions into a temporary folder on ``sys.path``: a module
copied from ``tests/plugin_fixtures/`` plus a ``<name>-<version>.dist-info/`` folder with
``METADATA`` and ``entry_points.txt``, which ``importlib.metadata`` discovers like any
installed package. Most tests use a fresh :class:`Registry` and :class:`PluginManager`; the
ones that build models load their plugin into the global registry through a manager of their
own, and remove it again (``fresh_registry`` restores the registry as well).
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

from refsr_blocks import build_model, list_kinds, register_component
from refsr_blocks.core import plugins
from refsr_blocks.core.errors import PluginError, RegistryError, UnknownComponentError
from refsr_blocks.core.hookspecs import ENTRY_POINT_GROUP, hookimpl
from refsr_blocks.core.plugins import DISABLE_ENV_VAR, PluginInfo, PluginManager, RefSRPluginWarning
from refsr_blocks.core.registry import REGISTRY, Registry, recording
from refsr_blocks.core.spec import model_entries
from refsr_blocks.testing import check_component
from refsr_blocks.tools.cli import format_plugin_table
from refsr_blocks.tools.cli import main as cli_main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parents[1] / "plugin_fixtures"
TEXTURE = FIXTURES / "texture_plugin"
REPO = Path(__file__).resolve().parents[2]
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
        text: str | None = None,
    ) -> None:
        """Write a fixture module (``text``, or a copy of ``source``) and the dist-info declaring it."""
        target = self.root / f"{module}.py"
        if text is not None:
            target.write_text(text)
        else:
            shutil.copy(source or FIXTURES / f"{module}.py", target)
        dist_info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        name = entry_point or module.removeprefix("refsr_fixture_")
        (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {module}\n")
        self.distributions.add(dist)
        self.modules.add(module)

    def install_project(self, folder: Path, **kwargs) -> str:
        """Install a plugin project (pyproject.toml + one module) as its metadata declares; its name."""
        meta = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        ((ep_name, module),) = meta["entry-points"][ENTRY_POINT_GROUP].items()
        options = {"entry_point": ep_name, "source": folder / f"{module}.py", "version": meta["version"]}
        self.install(meta["name"], module, **{**options, **kwargs})
        return meta["name"]

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
    REGISTRY.list()  # the global registry loads its own plugins now, before this site is on sys.path
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    fake = FakeSite(tmp_path)
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)


@pytest.fixture
def registry() -> Registry:
    """A registry with two kinds and two "library" components, owned by refsr_blocks."""
    fresh = Registry()
    fresh.register_kind("flow")
    fresh.register_kind("loss", model_part=False)
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


def load_plugins(registry: Registry, site: FakeSite, warned: int) -> tuple[PluginManager, list[str]]:
    """Load the site's plugins into ``registry``: the manager and the messages of its plugin warnings,
    of which there must be ``warned``."""
    manager = manager_for(registry, site)
    with plugin_warnings() as caught:
        manager.load()
    messages = [str(w.message) for w in caught]
    assert len(messages) == warned, messages
    return manager, messages


def by_name(manager: PluginManager) -> dict[str, PluginInfo]:
    return {p.name: p for p in manager.list_plugins()}


# ---------------------------------------------------------------------------------------
# discovery and laziness
# ---------------------------------------------------------------------------------------
def test_a_good_plugin_registers_through_its_entry_point(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    manager, _ = load_plugins(registry, site, warned=0)
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
            kinds=(),
            components=("flow/fixture_flow",),
            status="loaded",
        )
    ]


def test_default_discovery_reads_installed_metadata(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")
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


def test_concurrent_first_lookups_wait_for_the_plugins(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")

    def slow_discover() -> list[metadata.EntryPoint]:
        time.sleep(0.3)  # every other thread's first lookup arrives while this one loads
        return site.discover()

    registry.before_lookup = PluginManager(registry, discover=slow_discover).load
    start = threading.Barrier(4)
    owners: list[str] = []

    def first_lookup() -> None:
        start.wait()
        owners.append(registry.get("flow", "fixture_flow").owner)

    threads = [threading.Thread(target=first_lookup) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert owners == ["refsr-fixture-good"] * 4  # a lookup before the hook ran would have raised
    assert site.events() == ["refsr_fixture_good import", "refsr_fixture_good hook"]


# ---------------------------------------------------------------------------------------
# broken plugins: one warning each, everything they registered undone
# ---------------------------------------------------------------------------------------
def test_a_plugin_that_fails_to_import_is_skipped_with_one_warning(registry, site) -> None:
    site.install("refsr-fixture-broken", "refsr_fixture_broken_import", version="0.4.1")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager, (message,) = load_plugins(registry, site, warned=1)
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
    manager, (message,) = load_plugins(registry, site, warned=1)
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
    manager, (message,) = load_plugins(registry, site, warned=1)
    assert "'refsr-fixture-clash' 0.1" in message and "RegistryError" in message
    assert "flow component 'base_flow' is already registered by" in message
    assert "BaseFlow (registered by refsr_blocks)" in message
    assert "ClashingFlow (registered by refsr-fixture-clash) tried to register it again" in message
    assert "override=True" in message
    (record,) = manager.list_plugins()
    assert isinstance(record.error, RegistryError)
    assert registry.get("flow", "base_flow").factory is BaseFlow
    assert "fixture_clash_ok" not in registry.list("loss")


def test_a_clash_between_two_plugins_names_both_distributions(registry, site) -> None:
    registry.register("flow", "fixture_flow", BaseFlow, owner="refsr-other-plugin")
    site.install("refsr-fixture-good", "refsr_fixture_good")
    _, (message,) = load_plugins(registry, site, warned=1)
    assert "'refsr-fixture-good'" in message
    assert "(registered by refsr-other-plugin)" in message
    assert "(registered by refsr-fixture-good) tried to register it again" in message


def test_override_true_replaces_and_unregistering_restores(registry, site) -> None:
    site.install("refsr-fixture-override", "refsr_fixture_override")
    manager, _ = load_plugins(registry, site, warned=0)
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
    manager, (message,) = load_plugins(registry, site, warned=1)
    assert "'refsr-fixture-invalid' 3.1" in message and expected in message
    assert "PluginValidationError" in message
    if "misspelled" in module:
        assert "the hooks refsr_blocks defines are: register_components" in message
    assert "fixture_never_registered" not in registry.list("loss")
    assert [r.status for r in manager.list_plugins() if r.name == "good"] == ["loaded"]
    # the broken plugin left nothing behind in pluggy: validating again passes
    manager._pm.check_pending()


def test_a_registration_that_fails_undoes_the_plugin(registry) -> None:
    class UnknownKind:
        @hookimpl
        def register_components(self, registry):
            registry.register("loss", "registered_first", nn.L1Loss)
            registry.register("flows", "x", BaseFlow)

    manager = PluginManager(registry, discover=list)
    with pytest.raises(PluginError, match="RegistryError: unknown component kind 'flows'.*Did you mean 'flow'"):
        manager.register_plugin(UnknownKind(), name="unknown-kind")
    assert registry.list("loss") == ["base_loss"]
    assert manager.list_plugins() == []


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


def test_an_unknown_component_names_the_plugins_that_are_not_loaded(registry, site, monkeypatch) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.0")
    site.install("refsr-fixture-broken", "refsr_fixture_broken_import")
    monkeypatch.setenv(DISABLE_ENV_VAR, "1")
    manager_for(registry, site).load()
    with pytest.raises(UnknownComponentError, match=r"unknown flow 'fixture_flow'.*refsr-fixture-good \(disabled\)"):
        registry.get("flow", "fixture_flow")
    with pytest.raises(UnknownComponentError, match=rf"unset {DISABLE_ENV_VAR} to load them"):
        registry.get("flow", "fixture_flow")
    monkeypatch.delenv(DISABLE_ENV_VAR)
    manager = manager_for(fresh := Registry(), site)
    fresh.register_kind("flow")
    with plugin_warnings():
        manager.load()
    with pytest.raises(
        UnknownComponentError, match=r"refsr-fixture-broken \(failed\); `refsr-blocks plugins` says why"
    ) as err:
        fresh.get("flow", "nope")
    assert "refsr-fixture-good" not in str(err.value)  # loaded: not a suspect


def test_in_process_plugins_still_load_when_entry_points_are_disabled(registry, monkeypatch) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, "1")
    manager = PluginManager(registry, discover=list)
    manager.register_plugin(L1Plugin(), name="in-process")
    assert [p.status for p in manager.list_plugins()] == ["loaded"]


# ---------------------------------------------------------------------------------------
# in-process plugins, and who owns what
# ---------------------------------------------------------------------------------------
class L1Plugin:
    """A plugin object registering ``loss/plugin_l1``."""

    def __init__(self, override: bool = False) -> None:
        self.override = override

    @hookimpl
    def register_components(self, registry):
        registry.register("loss", "plugin_l1", nn.L1Loss, override=self.override)


def test_register_plugin_loads_the_entry_points_first_then_runs_the_hook(registry, site) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good")
    manager = manager_for(registry, site)
    info = manager.register_plugin(L1Plugin(), name="l1")
    assert (info.status, info.components) == ("loaded", ("loss/plugin_l1",))
    assert manager.loaded and site.events() == ["refsr_fixture_good import", "refsr_fixture_good hook"]
    assert registry.get("loss", "plugin_l1").owner == "l1"
    assert [(p.name, p.components, p.status) for p in manager.list_plugins()] == [
        ("good", ("flow/fixture_flow",), "loaded"),
        ("l1", ("loss/plugin_l1",), "loaded"),
    ]


def test_register_plugin_after_loading_runs_the_hook_now(registry) -> None:
    manager = PluginManager(registry, discover=list)
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

    class Clash:
        @hookimpl
        def register_components(self, registry):
            registry.register("flow", "base_flow", nn.Identity)

    manager = PluginManager(registry, discover=list)
    with pytest.raises(PluginError, match="'raising' failed: ValueError: bad plugin"):
        manager.register_plugin(Raising(), name="raising")
    with pytest.raises(PluginError, match="unknown hook 'register_componnets'"):
        manager.register_plugin(Misspelled(), name="misspelled")
    with pytest.raises(
        PluginError, match=r"BaseFlow \(registered by refsr_blocks\); .*Identity \(registered by clash\)"
    ):
        manager.register_plugin(Clash(), name="clash")
    assert "half_done" not in registry.list("loss")
    assert registry.get("flow", "base_flow").factory is BaseFlow
    assert manager.list_plugins() == []
    manager._pm.check_pending()  # nothing half-registered left in pluggy
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
    assert [p.name for p in manager.list_plugins()] == ["good", "mine"]
    assert registry.get("flow", "fixture_flow").owner == "mine"
    manager.unregister_all()
    assert registry.list("flow") == ["base_flow"]


def test_recording_owns_and_logs_registrations_and_nothing_else(registry) -> None:
    with recording("some-dist") as log:
        kind = registry.register_kind("texture")
        added = registry.register("loss", "a", nn.L1Loss)
        replaced = registry.register("loss", "base_loss", nn.L1Loss, override=True)
        with pytest.raises(RegistryError, match="invalid component name"):
            registry.register("loss", "has space", nn.L1Loss)
        assert registry.register_kind("texture") is kind  # the same kind again: no change, not logged
    outside = registry.register("loss", "b", nn.L1Loss)
    assert (kind.owner, added.owner, replaced.owner, outside.owner) == ("some-dist",) * 3 + ("refsr_blocks",)
    assert [(new.name, old and old.factory) for _, new, old in log] == [
        ("texture", None),
        ("a", None),
        ("base_loss", nn.MSELoss),
    ]
    assert all(r is registry for r, _, _ in log)


def test_the_library_decorator_is_owned_by_the_plugin_that_runs_it(fresh_registry) -> None:
    class Decorating:
        @hookimpl
        def register_components(self, registry):
            @register_component("loss", "decorated_plugin_loss")
            class DecoratedLoss(nn.L1Loss):
                pass

    manager = PluginManager(REGISTRY, discover=list)
    info = manager.register_plugin(Decorating(), name="decorating")
    assert info.components == ("loss/decorated_plugin_loss",)
    assert REGISTRY.get("loss", "decorated_plugin_loss").owner == "decorating"
    manager.unregister_plugin("decorating")
    assert "decorated_plugin_loss" not in REGISTRY.list("loss")


def test_a_library_module_first_imported_by_a_plugin_stays_the_librarys(registry) -> None:
    # Stands for a lazily imported refsr_blocks module (refsr_blocks.data registers the kind
    # "dataset" when first imported): its registrations must survive the plugin's failure.
    import refsr_blocks

    library_file = str(Path(refsr_blocks.__file__).parent / "lazily_imported_part.py")
    library_code = compile(
        'registry.register_kind("dataset")\nregistry.register("dataset", "library_data", nn.Identity)',
        library_file,
        "exec",
    )

    class ImportsALibraryModule:
        @hookimpl
        def register_components(self, registry):
            exec(library_code, {"registry": registry, "nn": nn})
            registry.register("loss", "plugin_loss", nn.L1Loss)
            raise RuntimeError("fails after")

    with pytest.raises(PluginError, match="fails after"):
        PluginManager(registry, discover=list).register_plugin(ImportsALibraryModule(), name="importer")
    assert registry.get_kind("dataset").owner == registry.get("dataset", "library_data").owner == "refsr_blocks"
    assert "plugin_loss" not in registry.list("loss")


def test_a_kind_clash_names_both_owners(registry) -> None:
    class NewFlowKind:
        @hookimpl
        def register_components(self, registry):
            registry.register_kind("flow", contract="my_plugin:FlowContract")

    with pytest.raises(PluginError, match="kind 'flow' is already registered by refsr_blocks .*; new-flow tried"):
        PluginManager(registry, discover=list).register_plugin(NewFlowKind(), name="new-flow")
    assert registry.get_kind("flow").owner == "refsr_blocks"


# ---------------------------------------------------------------------------------------
# a plugin that adds a kind and an architecture (tests/plugin_fixtures/texture_plugin)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def texture_plugin(site, fresh_registry) -> Iterator[PluginManager]:
    """refsr-texture installed and loaded into the global registry, then removed again."""
    site.install_project(TEXTURE)
    manager, _ = load_plugins(REGISTRY, site, warned=0)
    yield manager
    manager.unregister_all()


def test_a_plugin_adds_a_kind_its_components_and_an_architecture(texture_plugin) -> None:
    (info,) = texture_plugin.list_plugins()
    assert (info.distribution, info.kinds, info.status) == ("refsr-texture", ("texture_matcher",), "loaded")
    assert set(info.components) == {"texture_matcher/cosine", "texture_matcher/projected", "model/texture_transfer"}
    assert REGISTRY.get_kind("texture_matcher").owner == "refsr-texture"
    assert {REGISTRY.get(*c.split("/")).owner for c in info.components} == {"refsr-texture"}
    assert "texture_matcher" in list_kinds(model_parts=True)
    (entry,) = [e for e in model_entries() if e.name == "texture_transfer"]
    assert (entry.type, entry.architecture) == ("architecture", "texture_transfer")


def test_the_plugin_architecture_builds_runs_and_round_trips(texture_plugin) -> None:
    torch.manual_seed(0)
    model = build_model("texture_transfer").eval()
    # The spec says whose components it used (only for those not refsr_blocks' own).
    assert model.spec["components"]["matcher"] == {"name": "cosine", "params": {}, "owner": "refsr-texture"}
    assert model.spec["owner"] == "refsr-texture" and "owner" not in model.spec["components"]["upsampler"]
    lr, ref = torch.rand(2, 3, 6, 7), torch.rand(2, 3, 24, 28)
    with torch.no_grad():
        sr = model(lr, ref)
        out = model.forward_intermediates(lr, ref)
    assert sr.shape == (2, 3, 24, 28)
    assert torch.equal(out["sr"], sr) and out["index"].shape == (2, 6, 7)
    again = build_model(json.loads(json.dumps(model.spec)))
    assert again.spec == model.spec
    again.load_state_dict(model.state_dict(), strict=True)
    other = build_model("texture_transfer", upscale=2, matcher={"name": "projected", "params": {"dim": 4}})
    assert other.matcher.project.in_channels == 16 and other.matcher.project.out_channels == 4  # channels injected
    assert other(lr, torch.rand(2, 3, 12, 14)).shape == (2, 3, 12, 14)


@pytest.mark.parametrize(("kind", "name"), [("texture_matcher", "cosine"), ("texture_matcher", "projected")])
def test_the_plugin_kind_has_a_contract_its_components_pass(texture_plugin, kind, name) -> None:
    check_component(kind, name)


def test_the_plugin_architecture_passes_the_model_contract(texture_plugin) -> None:
    check_component("model", "texture_transfer", {"params": {"channels": 4}})


def test_the_plugin_kind_contract_catches_a_bad_matcher(texture_plugin, fresh_registry) -> None:
    class Negated(nn.Module):
        """Scores the best match lowest."""

        def forward(self, query, key):
            return -REGISTRY.get("texture_matcher", "cosine").factory()(query, key)

    fresh_registry.register("texture_matcher", "negated", Negated)
    with pytest.raises(AssertionError, match="test_a_map_matches_itself"):
        check_component("texture_matcher", "negated")


def test_a_broken_plugin_that_added_a_kind_is_undone_kind_and_all(site, fresh_registry) -> None:
    source = (TEXTURE / "refsr_texture.py").read_text()
    site.install(
        "refsr-texture-broken",
        "refsr_texture_broken",
        text=source + "\nraise RuntimeError('broken after registering')\n",
    )
    site.install("refsr-fixture-good", "refsr_fixture_good")
    kinds_before, models_before = REGISTRY.kinds, REGISTRY.list("model")
    manager, (message,) = load_plugins(REGISTRY, site, warned=1)
    assert "'refsr-texture-broken'" in message and "broken after registering" in message
    assert REGISTRY.kinds == kinds_before and "texture_matcher" not in list_kinds()
    assert REGISTRY.list("model") == models_before
    records = by_name(manager)
    assert (records["refsr_texture_broken"].kinds, records["refsr_texture_broken"].components) == ((), ())
    assert records["refsr_texture_broken"].status == "failed: RuntimeError: broken after registering"
    assert (records["good"].status, records["good"].components) == ("loaded", ("flow/fixture_flow",))
    manager.unregister_all()


# ---------------------------------------------------------------------------------------
# module-level API and command line
# ---------------------------------------------------------------------------------------
@pytest.fixture
def global_manager(registry, site, monkeypatch) -> Callable[[], PluginManager]:
    """Point the module-level functions at a fresh registry (the global one is untouched)."""
    monkeypatch.setattr(plugins, "_MANAGER", manager_for(registry, site))
    return lambda: plugins._MANAGER


def test_module_level_functions_share_one_manager(registry, site, global_manager) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    plugins.register_plugin(L1Plugin(), name="l1")
    plugins.load_plugins()
    assert [(p.name, p.status) for p in plugins.list_plugins()] == [("good", "loaded"), ("l1", "loaded")]
    assert global_manager().loaded
    plugins.unregister_plugin("l1")
    assert "plugin_l1" not in registry.list("loss")


def test_the_table_and_json_listing(site, global_manager, capsys) -> None:
    site.install("refsr-fixture-good", "refsr_fixture_good", version="1.2.3")
    site.install("refsr-fixture-broken", "refsr_fixture_broken_import", version="0.4.1")
    with plugin_warnings():
        assert cli_main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["distribution", "version", "entry", "point", "kinds", "components", "status"]
    good = next(line for line in lines if line.startswith("refsr-fixture-good"))
    assert good.split() == ["refsr-fixture-good", "1.2.3", "good", "-", "flow/fixture_flow", "loaded"]
    broken = next(line for line in lines if line.startswith("refsr-fixture-broken"))
    assert "failed: ModuleNotFoundError" in broken
    assert cli_main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["distribution"]: (d["kinds"], d["components"]) for d in data} == {
        "refsr-fixture-good": ([], ["flow/fixture_flow"]),
        "refsr-fixture-broken": ([], []),
    }


def test_the_table_lists_kinds(texture_plugin) -> None:
    table = format_plugin_table(texture_plugin.list_plugins())
    (row,) = [line for line in table.splitlines() if line.startswith("refsr-texture")]
    assert row.split()[:5] == ["refsr-texture", "0.1.0", "texture", "texture_matcher", "texture_matcher/cosine,"]


def test_the_table_says_when_there_is_no_plugin() -> None:
    assert "No refsr_blocks plugins found" in format_plugin_table([])


# ---------------------------------------------------------------------------------------
# the example plugin of the documentation
# ---------------------------------------------------------------------------------------
def test_the_example_plugin_loads_and_honours_the_flow_contract(site) -> None:
    from refsr_blocks.testing import FlowContract

    site.install_project(EXAMPLE)
    registry = Registry()
    registry.register_kind("flow")
    manager, _ = load_plugins(registry, site, warned=0)
    assert [(p.distribution, p.components) for p in manager.list_plugins()] == [("refsr-tinyflow", ("flow/tiny_flow",))]

    class ExampleContract(FlowContract):
        name = "tiny_flow"

        @property
        def component(self):  # the fresh registry, not the global one
            return registry.get("flow", "tiny_flow")

    ExampleContract().run_all()
    flows = registry.get("flow", "tiny_flow").factory(scales=3)(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 37, 53))
    assert [tuple(f.shape) for f in flows] == [(1, 2, 37, 53), (1, 2, 19, 27), (1, 2, 10, 14)]


def test_an_override_from_a_thread_a_plugin_started_warns_and_is_recorded(fresh_registry) -> None:
    """Context variables do not follow threads: the override is attributed by its caller instead."""
    from small import TINY_CROSSNET

    from refsr_blocks.components.flows.flownets import FlowNetSPlus
    from refsr_blocks.core.errors import RefSROwnerWarning

    class Impostor(FlowNetSPlus):
        """Same weights, other code."""

    go, caught = threading.Event(), []

    def later() -> None:
        go.wait(10)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            register_component("flow", "flownets_plus", Impostor, override=True)
        caught.extend(seen)

    class Sneaky:
        @hookimpl
        def register_components(self, registry):
            self.thread = threading.Thread(target=later)
            self.thread.start()

    plugin = Sneaky()
    manager = PluginManager(REGISTRY, discover=list)
    manager.register_plugin(plugin, name="sneaky")
    go.set()  # the plugin has finished loading: no recording scope is active any more
    plugin.thread.join()
    manager.unregister_plugin("sneaky")
    owner = REGISTRY.get("flow", "flownets_plus").owner
    assert REGISTRY.get("flow", "flownets_plus").factory is Impostor and owner not in ("refsr_blocks", "sneaky")
    assert [w.category for w in caught] == [RefSROwnerWarning]
    assert "replaces flow component 'flownets_plus'" in str(caught[0].message) and owner in str(caught[0].message)
    assert build_model(TINY_CROSSNET).spec["components"]["flow"]["owner"] == owner
