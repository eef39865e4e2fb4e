"""Hostile inputs, one test a case: the one place they are written.

Sections: 1 resource bounds (specs, YAML, checkpoints), 2 the plugin-loading race, 3 plugins
that exit or hang, 5 weight digests, 6 overrides and owners, 7 input and dtype edges, 8 one
error line instead of a traceback, 9 leniency; run folders and training in
``tests/train/test_hostile_train.py``. ``python scripts/adversarial.py`` runs both files and
prints the table of cases handled, by section.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file
from small import TINY_CROSSNET
from support import debug_checks_on

from refsr_blocks import build_model, create_component, load_model, save_model
from refsr_blocks.core.checkpoint import DIGEST_KEY, SPEC_KEY, read_metadata, tensor_digest
from refsr_blocks.core.errors import (
    CheckpointError,
    InputError,
    PluginError,
    RefSROwnerWarning,
    RegistryError,
    SpecError,
)
from refsr_blocks.core.plugins import TIMEOUT_ENV_VAR, PluginManager, PluginTimeoutError, RefSRPluginWarning
from refsr_blocks.core.registry import Registry
from refsr_blocks.core.spec import load_spec, resolve_spec, safe_load_yaml
from refsr_blocks.ops.inputs import (
    check_fuse_inputs,
    check_pair,
    prepare_pair,
)
from refsr_blocks.tools.cli import main as cli_main


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TINY_CROSSNET).eval()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _resave(src: Path, dst: Path, *, tensors=None, metadata=None) -> Path:
    """Write ``dst`` as ``src`` with some tensors or metadata replaced (a forged file)."""
    save_file(
        tensors if tensors is not None else load_file(str(src)),
        str(dst),
        metadata=metadata if metadata is not None else read_metadata(src),
    )
    return dst


# -- 1. resource bounds -------------------------------------------------------------------
def test_tiny_file_naming_a_huge_model_is_refused_before_anything_is_allocated(tiny, tmp_path, monkeypatch) -> None:
    huge = json.loads(json.dumps(tiny.spec))
    huge["params"]["channels"] = 1024
    huge["components"]["upsampler"]["params"].update(num_blocks=256, channels=1024)
    path = tmp_path / "bomb.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={SPEC_KEY: json.dumps(huge), "format": "pt"})
    assert path.stat().st_size < 2000
    from refsr_blocks.core import build

    real_builds = []
    original = build.build_model

    def counting(*args, **kwargs):
        if torch.get_default_device().type != "meta":
            real_builds.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(build, "build_model", counting)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"bomb\.safetensors.*do not match its spec: missing"):
        load_model(path)
    assert time.perf_counter() - start < 5 and real_builds == []


def test_size_parameters_are_bounded_before_building() -> None:
    for override, where in (
        ({"upsampler": {"name": "mdsr", "params": {"num_blocks": 10**7}}}, "num_blocks"),
        ({"flow": {"params": {"width": 1e6}}}, "width"),
        ({"lr_encoder": {"params": {"convs_per_level": 10**6}}}, "convs_per_level"),
    ):
        start = time.perf_counter()
        with pytest.raises(SpecError, match=rf"{where}: .*out of range"):
            build_model(TINY_CROSSNET, **override)
        assert time.perf_counter() - start < 1


#: Components whose size parameters are bounded, and the parameters
#: deliberately left out: not sizes (CUFED5's ``levels`` are file-name numbers).
BOUNDED = {
    ("flow", "flownets_authors"): (),
    ("encoder", "authors"): (),
    ("encoder", "ttsr_lte"): (),
    ("decoder", "authors_fusion"): (),
    ("aligner", "attention"): (),
    ("aligner", "deformable"): (),
    ("aligner", "flow_warp"): (),
    ("texture_fusion", "ttsr_csfi"): (),
    ("dataset", "cufed5"): ("levels",),
    ("dataset", "ref_folder"): (),
}
#: Beyond every bound (attention's chunk_size accepts 10**9, its "one block").
FAR_TOO_LARGE = 10**12


def _int_like(value) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return bool(items) and all(isinstance(v, int) and not isinstance(v, bool) for v in items)


@pytest.mark.parametrize("kind, name", sorted(BOUNDED))
def test_every_size_parameter_is_bounded_and_refused_before_building(kind, name, monkeypatch) -> None:
    from refsr_blocks.core.registry import REGISTRY
    from refsr_blocks.core.spec import param_bounds

    component = REGISTRY.get(kind, name)
    bounds = param_bounds(component.factory)
    unbounded = [
        k for k, v in component.defaults.items() if _int_like(v) and k not in bounds and k not in BOUNDED[kind, name]
    ]
    assert bounds and not unbounded, f"{kind} {name!r}: integer parameters without PARAM_BOUNDS: {unbounded}"

    def explode(*args, **kwargs):
        raise AssertionError(f"{kind} {name!r} was constructed before its parameters were checked")

    monkeypatch.setattr(component.factory, "__init__", explode)
    for param, (low, high) in bounds.items():
        listed = isinstance(component.defaults[param], (list, tuple))  # bounded entry by entry
        start = time.perf_counter()
        with pytest.raises(SpecError) as err:
            create_component(kind, name, **{param: [2, FAR_TOO_LARGE] if listed else FAR_TOO_LARGE})
        assert time.perf_counter() - start < 0.5
        assert err.value.path == f"{kind}.{name}.{param}" and f"[{low}, {high}]" in str(err.value), str(err.value)


def test_bounded_parameters_in_every_preset_are_refused_at_their_spec_path() -> None:
    from refsr_blocks.core.registry import REGISTRY
    from refsr_blocks.core.spec import get_preset, model_entries, param_bounds

    checked = set()
    for entry in model_entries():
        resolved = resolve_spec(get_preset(entry.name))
        arch = REGISTRY.get("model", resolved["model"]).factory
        for slot, part in resolved["components"].items():
            component = REGISTRY.get(arch.slots[slot].kind, part["name"])
            for param, (low, high) in param_bounds(component.factory).items():
                if param in arch.slots[slot].inject:
                    continue  # set by the architecture from a (validated) global parameter
                value = [FAR_TOO_LARGE] if isinstance(part["params"][param], list) else FAR_TOO_LARGE
                spec = json.loads(json.dumps(resolved))
                spec["components"][slot]["params"][param] = value
                with pytest.raises(SpecError, match=rf"\[{low}, {high}\]") as err:
                    resolve_spec(spec)
                assert err.value.path == f"components.{slot}.params.{param}"
                checked.add((component.kind, component.name, param))
    assert {("aligner", "attention", "chunk_size"), ("encoder", "ttsr_lte", "max_channels")} <= checked
    assert {("texture_fusion", "ttsr_csfi", "blocks"), ("decoder", "authors_fusion", "kernel_size")} <= checked


def test_param_bounds_must_name_real_parameters() -> None:
    registry = Registry()
    registry.register_kind("thing")

    class Typo(torch.nn.Module):
        PARAM_BOUNDS = {"chanels": (1, 8)}  # noqa: RUF012

        def __init__(self, channels: int = 4) -> None:
            super().__init__()

    with pytest.raises(RegistryError, match="chanels"):
        registry.register("thing", "typo", Typo)


def test_yaml_aliases_are_refused_so_a_bomb_costs_nothing(tmp_path) -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    lines.append("model: crossnet\ncomponents: {upsampler: {name: mdsr, params: {extra_scales: *h}}}")
    path = _write(tmp_path / "bomb.yaml", "\n".join(lines))
    assert path.stat().st_size < 600
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"bomb\.yaml.*aliases \(\*name\) are not supported"):
        load_spec(path)
    assert time.perf_counter() - start < 2


def test_recursive_alias_and_deep_nesting_are_refused(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"cycle\.yaml.*aliases .* not supported"):
        load_spec(_write(tmp_path / "cycle.yaml", "a: &a [*a]\n"))
    with pytest.raises(SpecError, match="deep"):
        load_spec(_write(tmp_path / "deep.yaml", "a: " + "[" * 500 + "]" * 500 + "\n"))
    with pytest.raises(SpecError, match="nested too deeply|deeper than"):
        load_spec(_write(tmp_path / "deep.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"))


def test_long_lists_are_refused_in_specs(tmp_path) -> None:
    with pytest.raises(SpecError, match="at most 1024"):
        resolve_spec(
            {**TINY_CROSSNET, "components": {"upsampler": {"name": "mdsr", "params": {"extra_scales": [2] * 10**5}}}}
        )


def test_forged_header_is_refused_without_reading_the_file(tmp_path) -> None:
    path = tmp_path / "liar.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(CheckpointError, match=r"liar\.safetensors.*header too large"):
        load_model(path)
    path.write_bytes(struct.pack("<Q", 60) + b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4000]}}'[:60])
    with pytest.raises(CheckpointError, match="liar.safetensors"):
        load_model(path)


def _header_only_file(path: Path, spec: dict, offsets) -> Path:
    """A safetensors file naming the tensors of ``spec``'s model, ``offsets(i, nbytes)`` each, no data."""
    from refsr_blocks.core.checkpoint import _ST_DTYPES

    with torch.device("meta"):
        state = build_model(spec).state_dict()
    header = {"__metadata__": {SPEC_KEY: json.dumps(spec), "format": "pt"}}
    for i, (name, t) in enumerate(sorted(state.items())):
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": offsets(i, t.nbytes)}
    digest = hashlib.sha256()  # consistent with the header, as a forger writes it: the bytes the ranges name
    for name in sorted(state):
        entry = header[name]
        digest.update(json.dumps([name, entry["dtype"], entry["shape"]]).encode() + b"\0")
        digest.update(b"\0" * (entry["data_offsets"][1] - entry["data_offsets"][0]))
    header["__metadata__"][DIGEST_KEY] = digest.hexdigest()
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    return path


