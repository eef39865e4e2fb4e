"""Registry behaviour: registration, lookup, wildcards and every error path."""

from __future__ import annotations

import pytest
from torch import nn

import refsr_blocks
from refsr_blocks import (
    RegistryError,
    UnknownComponentError,
    get_component,
    list_components,
    list_kinds,
    list_models,
    register_component,
    register_kind,
)
from refsr_blocks.core.registry import Registry


def loss_registry() -> Registry:
    """A private registry with one kind, ``loss``."""
    registry = Registry()
    registry.register_kind("loss", model_part=False)
    return registry


class Dummy(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.width = width


def test_decorator_and_call_forms(fresh_registry) -> None:
    @register_component("loss", "decorated")
    class Decorated(nn.Module):
        pass

    assert get_component("loss", "decorated").factory is Decorated
    assert register_component("loss", "called", Dummy) is Dummy
    assert get_component("loss", "called").defaults == {"width": 3}


def test_duplicate_name_names_both_definitions(fresh_registry) -> None:
    class Other(nn.Module):
        pass

    with pytest.raises(RegistryError) as err:
        register_component("warper", "bilinear", Other)
    message = str(err.value)
    assert "refsr_blocks.components.warpers.BilinearWarper" in message
    assert "test_registry" in message and "Other" in message
    assert "override=True" in message


def test_override_replaces(fresh_registry) -> None:
    register_component("warper", "bilinear", Dummy, override=True)
    assert get_component("warper", "bilinear").factory is Dummy


def test_reregistering_the_same_factory_is_harmless(fresh_registry) -> None:
    factory = get_component("loss", "l1").factory
    register_component("loss", "l1", factory)  # e.g. a module imported twice
    assert get_component("loss", "l1").factory is factory


def test_unknown_name_lists_registered_and_closest() -> None:
    with pytest.raises(UnknownComponentError) as err:
        get_component("flow", "flownet_plus")
    message = str(err.value)
    assert "'flownets_plus'" in message.split("Registered")[0]  # the suggestion
    listed = message.split("Registered flow components: ")[1].rstrip(".").split(", ")
    assert listed == sorted(listed) and {"flownets", "flownets_plus", "raft_small"} <= set(listed)  # the full list
    assert isinstance(err.value, KeyError)


def test_unknown_kind() -> None:
    with pytest.raises(RegistryError, match="kinds are upsampler, prealign, flow"):
        list_components("flows")
    with pytest.raises(RegistryError, match="Did you mean 'flow'"):
        get_component("flows", "flownets")


@pytest.mark.parametrize("name", ["", "has space", "dotted.name", "wild*", 3])
def test_invalid_names_rejected(name) -> None:
    with pytest.raises(RegistryError, match="invalid component name"):
        loss_registry().register("loss", name, Dummy)


def test_factory_must_be_callable() -> None:
    with pytest.raises(RegistryError, match="not callable"):
        loss_registry().register("loss", "x", 42)


def test_wildcards_and_listing() -> None:
    flownets = list_components("flow", "flownets*")
    assert flownets == sorted(flownets) and {"flownets", "flownets_plus"} <= set(flownets)
    assert all(n.startswith("flownets") for n in flownets) and "raft_small" not in flownets
    assert list_components("warper") == ["bilinear", "kornia", "nearest"]
    everything = list_components()
    assert "loss/charbonnier" in everything and "model/crossnet" in everything
    assert list_components(pattern="*net*") == [n for n in everything if "net" in n.split("/")[1]]


def test_every_kind_lists_components() -> None:
    for kind in list_kinds():
        assert list_components(kind), kind


def test_list_models() -> None:
    assert {"crossnet", "crossnet_flownets", "crossnet_iw"} <= set(list_models())
    assert list_models("*_iw") == ["crossnet_iw"]


def test_lazy_hook_runs_once() -> None:
    calls = []
    registry = loss_registry()
    registry.before_lookup = lambda: calls.append(1)
    registry.list("loss")
    registry.list("loss")
    assert calls == [1]


def test_unregister() -> None:
    registry = loss_registry()
    registry.register("loss", "tmp", Dummy)
    registry.unregister("loss", "tmp")
    assert ("loss", "tmp") not in registry
    with pytest.raises(UnknownComponentError):
        registry.unregister("loss", "tmp")


def test_public_api_exports() -> None:
    for name in refsr_blocks.__all__:
        assert hasattr(refsr_blocks, name), name


def test_parameter_free_modules_reject_unknown_parameters_up_front() -> None:
    from refsr_blocks import SpecError, build_model

    assert get_component("warper", "bilinear").defaults == {}
    assert not get_component("warper", "bilinear").accepts_var_kwargs
    with pytest.raises(SpecError) as err:
        build_model("crossnet_lite", **{"warper.fil": 0.5})
    assert err.value.path == "components.warper.params.fil"


# -- open kinds -----------------------------------------------------------------------------
def test_kinds_in_assembly_order_and_model_parts() -> None:
    assert list_kinds()[:6] == ["upsampler", "prealign", "flow", "warper", "encoder", "decoder"]
    assert "loss" in list_kinds() and "loss" not in list_kinds(model_parts=True)
    assert "model" not in list_kinds(model_parts=True)


def test_a_new_kind_takes_components_and_its_contract_loads_lazily(fresh_registry) -> None:
    kind = register_kind("texture_matcher", contract="refsr_blocks.testing.contracts:LossContract", doc="matching")
    assert kind.owner == "refsr_blocks" and "texture_matcher" in list_kinds(model_parts=True)
    register_component("texture_matcher", "dummy", Dummy)
    assert list_components("texture_matcher") == ["dummy"]
    from refsr_blocks.testing.contracts import LossContract

    assert fresh_registry.get_kind("texture_matcher").contract_class() is LossContract


def test_registering_a_kind_again_is_a_no_op_but_a_different_one_clashes() -> None:
    registry = loss_registry()
    assert registry.register_kind("loss", model_part=False) is registry.get_kind("loss")
    with pytest.raises(RegistryError) as err:
        registry.register_kind("loss", contract=Dummy, owner="refsr-texture")
    assert "registered by refsr_blocks" in str(err.value) and "refsr-texture" in str(err.value)


@pytest.mark.parametrize("name", ["", "two words", "a/b", None])
def test_invalid_kind_names_rejected(name) -> None:
    with pytest.raises(RegistryError, match="invalid kind name"):
        Registry().register_kind(name)


def test_unregister_kind_removes_its_components() -> None:
    registry = loss_registry()
    registry.register("loss", "tmp", Dummy)
    registry.unregister_kind("loss")
    assert registry.kinds == ()
    with pytest.raises(RegistryError, match="unknown component kind 'loss'"):
        registry.list("loss")