@pytest.mark.parametrize("offsets", [lambda i, n: [0, 0], lambda i, n: [0, 8]], ids=["empty", "same-bytes"])
def test_byte_ranges_that_cannot_hold_the_tensors_are_refused_before_building(tiny, tmp_path, offsets) -> None:
    huge = json.loads(json.dumps(tiny.spec))
    huge["components"]["upsampler"]["params"].update(num_blocks=256, channels=1024)
    path = _header_only_file(tmp_path / "forged.safetensors", huge, offsets)
    assert path.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"forged\.safetensors.*not a readable safetensors file.*offset"):
        load_model(path)
    assert time.perf_counter() - start < 5  # 18.6 GiB would have been allocated before safetensors refused


def test_weights_of_another_shape_or_dtype_are_refused(tiny, tmp_path) -> None:
    good = save_model(tiny, tmp_path / "good.safetensors")
    tensors = load_file(str(good))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    wrong_dtype = {**tensors, name: tensors[name].to(torch.int32)}
    with pytest.raises(CheckpointError, match=rf"{name!r} is I32"):
        load_model(_resave(good, tmp_path / "int.safetensors", tensors=wrong_dtype))
    wrong_shape = {**tensors, name: torch.zeros(3, 3)}
    with pytest.raises(CheckpointError, match=rf"{name!r} is F32\[3, 3\]"):
        load_model(_resave(good, tmp_path / "shape.safetensors", tensors=wrong_shape))


# -- 2. the plugin-loading race -----------------------------------------------------------
def test_first_lookups_from_many_threads_wait_for_plugins() -> None:
    registry = Registry()
    registry.register_kind("thing")

    def slow_plugin() -> None:
        time.sleep(0.2)
        registry.register("thing", "from_plugin", torch.nn.Identity)

    registry.before_lookup = slow_plugin
    results: list[object] = []
    barrier = threading.Barrier(8)

    def lookup() -> None:
        barrier.wait()
        try:
            results.append(registry.get("thing", "from_plugin").name)
        except Exception as exc:  # recorded, then asserted on
            results.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["from_plugin"] * 8


# -- 3. plugins that exit or hang ---------------------------------------------------------
class _PluginObject:
    """A plugin object without hooks (pluggy needs a hashable object)."""


def _entry_point(name: str, load) -> SimpleNamespace:
    dist = SimpleNamespace(name=f"dist-{name}", version="1.0")
    return SimpleNamespace(name=name, value=f"{name}_module", dist=dist, load=load)


def _loaded(registry: Registry, *entry_points) -> tuple[PluginManager, list[warnings.WarningMessage]]:
    manager = PluginManager(registry, discover=lambda: entry_points)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager.load()
    return manager, [w for w in caught if issubclass(w.category, RefSRPluginWarning)]


def _registering(registry: Registry, name: str, then=None):
    def load():
        registry.register_kind("thing")
        registry.register("thing", name, torch.nn.Identity)
        if then is not None:
            then()
        return _PluginObject()

    return load


@pytest.mark.parametrize("exit_code", [0, 2, "usage: fake"])
def test_sys_exit_in_a_plugin_is_a_failed_plugin_not_the_hosts_exit(exit_code) -> None:
    registry = Registry()

    def leave() -> None:
        raise SystemExit(exit_code)

    manager, caught = _loaded(registry, _entry_point("quitter", _registering(registry, "q", leave)))
    assert len(caught) == 1 and "dist-quitter" in str(caught[0].message) and "SystemExit" in str(caught[0].message)
    assert "thing" not in registry.kinds  # rolled back
    assert manager.list_plugins()[0].status.startswith("failed: SystemExit")


def test_sys_exit_in_a_plugin_hook_is_caught_too() -> None:
    from refsr_blocks.core.hookspecs import hookimpl

    registry = Registry()

    class Hooked:
        @hookimpl
        def register_components(self, registry):
            registry.register_kind("thing")
            raise SystemExit(1)

    _, caught = _loaded(registry, _entry_point("hooked", Hooked))
    assert len(caught) == 1 and "SystemExit" in str(caught[0].message) and "thing" not in registry.kinds
    with pytest.raises(PluginError, match="SystemExit"):
        PluginManager(Registry(), discover=list).register_plugin(Hooked(), name="inline")


def test_a_hanging_plugin_is_given_up_on_and_cannot_register_later(monkeypatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV_VAR, "0.3")
    registry = Registry()
    release = threading.Event()
    woke = threading.Event()
    late_errors: list[BaseException] = []

    def hang() -> None:
        release.wait(10)
        try:
            registry.register("thing", "late", torch.nn.Identity)
        except BaseException as exc:  # what the abandoned plugin sees
            late_errors.append(exc)
        woke.set()

    good = _entry_point("good", lambda: registry.register_kind("other") and _PluginObject())
    start = time.perf_counter()
    manager, caught = _loaded(registry, _entry_point("sleeper", _registering(registry, "early", hang)), good)
    assert time.perf_counter() - start < 3
    assert len(caught) == 1 and "did not finish loading within 0.3 s" in str(caught[0].message)
    assert isinstance(manager.list_plugins()[0].error, PluginTimeoutError)
    assert "thing" not in registry.kinds and "other" in registry.kinds  # the next plugin still loaded
    release.set()
    assert woke.wait(5)
    assert "thing" not in registry.kinds and late_errors and isinstance(late_errors[0], RegistryError)


def test_plugin_lookups_during_loading_do_not_deadlock(monkeypatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV_VAR, "5")
    registry = Registry()
    registry.register_kind("thing")
    registry.register("thing", "base", torch.nn.Identity)
    manager = PluginManager(registry, discover=lambda: [_entry_point("looker", looker)])
    registry.before_lookup = manager.load

    def looker():
        registry.register("thing", "derived", registry.get("thing", "base").factory)  # a lookup while loading
        return _PluginObject()

    start = time.perf_counter()
    assert registry.get("thing", "derived").owner == "dist-looker"
    assert time.perf_counter() - start < 3


def test_ctrl_c_while_a_plugin_loads_undoes_it_and_propagates() -> None:
    registry = Registry()

    def interrupt() -> None:
        raise KeyboardInterrupt

    manager = PluginManager(registry, discover=lambda: [_entry_point("k", _registering(registry, "k", interrupt))])
    with pytest.raises(KeyboardInterrupt):
        manager.load()
    assert "thing" not in registry.kinds
    assert manager.list_plugins()[0].status.startswith("failed: interrupted")


# -- 5. weight digests --------------------------------------------------------------------
def test_a_flipped_bit_in_the_weights_is_caught_and_names_the_file(tiny, tmp_path) -> None:
    path = save_model(tiny, tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    for offset in (len(data) - 1, len(data) // 2 + len(data) // 4):
        flipped = bytearray(data)
        flipped[offset] ^= 0x10
        bad = tmp_path / f"flip{offset}.safetensors"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match=rf"flip{offset}\.safetensors.*damaged or were altered"):
            load_model(bad)


def test_a_file_without_a_digest_is_refused(tiny, tmp_path) -> None:
    path = save_model(tiny, tmp_path / "m.safetensors")
    meta = read_metadata(path)
    assert meta[DIGEST_KEY] == tensor_digest(load_file(str(path)))
    del meta[DIGEST_KEY]
    with pytest.raises(CheckpointError, match=r"undigested\.safetensors.*carries no weight digest"):
        load_model(_resave(path, tmp_path / "undigested.safetensors", metadata=meta))


def test_shipped_assets_carry_a_valid_digest() -> None:
    from refsr_blocks.assets import ASSETS_DIR
    from refsr_blocks.core.checkpoint import read_weights

    files = sorted(ASSETS_DIR.glob("*.safetensors"))
    assert files and all(read_weights(f)[1][DIGEST_KEY] for f in files)


def test_non_finite_weights_are_refused(tiny, tmp_path) -> None:
    path = save_model(tiny, tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    meta = {**read_metadata(path), DIGEST_KEY: tensor_digest(tensors)}  # a consistent digest: NaN saved on purpose
    with pytest.raises(CheckpointError, match=rf"nan\.safetensors.*not finite.*{name}"):
        load_model(_resave(path, tmp_path / "nan.safetensors", tensors=tensors, metadata=meta))


# -- 6. overrides and owners --------------------------------------------------------------
def test_overriding_a_built_in_warns_and_the_spec_records_the_owner(fresh_registry) -> None:
    from refsr_blocks.components.flows.flownets import FlowNetSPlus
    from refsr_blocks.core.registry import recording

    class Impostor(FlowNetSPlus):
        """Same weights, other code."""

    with recording("evil-plugin"), pytest.warns(RefSROwnerWarning, match="replaces flow component 'flownets_plus'"):
        fresh_registry.register("flow", "flownets_plus", Impostor, override=True)
    spec = build_model(TINY_CROSSNET).spec
    assert spec["components"]["flow"]["owner"] == "evil-plugin"
    assert "owner" not in spec["components"]["warper"]  # refsr_blocks' own: unchanged format
    # a spec naming another owner than the one registered warns when rebuilt
    with pytest.warns(RefSROwnerWarning, match="replaces flow component 'flownets_plus' of .* evil-plugin"):
        fresh_registry.register("flow", "flownets_plus", FlowNetSPlus, override=True, owner="refsr_blocks")
    with pytest.warns(
        RefSROwnerWarning, match="registered by 'evil-plugin', but here it is registered by 'refsr_blocks'"
    ):
        resolve_spec(spec)


def test_specs_without_owners_still_resolve(tiny) -> None:
    spec = json.loads(json.dumps(tiny.spec))
    assert "owner" not in json.dumps(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_spec(spec) == tiny.spec
    with pytest.raises(SpecError, match="owner"):
        resolve_spec({**spec, "components": {"flow": {"name": "flownets_plus", "owner": 3}}})


# -- 7. input and dtype edges -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_are_cast_at_the_boundary_and_in_fuse(tiny, dtype) -> None:
    lr, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = tiny(lr, ref)
        cast_lr, cast_ref = prepare_pair(tiny, lr.to(dtype), ref.to(dtype), 2)
        assert cast_lr.dtype == cast_ref.dtype == torch.float32
        tol = 0 if dtype == torch.float64 else 0.05
        assert torch.allclose(tiny(cast_lr, cast_ref), expected, atol=tol + 1e-5)
        up = tiny.upsampler(lr)
        out = tiny.fuse(up.to(dtype), ref.to(dtype))
        assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=tol + 1e-5)
        mixed = tiny.fuse(up, ref.to(dtype))  # one input in another dtype: both are cast
        assert mixed.dtype == torch.float32 and torch.allclose(mixed, expected, atol=tol + 1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (torch.rand(1, 3, 0, 8), torch.rand(1, 3, 0, 16)), "empty"),
        (lambda: (torch.rand(1, 3, 8, 8, device="meta"), torch.rand(1, 3, 16, 16, device="meta")), "meta device"),
        (lambda: (torch.rand(1, 3, 8, 8).to_sparse(), torch.rand(1, 3, 16, 16)), "to_dense"),
        (lambda: (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16, device="meta")), "meta device"),
        (lambda: (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), torch.rand(1, 3, 16, 16)), "/ 255"),
    ],
)
def test_bad_tensors_get_the_librarys_error(tiny, make, message) -> None:
    lr, ref = make()
    with pytest.raises(InputError, match=message):
        check_pair(lr, ref, 2)
    up = torch.nn.functional.interpolate(lr, scale_factor=2) if lr.layout == torch.strided and lr.numel() else lr
    with pytest.raises(InputError, match=message if message != "/ 255" else "floating-point"):
        tiny.fuse(up, ref)


@pytest.mark.parametrize(
    "lr, message",
    [
        (torch.rand(1, 3, 0, 8), "empty"),
        (torch.rand(1, 3, 8, 8, device="meta"), "meta device"),
        (torch.rand(1, 3, 8, 8).to_sparse(), "to_dense"),
    ],
)
def test_model_forward_validates_lr_before_upsampling(tiny, lr, message) -> None:
    with pytest.raises(InputError, match=message):
        tiny(lr, torch.rand(1, 3, 16, 16))


def test_0_255_images_are_refused_at_the_boundary_and_in_debug_mode(tiny) -> None:
    lr, ref = torch.rand(1, 3, 8, 8) * 255, torch.rand(1, 3, 16, 16) * 255
    with pytest.raises(InputError, match="divide a 0–255 image by 255"):
        prepare_pair(tiny, lr, ref, 2)
    with debug_checks_on(), pytest.raises(InputError, match="0–255"):
        tiny(lr, ref)


def test_fuse_validates_its_inputs(tiny) -> None:
    with pytest.raises(InputError, match="upsampled must be B×3×H×W"):
        tiny.fuse(torch.rand(3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(InputError, match="same shape"):
        tiny.fuse(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 8))
    with pytest.raises(InputError, match="meta device"):
        check_fuse_inputs(torch.rand(1, 3, 4, 4, device="meta"), torch.rand(1, 3, 4, 4), tiny)


# -- 8. one error line, never a traceback ------------------------------------------------
HOSTILE_SPECS = {
    "int_key.yaml": "model: crossnet\n4: x\n",
    "bool_key.yaml": "model: crossnet\nyes: 1\n",
    "null_key.yaml": "model: crossnet\n~: 1\n",
    "null_channels.yaml": "model: crossnet\nparams: {channels: ~}\n",
    "inf_width.yaml": "model: crossnet\ncomponents: {flow: {name: flownets_plus, params: {width: .inf}}}\n",
    "nan_param.yaml": "model: crossnet\nparams: {channels: .nan}\n",
    "deep.yaml": "model: crossnet\nparams: {channels: " + "[" * 500 + "]" * 500 + "}\n",
    "deep.json": '{"model": "crossnet", "params": {"channels": ' + "[" * 500 + "]" * 500 + "}}",
    "tag.yaml": "model: !!python/object/apply:os.system ['true']\n",
    "duplicate.yaml": "model: crossnet\nmodel: crossnet_lite\n",
    "duplicate.json": '{"model": "crossnet", "model": "x"}',
    "version_true.yaml": "model: crossnet\nversion: true\n",
    "scales_list.yaml": "model: crossnet\ncomponents: {upsampler: {name: mdsr, params: {extra_scales: [2.5]}}}\n",
    "params_zero.yaml": "model: crossnet\nparams: 0\n",
    "params_false.yaml": "model: crossnet\nparams: false\n",
    "params_list.yaml": "model: crossnet\nparams: []\n",
    "components_zero.yaml": "model: crossnet\ncomponents: 0\n",
    "residual_null.yaml": "model: crossnet\nparams: {residual: null}\n",
    "top_list.yaml": "- 1\n- 2\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SPECS))
def test_hostile_spec_files_give_one_error_line(name, tmp_path, capsys) -> None:
    path = tmp_path / name
    path.write_text(HOSTILE_SPECS[name], encoding="utf-8")
    assert cli_main(["spec", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["spec", "summary"])
def test_errors_in_a_spec_file_name_the_file(command, tmp_path, capsys) -> None:
    path = tmp_path / "bad_width.yaml"
    path.write_text("model: crossnet\ncomponents: {flow: {name: flownets_plus, params: {width: .inf}}}\n")
    assert cli_main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert "components.flow.params.width" in err and "bad_width.yaml" in err and err.count("\n") == 1


def test_non_utf8_spec_names_the_file(tmp_path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: crossnet # caf\xe9\n".encode("latin-1"))
    assert cli_main(["spec", str(path)]) == 2
    assert "latin1.yaml" in capsys.readouterr().err


def test_deeply_nested_checkpoint_metadata_is_an_error(tiny, tmp_path) -> None:
    for depth in (600, 200_000):
        path = tmp_path / f"deep{depth}.safetensors"
        spec = '{"model": "crossnet", "params": {"channels": ' + "[" * depth + "]" * depth + "}}"
        save_file({"w": torch.zeros(1)}, str(path), metadata={SPEC_KEY: spec})
        with pytest.raises(CheckpointError, match=rf"deep{depth}\.safetensors.*(deep|characters)"):
            load_model(path)


def test_a_full_disk_is_a_checkpoint_error_naming_the_file(tiny, tmp_path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr("refsr_blocks.core.checkpoint.save_file", full)
    with pytest.raises(CheckpointError, match=r"cannot write '.*m\.safetensors' \(disk full or not writable\?\)"):
        save_model(tiny, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


# -- 9. leniency ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, path",
    [
        ({"model": "crossnet", "params": 0}, "params"),
        ({"model": "crossnet", "params": False}, "params"),
        ({"model": "crossnet", "params": []}, "params"),
        ({"model": "crossnet", "components": {"flow": {"name": "flownets", "params": []}}}, "components.flow.params"),
        ({"model": "crossnet", "params": {"residual": None}}, "params.residual"),
        ({"model": "crossnet", "version": True}, "version"),
        (
            {"model": "crossnet", "components": {"upsampler": {"name": "mdsr", "params": {"extra_scales": [2.5]}}}},
            "extra_scales",
        ),
    ],
)
def test_lenient_values_are_refused(spec, path) -> None:
    with pytest.raises(SpecError) as err:
        resolve_spec(spec)
    assert err.value.path.startswith(path) or path in err.value.path


def test_yaml_keys_must_be_unique_strings() -> None:
    with pytest.raises(Exception, match="duplicate key 'a'"):
        safe_load_yaml("a: 1\nb: 2\na: 3\n")
    with pytest.raises(Exception, match="keys must be strings.*quote it: '4':"):
        safe_load_yaml("4: x\n")
    assert safe_load_yaml("other: {<<: {x: 1}, y: 2}\n") == {"other": {"x": 1, "y": 2}}
    with pytest.raises(Exception, match="aliases"):  # merge keys name an anchor: refused with every alias
        safe_load_yaml("base: &b {x: 1}\nother: {<<: *b, y: 2}\n")


def test_viz_and_demo_accept_the_shipped_names_sr_accepts() -> None:
    from refsr_blocks.assets import list_pretrained, load_pretrained
    from refsr_blocks.tools.cli import _load_checkpoint

    name = list_pretrained()[-1]
    model = _load_checkpoint(Path(name), "cpu")
    assert model.spec == load_pretrained(name).spec and not model.training
