"""Contract classes, one per component kind, and :func:`check_component`.

Each contract builds the component under test with small, kind-specific arguments (the ones
an architecture would inject, such as ``scales``) plus the class's ``params``, and checks
one rule per ``test_*`` method. Every method is usable from pytest (subclass the contract
with a ``Test`` prefix) and from :func:`check_component`, which runs them all (for warpers,
all but the hypothesis properties: see :class:`WarperContract`).
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..core.registry import REGISTRY, Component
from ..ops.flow import level_size

__all__ = [
    "AlignerContract",
    "ComponentContract",
    "DecoderContract",
    "EncoderContract",
    "FlowContract",
    "LossContract",
    "ModelContract",
    "PrealignContract",
    "TextureFusionContract",
    "UpsamplerContract",
    "WarpCase",
    "WarperContract",
    "bilinear_reference",
    "check_component",
    "contract_for",
    "nearest_reference",
    "property_test",
    "read_pixels",
    "sample_positions",
    "warp_cases",
]

#: Image sizes every contract runs at: one odd, one even (H, W).
SIZES: tuple[tuple[int, int], ...] = ((29, 43), (32, 48))


def devices() -> list[str]:
    """Devices available for the device-placement check."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _close(a: Tensor, b: Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    if not torch.allclose(a, b, atol=atol, rtol=rtol):
        raise AssertionError(f"{what}: max abs difference {(a - b).abs().max().item():.3g} > atol {atol}")


def _flatten(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    raise AssertionError(f"output must be a tensor or a list of tensors, got {type(out).__name__}")


def _map_tensors(x: Any, fn: Any) -> Any:
    """``fn`` applied to every tensor of a nested list/tuple structure (``None`` kept)."""
    if isinstance(x, Tensor):
        return fn(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_map_tensors(v, fn) for v in x)
    return x


def _tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    return []


class ComponentContract:
    """Base contract; subclasses set ``kind`` and the rules. Set ``name`` and ``params``.

    Attributes:
        name: the registered name of the component under test.
        params: constructor parameters (besides the injected ones).
        batch_atol: tolerance for the batch-independence check.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    batch_atol: ClassVar[float] = 1e-5
    #: indices of the inputs that must receive a gradient (``None``: all of them).
    grad_inputs: ClassVar[tuple[int, ...] | None] = None
    #: the generic rules run at this size (an index into :data:`SIZES`).
    rule_size: ClassVar[int] = 0
    #: the gradients of checked inputs (and, with ``nonzero_param_grads``, of parameters) must not be all zero.
    nonzero_input_grads: ClassVar[bool] = False
    nonzero_param_grads: ClassVar[bool] = False
    #: the attributes passed as the arguments an architecture injects (``scales``, ``in_channels``, ...).
    injects: ClassVar[tuple[str, ...]] = ()
    #: the image channels an architecture injects as ``in_channels`` (the generated inputs are RGB).
    in_channels: ClassVar[int] = 3
    #: for a kind called on images alone: how many B×3×H×W images one call takes.
    images: ClassVar[int] = 0

    # -- hooks for subclasses -------------------------------------------------------------
    def injected(self) -> dict[str, Any]:
        """The arguments an architecture would pass: by default the attributes named by ``injects``."""
        return {name: getattr(self, name) for name in self.injects}

    def make_inputs(
        self, size: tuple[int, int], batch: int = 2, generator: torch.Generator | None = None
    ) -> tuple[Tensor, ...]:
        """Inputs for one call, ``batch`` items, images of ``size`` (by default ``images`` random images)."""
        if not self.images:
            raise NotImplementedError(f"{type(self).__name__} must define make_inputs or images")
        return tuple(torch.rand(batch, 3, *size, generator=generator) for _ in range(self.images))

    def check_output(self, out: Any, inputs: tuple[Tensor, ...], module: nn.Module) -> None:
        """Kind-specific rules on the output of one call."""

    # -- helpers ------------------------------------------------------------------------
    @property
    def component(self) -> Component:
        return REGISTRY.get(self.kind, self.name)

    def build(self, **params: Any) -> nn.Module:
        """The component with the injected arguments it accepts plus ``params``."""
        comp = self.component
        injected = {k: v for k, v in self.injected().items() if k in comp.defaults or comp.accepts_var_kwargs}
        torch.manual_seed(0)
        return comp.factory(**{**self.params, **params}, **injected)

    def inputs(self, size: tuple[int, int], batch: int = 2, seed: int = 0) -> tuple[Tensor, ...]:
        return self.make_inputs(size, batch, torch.Generator().manual_seed(seed))

    def call(self, module: nn.Module, inputs: Sequence[Any]) -> Any:
        return module(*inputs)

    def outputs(self, out: Any) -> list[Tensor]:
        """The tensors of one call's output."""
        return _flatten(out)

    def checked_inputs(self, inputs: Sequence[Any]) -> Sequence[int]:
        """Positions of the inputs whose tensors must all receive a gradient."""
        return range(len(inputs)) if self.grad_inputs is None else self.grad_inputs

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, failing by name (not inside autograd) when no gradient can flow."""
        assert isinstance(loss, Tensor) and loss.requires_grad, (
            f"{self.kind} {self.name!r}: its output carries no gradient: it depends on no parameter and no input "
            "(a constant such as a zero flow, or computed under no_grad/detach), so nothing could be trained through it"
        )
        loss.backward()

    # -- rules shared by every kind -----------------------------------------------------
    def test_registered(self) -> None:
        """The component is registered under its kind and builds."""
        assert self.name, f"{type(self).__name__} must set `name`"
        assert isinstance(self.build(), nn.Module), f"{self.kind} {self.name!r} must build an nn.Module"

    def test_output_contract_odd_and_even_sizes(self) -> None:
        """Kind-specific output shapes hold for odd and even image sizes."""
        module = self.build().eval()
        for size in SIZES:
            inputs = self.inputs(size)
            with torch.no_grad():
                out = self.call(module, inputs)
            self.check_output(out, inputs, module)

    def test_dtype_preserved(self) -> None:
        """Float32 in gives float32 out, float64 in gives float64 out."""
        for dtype in (torch.float32, torch.float64):
            module = self.build().to(dtype).eval()
            inputs = _map_tensors(self.inputs(SIZES[self.rule_size], batch=1), lambda t, d=dtype: t.to(d))
            with torch.no_grad():
                outs = self.outputs(self.call(module, inputs))
            bad = [o.dtype for o in outs if o.dtype != dtype]
            assert not bad, f"{self.kind} {self.name!r}: {dtype} inputs gave outputs of dtype {bad}"

    def test_batch_independence(self) -> None:
        """Each batch item's output depends on that item only."""
        module = self.build().eval()
        inputs = self.inputs(SIZES[self.rule_size], batch=2)
        with torch.no_grad():
            together = self.outputs(self.call(module, inputs))
            alone = self.outputs(self.call(module, _map_tensors(inputs, lambda t: t[1:])))
        if together[0].ndim == 0:  # a loss: a scalar over the batch, nothing to split
            return
        for i, (t, a) in enumerate(zip(together, alone)):
            _close(t[1:], a, f"{self.kind} {self.name!r} output {i}: item 1 alone vs in a batch", self.batch_atol)

    def test_device_placement(self) -> None:
        """Outputs live on the device of the module and inputs (CUDA when available)."""
        for device in devices():
            module = self.build().to(device).eval()
            stray = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.device.type != device]
            assert not stray, f"{self.kind} {self.name!r}: tensors not moved by .to({device!r}): {stray}"
            inputs = _map_tensors(self.inputs(SIZES[self.rule_size], batch=1), lambda t, d=device: t.to(d))
            with torch.no_grad():
                outs = self.outputs(self.call(module, inputs))
            assert all(o.device.type == device for o in outs), f"{self.kind} {self.name!r}: output left {device}"

    def test_gradient_flow(self) -> None:
        """Every parameter, and every checked input, is reached by a finite gradient.

        (A gradient that is zero at initialisation, e.g. behind a zero-initialised norm
        layer, still counts unless the kind asks for non-zero ones; a parameter the output
        does not depend on gets none.)
        """
        module = self.build().train()
        inputs = _map_tensors(self.inputs(SIZES[self.rule_size], batch=1), lambda t: t.requires_grad_(True))
        outs = self.outputs(self.call(module, inputs))
        weights = torch.Generator().manual_seed(1)
        self.backward(sum((o * torch.rand(o.shape, generator=weights)).sum() for o in outs))
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        dead = [n for n, p in params if p.grad is None or (self.nonzero_param_grads and not p.grad.any())]
        assert not dead, f"{self.kind} {self.name!r}: parameters without gradient: {dead}"
        bad = [n for n, p in params if not torch.isfinite(p.grad).all()]
        assert not bad, f"{self.kind} {self.name!r}: non-finite gradients in {bad}"
        for i in self.checked_inputs(inputs):
            tensors = _tensors(inputs[i])
            missing = [k for k, t in enumerate(tensors) if t.grad is None or not torch.isfinite(t.grad).all()]
            missing += [
                k for k, t in enumerate(tensors) if self.nonzero_input_grads and not (t.grad is None or t.grad.any())
            ]
            assert not missing, (
                f"{self.kind} {self.name!r}: input {i} tensors {missing} get no finite, non-zero gradient"
            )

    def test_spec_round_trip(self) -> None:
        """The resolved parameters survive JSON, and rebuild the same weights layout."""
        comp = self.component
        settable = {
            k: v for k, v in comp.defaults.items() if k not in self.injected() and v is not inspect.Parameter.empty
        }
        resolved = {**settable, **self.params}
        try:
            text = json.dumps(resolved)
        except TypeError as err:
            raise AssertionError(f"{self.kind} {self.name!r}: default parameters are not plain data: {err}") from None
        first = self.build(**resolved)
        second = self.build(**json.loads(text))
        a, b = first.state_dict(), second.state_dict()
        assert a.keys() == b.keys(), f"{self.kind} {self.name!r}: rebuilt state_dict keys differ"
        assert all(a[k].shape == b[k].shape for k in a), f"{self.kind} {self.name!r}: rebuilt shapes differ"
        second.load_state_dict(a, strict=True)

    # -- running outside pytest -----------------------------------------------------------
    def rules(self) -> list[str]:
        return sorted(n for n in dir(self) if n.startswith("test_"))

    def run_all(self) -> None:
        """Run every rule; raise AssertionError naming the first one that fails."""
        for rule in self.rules():
            try:
                getattr(self, rule)()
            except AssertionError as err:
                raise AssertionError(f"[{rule}] {err}") from err
            except Exception as err:  # a crash inside a rule still names the rule it broke
                raise AssertionError(f"[{rule}] {self.kind} {self.name!r} raised {type(err).__name__}: {err}") from err


class UpsamplerContract(ComponentContract):
    """``upsampler(lr)``: B×C×h×w → B×C×(s·h)×(s·w)."""

    kind = "upsampler"
    scale: ClassVar[int] = 2
    injects = ("scale", "in_channels")

    def make_inputs(self, size, batch=2, generator=None):
        h, w = (max(1, s // self.scale) for s in size)
        return (torch.rand(batch, 3, h, w, generator=generator),)

    def check_output(self, out, inputs, module):
        b, c, h, w = inputs[0].shape
        expected = (b, c, h * self.scale, w * self.scale)
        assert isinstance(out, Tensor) and tuple(out.shape) == expected, (
            f"upsampler {self.name!r}: expected {expected}, got {getattr(out, 'shape', type(out))}"
        )


class FlowContract(ComponentContract):
    """``flow(target, ref)`` → ``scales`` flows, finest first, level k B×2×⌈H/2^k⌉×⌈W/2^k⌉."""

    kind = "flow"
    scales: ClassVar[int] = 3
    injects = ("scales", "in_channels")
    images = 2

    def check_output(self, out, inputs, module):
        b, _, h, w = inputs[0].shape
        assert isinstance(out, (list, tuple)), f"flow {self.name!r} must return a list, got {type(out).__name__}"
        assert len(out) == self.scales, f"flow {self.name!r}: {len(out)} levels returned, scales={self.scales}"
        for k, f in enumerate(out):
            expected = (b, 2, *level_size(h, w, k))
            assert tuple(f.shape) == expected, (
                f"flow {self.name!r} level {k}: expected {expected}, got {tuple(f.shape)}"
            )
            assert torch.isfinite(f).all(), f"flow {self.name!r} level {k} is not finite"


class PrealignContract(ComponentContract):
    """``prealign(target, ref)`` → B×2 whole-pixel shifts with ``target[p] ≈ ref[p + shift]``."""

    kind = "prealign"
    images = 2

    def check_output(self, out, inputs, module):
        b = inputs[0].shape[0]
        assert isinstance(out, Tensor) and tuple(out.shape) == (b, 2), (
            f"prealign {self.name!r}: expected ({b}, 2), got {getattr(out, 'shape', type(out))}"
        )
        assert torch.equal(out, out.round()), f"prealign {self.name!r}: shifts must be whole pixels, got {out}"

    def test_gradient_flow(self) -> None:
        """A pre-alignment is a constant for the optimiser: its output carries no gradient."""
        module = self.build().train()
        inputs = tuple(t.requires_grad_(True) for t in self.inputs(SIZES[0], batch=1))
        out = module(*inputs)
        assert not out.requires_grad, f"prealign {self.name!r}: the shift must not require a gradient"

    def test_identical_images_give_zero_shift(self) -> None:
        """A reference equal to the target needs no shift."""
        module = self.build().eval()
        target, _ = self.inputs((40, 56))
        assert module(target, target.clone()).abs().max() == 0, (
            f"prealign {self.name!r}: nonzero shift for ref == target"
        )


class EncoderContract(ComponentContract):
    """``encoder(image)`` → ``scales`` maps, level k B×out_channels[k]×⌈H/2^k⌉×⌈W/2^k⌉."""

    kind = "encoder"
    scales: ClassVar[int] = 3
    channels: ClassVar[int] = 8
    injects = ("scales", "in_channels", "channels")
    images = 1

    def check_output(self, out, inputs, module):
        b, _, h, w = inputs[0].shape
        channels = getattr(module, "out_channels", None)
        assert channels is not None and len(channels) == self.scales, (
            f"encoder {self.name!r} must expose out_channels with {self.scales} entries, got {channels!r}"
        )
        assert len(out) == self.scales, f"encoder {self.name!r}: {len(out)} levels, scales={self.scales}"
        for k, (f, c) in enumerate(zip(out, channels)):
            expected = (b, c, *level_size(h, w, k))
            assert tuple(f.shape) == expected, (
                f"encoder {self.name!r} level {k}: expected {expected}, got {tuple(f.shape)}"
            )


class DecoderContract(ComponentContract):
    """``decoder(lr_feats, warped_ref_feats)`` → B×out_channels×H×W."""

    kind = "decoder"
    rule_size, grad_inputs, nonzero_input_grads, nonzero_param_grads = 1, (0,), True, True
    level_channels: ClassVar[tuple[int, ...]] = (6, 7, 8)
    # The model pads to a multiple of 2^(levels-1), so decoders see exact halvings.
    sizes: ClassVar[tuple[tuple[int, int], ...]] = ((28, 44), (32, 48))

    def injected(self) -> dict[str, Any]:
        return {
            "lr_channels": list(self.level_channels),
            "ref_channels": list(self.level_channels),
            "out_channels": 3,
            "channels": 8,
        }

    def make_inputs(self, size, batch=2, generator=None):
        h, w = size
        h, w = h - h % 4, w - w % 4
        feats = [
            torch.rand(batch, c, h // 2**k, w // 2**k, generator=generator) for k, c in enumerate(self.level_channels)
        ]
        refs = [torch.rand_like(f) for f in feats]
        return feats, refs

    def check_output(self, out, inputs, module):
        lr = inputs[0]
        b, _, h, w = lr[0].shape
        assert isinstance(out, Tensor) and tuple(out.shape) == (b, 3, h, w), (
            f"decoder {self.name!r}: expected {(b, 3, h, w)}, got {getattr(out, 'shape', type(out))}"
        )


class LossContract(ComponentContract):
    """``loss(pred, target)`` → a scalar; near zero for equal inputs, larger when they differ."""

    kind = "loss"
    images = 2

    def check_output(self, out, inputs, module):
        assert isinstance(out, Tensor) and out.ndim == 0, f"loss {self.name!r} must return a scalar tensor"
        assert torch.isfinite(out), f"loss {self.name!r} is not finite"

    def test_zero_for_equal_inputs(self) -> None:
        """Equal inputs give (near) zero, different inputs a larger value."""
        module = self.build()
        pred, target = self.inputs(SIZES[0])
        same, different = module(pred, pred.clone()), module(pred, target)
        assert same.item() <= 1e-2, f"loss {self.name!r} of equal inputs is {same.item():.3g}"
        assert different.item() > same.item(), f"loss {self.name!r} does not grow with the error"


class ModelContract(ComponentContract):
    """A model architecture: ``model(lr, ref)`` → B×3×(s·h)×(s·w) for any size.

    ``params`` is a partial spec (``{"params": ..., "components": ...}``) applied to the
    architecture ``name``; keep it small so the checks run fast.
    """

    kind = "model"
    upscale: ClassVar[int] = 2
    batch_atol: ClassVar[float] = 1e-4

    def build(self, **params: Any) -> nn.Module:
        from ..core.build import build_model

        spec = copy.deepcopy({**self.params, **params})
        spec.setdefault("params", {})["upscale"] = self.upscale
        torch.manual_seed(0)
        return build_model({"model": self.name, **spec})

    def make_inputs(self, size, batch=2, generator=None):
        h, w = (max(1, s // self.upscale) for s in size)
        lr = torch.rand(batch, 3, h, w, generator=generator)
        ref = torch.rand(batch, 3, h * self.upscale, w * self.upscale, generator=generator)
        return lr, ref

    def check_output(self, out, inputs, module):
        ref = inputs[1]
        assert isinstance(out, Tensor) and out.shape == ref.shape, (
            f"model {self.name!r}: expected {tuple(ref.shape)}, got {getattr(out, 'shape', type(out))}"
        )

    def test_spec_round_trip(self) -> None:
        """``build_model(model.spec)`` rebuilds the architecture; its state_dict loads strictly."""
        from ..core.build import build_model

        model = self.build()
        again = build_model(json.loads(json.dumps(model.spec)))
        assert again.spec == model.spec, f"model {self.name!r}: spec changed on rebuild"
        again.load_state_dict(model.state_dict(), strict=True)


def contract_for(kind: str) -> type[ComponentContract] | None:
    """The conformance class registered with ``kind`` (``None`` if the kind has none)."""
    from ..core.registry import REGISTRY

    return REGISTRY.get_kind(kind).contract_class()


def check_component(kind: str, name: str, params: dict[str, Any] | None = None) -> None:
    """Check the registered component ``kind/name`` against its kind's contract.

    Args:
        kind: the component kind.
        name: its registered name.
        params: constructor parameters (for ``"model"``: a partial spec); keep sizes small.

    Raises:
        AssertionError: naming the rule that failed and what was wrong.
    """
    base = contract_for(kind)
    if base is None:
        raise ValueError(f"kind {kind!r} was registered without a contract, so there is nothing to check")
    contract_cls = type(f"{kind}_{name}_contract", (base,), {"name": name, "params": dict(params or {})})
    contract_cls().run_all()


# -- aligners and texture fusion (the attention-based RefSR kinds) ------------------------
class _NestedInputsContract(ComponentContract):
    """Kinds whose inputs and outputs are (lists of) tensors: the generic rules on every tensor of
    them; the tensors of the inputs at ``grad_groups`` must all receive a non-zero gradient."""

    rule_size, nonzero_input_grads = 1, True
    grad_groups: ClassVar[tuple[int, ...]] = ()

    def outputs(self, out: Any) -> list[Tensor]:
        return _tensors(out)

    def checked_inputs(self, inputs: Sequence[Any]) -> Sequence[int]:
        return self.grad_groups


class AlignerContract(_NestedInputsContract):
    """``aligner(target_feats, ref_feats, target=, refs=)`` → ``{"aligned", "confidence", ...}``.

    Three levels (exact halvings, as the models pad), one reference on the target grid; the
    output levels must be on the target grid with the reference's channels, the reference
    features must receive a gradient, and the aligner must either take references of any
    size and number (attention) or refuse them with an ``InputError`` (``grid_bound``).
    """

    kind = "aligner"
    target_channels: ClassVar[tuple[int, ...]] = (6, 7, 8)
    #: differs from the target's except at the coarsest level (attention matches there, in
    #: one embedding space).
    ref_channels: ClassVar[tuple[int, ...]] = (5, 7, 8)
    grad_groups = (1,)
    batch_atol = 1e-4

    def injected(self) -> dict[str, Any]:
        return {
            "scales": len(self.target_channels),
            "in_channels": 3,
            "lr_channels": list(self.target_channels),
            "ref_channels": list(self.ref_channels),
        }

    def _pyramid(self, channels: Sequence[int], batch: int, h: int, w: int, generator: Any) -> list[Tensor]:
        return [torch.rand(batch, c, h // 2**k, w // 2**k, generator=generator) for k, c in enumerate(channels)]

    def make_inputs(self, size, batch=2, generator=None):
        h, w = size[0] - size[0] % 4, size[1] - size[1] % 4
        target = torch.rand(batch, 3, h, w, generator=generator)
        ref = (target + 0.1 * torch.rand(batch, 3, h, w, generator=generator)).clamp(0, 1)
        target_feats = self._pyramid(self.target_channels, batch, h, w, generator)
        ref_feats = [self._pyramid(self.ref_channels, batch, h, w, generator)]
        return target_feats, ref_feats, target, [ref]

    def call(self, module: nn.Module, inputs: Sequence[Any]) -> Any:
        out = module(inputs[0], inputs[1], target=inputs[2], refs=inputs[3])
        assert isinstance(out, dict) and "aligned" in out and "confidence" in out, (
            f"aligner {self.name!r} must return a dict with 'aligned' and 'confidence'"
        )
        return [out["aligned"], [c for c in out["confidence"] if c is not None]]

    def check_output(self, out, inputs, module):
        aligned, confidence = out
        target_feats = inputs[0]
        assert len(aligned) == len(target_feats), (
            f"aligner {self.name!r}: {len(aligned)} levels for {len(target_feats)}"
        )
        for k, (a, t) in enumerate(zip(aligned, target_feats)):
            expected = (t.shape[0], self.ref_channels[k], *t.shape[-2:])
            assert tuple(a.shape) == expected, (
                f"aligner {self.name!r} level {k}: expected {expected}, got {tuple(a.shape)}"
            )
        for c in confidence:
            assert c.shape[:2] == (target_feats[0].shape[0], 1), f"aligner {self.name!r}: confidence {tuple(c.shape)}"

    def test_references_of_any_size_or_a_clear_refusal(self) -> None:
        """Two references of other sizes: aligned on the target grid, or InputError if grid-bound."""
        from ..core.errors import InputError

        module = self.build().eval()
        target_feats, _, target, _ = self.inputs(SIZES[1], batch=1)
        g = torch.Generator().manual_seed(3)
        sizes = ((20, 36), (44, 28))
        refs = [torch.rand(1, 3, *s, generator=g) for s in sizes]
        ref_feats = [self._pyramid(self.ref_channels, 1, *s, g) for s in sizes]
        if getattr(module, "grid_bound", False):
            try:
                module(target_feats, ref_feats, target=target, refs=refs)
            except InputError:
                return
            raise AssertionError(f"grid-bound aligner {self.name!r} accepted two references off the target grid")
        with torch.no_grad():
            out = self.call(module, (target_feats, ref_feats, target, refs))
        self.check_output(out, (target_feats,), module)


class TextureFusionContract(_NestedInputsContract):
    """``fusion(lr, textures, confidence)`` → B×3×(s·h)×(s·w), textures finest first."""

    kind = "texture_fusion"
    upscale: ClassVar[int] = 4
    texture_channels: ClassVar[tuple[int, ...]] = (4, 5, 6)
    grad_groups = (0, 1, 2)

    def injected(self) -> dict[str, Any]:
        return {
            "texture_channels": list(self.texture_channels),
            "upscale": self.upscale,
            "in_channels": 3,
            "out_channels": 3,
            "channels": 8,
        }

    def make_inputs(self, size, batch=2, generator=None):
        h, w = max(1, size[0] // self.upscale), max(1, size[1] // self.upscale)
        levels = len(self.texture_channels)
        lr = torch.rand(batch, 3, h, w, generator=generator)
        textures, confidence = [], []
        for k, c in enumerate(self.texture_channels):
            f = 2 ** (levels - 1 - k)
            textures.append(torch.rand(batch, c, h * f, w * f, generator=generator))
            confidence.append(torch.rand(batch, 1, h * f, w * f, generator=generator))
        return lr, textures, confidence

    def call(self, module: nn.Module, inputs: Sequence[Any]) -> Any:
        return module(inputs[0], inputs[1], inputs[2])

    def check_output(self, out, inputs, module):
        b, _, h, w = inputs[0].shape
        expected = (b, 3, h * self.upscale, w * self.upscale)
        assert isinstance(out, Tensor) and tuple(out.shape) == expected, (
            f"texture fusion {self.name!r}: expected {expected}, got {getattr(out, 'shape', type(out))}"
        )

    def test_textures_matter(self) -> None:
        """Changing the textures changes the output (the fusion reads them)."""
        module = self.build().eval()
        lr, textures, confidence = self.inputs(SIZES[1], batch=1)
        with torch.no_grad():
            a = module(lr, textures, confidence)
            b = module(lr, [t + 1.0 for t in textures], confidence)
        assert not torch.allclose(a, b), f"texture fusion {self.name!r} ignores its textures"


# -- warpers: the generic rules and the properties of a backward warp ----------------------
@dataclass(frozen=True)
class WarpCase:
    """One random warping problem; every tensor is derived from ``seed``.

    Attributes:
        batch, channels, height, width: the shape of ``x``.
        seed: seeds the image and flow generators.
        magnitude: flows are drawn in ``[-magnitude, magnitude]`` pixels.
    """

    batch: int
    channels: int
    height: int
    width: int
    seed: int
    magnitude: float = 4.0

    def _generator(self, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 16 + stream)

    @property
    def flow_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 2, self.height, self.width)

    def image(self, dtype: torch.dtype = torch.float32, stream: int = 0) -> Tensor:
        """A B×C×H×W image, uniform in [0, 1) (``stream`` picks an independent one)."""
        shape = (self.batch, self.channels, self.height, self.width)
        return torch.rand(shape, generator=self._generator(stream), dtype=torch.float64).to(dtype)

    def flow(self, dtype: torch.dtype = torch.float32, tie_free: bool = False) -> Tensor:
        """A random flow in ``[-magnitude, magnitude]``, with special values mixed in.

        About a quarter of the displacements are integers and, unless ``tie_free``, an
        eighth are half-integers (the ties of nearest-neighbour rounding). With
        ``tie_free`` every fractional part is kept at least 0.1 away from 0.5.
        """
        g = self._generator(1)
        flow = (torch.rand(self.flow_shape, generator=g, dtype=torch.float64) * 2 - 1) * self.magnitude
        pick = torch.rand(self.flow_shape, generator=g, dtype=torch.float64)
        flow = torch.where(pick < 0.25, flow.round(), flow)
        if tie_free:
            whole = flow.round()  # fractional part in [-0.5, 0.5] -> keep it in [-0.4, 0.4]
            flow = whole + (flow - whole).clamp(-0.4, 0.4)
        else:
            flow = torch.where((pick >= 0.25) & (pick < 0.375), flow.floor() + 0.5, flow)
        return flow.to(dtype)

    def integer_flow(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """A random per-pixel integer flow in ``[-magnitude - 1, magnitude + 1]``."""
        bound = int(self.magnitude) + 1
        return torch.randint(-bound, bound + 1, self.flow_shape, generator=self._generator(2)).to(dtype)

    def shifts(self) -> Tensor:
        """One integer shift ``(dx, dy)`` per batch item, B×2, up to one image size past the border."""
        g = self._generator(3)
        dx = torch.randint(-self.width - 1, self.width + 2, (self.batch,), generator=g)
        dy = torch.randint(-self.height - 1, self.height + 2, (self.batch,), generator=g)
        return torch.stack((dx, dy), 1)

    def interior_flow(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """A flow whose sample positions are inside the image and 0.1 px or more from any integer.

        Needs ``height, width >= 2``. Used for gradient checks: there every warper is smooth
        in the flow (no pixel boundary, no border clamp nearby).
        """
        g = self._generator(4)
        positions = []
        for size in (self.width, self.height):
            whole = torch.randint(0, size - 1, (self.batch, self.height, self.width), generator=g)
            frac = 0.1 + 0.8 * torch.rand(self.batch, self.height, self.width, generator=g, dtype=torch.float64)
            positions.append(whole + frac)
        grid = _pixel_positions(self.height, self.width)
        return (torch.stack(positions, 1) - grid).to(dtype)


def warp_cases(
    *,
    min_size: int = 1,
    max_size: int = 24,
    max_batch: int = 3,
    max_channels: int = 4,
    magnitudes: Sequence[float] = (0.5, 2.0, 6.0, 30.0),
) -> Any:
    """Hypothesis strategy for :class:`WarpCase`; the default magnitudes reach past the border."""
    from hypothesis import strategies as st

    return st.builds(
        WarpCase,
        batch=st.integers(1, max_batch),
        channels=st.integers(1, max_channels),
        height=st.integers(min_size, max_size),
        width=st.integers(min_size, max_size),
        seed=st.integers(0, 2**20),
        magnitude=st.sampled_from(tuple(magnitudes)),
    )


def _flip_axes() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from(["horizontal", "vertical"])


#: Explicit examples run first by the main properties: a single row, a single column, a pixel.
THIN_CASES: tuple[WarpCase, ...] = (
    WarpCase(2, 3, 1, 9, seed=1, magnitude=6.0),
    WarpCase(2, 3, 9, 1, seed=2, magnitude=6.0),
    WarpCase(1, 2, 1, 1, seed=3, magnitude=2.0),
)

#: The zero-flow example at the generic rules' first size, with ``WarperContract.channels`` channels.
_CONTRACT_CASE = WarpCase(2, 5, *SIZES[0], seed=0)


def property_test(
    *,
    examples: Sequence[dict[str, Any]] = (),
    max_examples: int | None = None,
    quick: bool = False,
    **strategies: Callable[[], Any],
) -> Callable[[Callable[..., None]], Callable[[Any], None]]:
    """Turn ``method(self, **drawn)`` into a pytest test ``test(self)`` that runs it under hypothesis.

    The hypothesis test is built when the test runs, so it uses the hypothesis profile
    active then, every subclass gets its own hypothesis test (and database key), and
    hypothesis (a test-time dependency) is imported only then.

    Args:
        examples: keyword dicts always tried first (``hypothesis.example``).
        max_examples: a cap on the profile's example count (for expensive properties).
        quick: one of the rules :func:`check_component` runs too, on ``examples`` only (the
            others run under pytest).
        strategies: per keyword argument of the method, a function returning its strategy.
    """

    def decorate(method: Callable[..., None]) -> Callable[[Any], None]:
        def test(self: Any) -> None:
            if getattr(self, "examples_only", False):
                for kwargs in examples:
                    method(self, **kwargs)
                return
            from hypothesis import example, given, settings

            def check(**drawn: Any) -> None:
                method(self, **drawn)

            check.__qualname__ = f"{type(self).__qualname__}.{method.__name__}"
            check._hypothesis_internal_add_digest = check.__qualname__.encode()  # type: ignore[attr-defined]
            runner = given(**{k: make() for k, make in strategies.items()})(check)
            for kwargs in reversed(examples):
                runner = example(**kwargs)(runner)
            count = settings.default.max_examples
            runner = settings(settings.default, max_examples=min(count, max_examples or count))(runner)
            runner()

        test.__name__ = method.__name__
        test.__qualname__ = method.__qualname__
        test.__doc__ = method.__doc__
        test.__module__ = method.__module__
        return test if quick else _pytest_only(test)

    return decorate


def _pytest_only(test: Callable[..., None]) -> Callable[..., None]:
    """Leave ``test`` out of :meth:`WarperContract.rules`: pytest runs it, :func:`check_component` does not."""
    test.pytest_only = True  # type: ignore[attr-defined]
    return test


def _cuda(test: Callable[..., None]) -> Callable[..., None]:
    """Mark ``test`` for ``pytest -m cuda``; only pytest reads the mark, so the kit imports without pytest."""
    try:
        import pytest
    except ModuleNotFoundError:
        return test
    return pytest.mark.cuda(test)


def _skip(reason: str) -> None:
    import pytest

    pytest.skip(reason)


# The independent references: float64, advanced indexing, no code shared with the warpers.


def _pixel_positions(height: int, width: int) -> Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack((xs, ys)).unsqueeze(0)


def sample_positions(flow: Tensor) -> tuple[Tensor, Tensor]:
    """Exact positions ``p + flow[p]`` in float64 (a float32 flow plus an integer is exact): B×H×W each."""
    h, w = flow.shape[-2:]
    pos = _pixel_positions(h, w).to(flow.device) + flow.double()
    return pos[:, 0], pos[:, 1]


def read_pixels(x: Tensor, ix: Tensor, iy: Tensor) -> Tensor:
    """``x[b, :, iy, ix]`` with the indices clamped to the image: B×C×H×W for B×H×W index maps."""
    b, _, h, w = x.shape
    ix, iy = ix.long().clamp(0, w - 1), iy.long().clamp(0, h - 1)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand_as(ix)
    return x[batch, :, iy, ix].permute(0, 3, 1, 2)


def _clamped_positions(x: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    h, w = x.shape[-2:]
    px, py = sample_positions(flow)
    return px.clamp(0, w - 1), py.clamp(0, h - 1)


def bilinear_reference(x: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warp with border replication, straight from the definition, in float64."""
    px, py = _clamped_positions(x, flow)
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0).unsqueeze(1), (py - y0).unsqueeze(1)
    xd = x.double()
    return (
        read_pixels(xd, x0, y0) * (1 - fx) * (1 - fy)
        + read_pixels(xd, x0 + 1, y0) * fx * (1 - fy)
        + read_pixels(xd, x0, y0 + 1) * (1 - fx) * fy
        + read_pixels(xd, x0 + 1, y0 + 1) * fx * fy
    )


def nearest_reference(x: Tensor, flow: Tensor) -> Tensor:
    """Nearest-neighbour backward warp (half-way positions round up), in float64."""
    px, py = _clamped_positions(x, flow)
    return read_pixels(x.double(), (px + 0.5).floor(), (py + 0.5).floor())


def _neighbourhood(x: Tensor, flow: Tensor) -> Tensor:
    """The 2×2 pixels around each clamped sample position: B×C×H×W×4, float64."""
    px, py = _clamped_positions(x, flow)
    xd = x.double()
    corners = [(px.floor(), py.floor()), (px.ceil(), py.floor()), (px.floor(), py.ceil()), (px.ceil(), py.ceil())]
    return torch.stack([read_pixels(xd, cx, cy) for cx, cy in corners], dim=-1)


def _shift_flow(shifts: Tensor, height: int, width: int) -> Tensor:
    return shifts.to(torch.float32).view(-1, 2, 1, 1).expand(-1, 2, height, width).contiguous()


def _mismatch(out: Tensor, expected: Tensor) -> str:
    diff = (out.double() - expected.double()).abs()
    worst = int(torch.nan_to_num(diff, nan=math.inf).flatten().argmax())
    return f"max abs difference {diff.flatten()[worst].item():.3g} at flat index {worst} of shape {tuple(out.shape)}"


def _assert_equal(out: Tensor, expected: Tensor, what: str) -> None:
    assert out.shape == expected.shape, f"{what}: shape {tuple(out.shape)} != {tuple(expected.shape)}"
    assert torch.equal(out, expected.to(out.dtype)), f"{what} is not exact: {_mismatch(out, expected)}"


def _assert_close(out: Tensor, expected: Tensor, atol: float, what: str, rtol: float = 0.0) -> None:
    if atol == 0 and rtol == 0:
        _assert_equal(out, expected, what)
        return
    diff = (out.double() - expected.double()).abs()
    bound = atol + rtol * expected.double().abs()
    assert bool((diff <= bound).all()), f"{what}: {_mismatch(out, expected)} > atol {atol:g} + rtol {rtol:g}·|expected|"


class WarperContract(ComponentContract):
    """``warper(x, flow)`` → x backward-warped: ``out[p] = x[p + flow[p]]``, reading the border outside.

    Besides the generic rules, the properties below pin that definition down over random
    sizes (1-pixel rows and columns included), channel counts, batch sizes and flows, with
    the tolerance of each stated next to it. :func:`check_component` runs the generic rules
    and the zero-flow property on its explicit examples; a pytest subclass (``Test`` prefix)
    collects every property, with random draws (they need ``hypothesis``)::

        class TestMyWarper(WarperContract):
            name = "my_warper"           # its registered name
            params = {}                  # constructor parameters
            reference = "bilinear"       # optional: a registered warper it should match

    The number of examples per property follows the active hypothesis profile (read when the
    test runs, not when this module is imported). Each property builds its hypothesis test
    when called, so subclasses sharing the inherited methods never trip hypothesis'
    ``differing_executors`` health check.

    Attributes (every tolerance is an absolute error on images in [0, 1] unless stated):
        channels: channels of the generic rules' images.
        interpolation: ``"bilinear"`` or ``"nearest"``: which reference formula it follows.
        differentiable_flow: gradients w.r.t. the flow exist (gradcheck'ed) when true.
        formula_atol: distance to the float64 reference formula, float32 inputs. 1e-5:
            float32 positions up to 64 px carry ≤ 2e-6 px of rounding, blends a few ulps.
        identity_float64_atol: zero-flow error for float64 inputs (float32 must be exact).
        constant_atol: deviation of a constant image from its constant. 4 float32 ulps of 1:
            a weighted sum ``Σ w_i·c`` is ``c`` up to the rounding of the weights' sum.
        linearity_atol: ``warp(a·x + b·y) - (a·warp(x) + b·warp(y))`` with |a|, |b| ≤ 2,
            float32: a few ulps of values up to 4.
        flip_atol: mirrored problem vs mirrored result, float32: positions ``(W-1-p) - f``
            and ``W-1-(p+f)`` round differently, ≤ 4e-6 px (0 for nearest: no blend).
        independence_atol: one batch item or channel alone vs inside the batch.
        channels_last_atol: channels_last input vs contiguous input.
        reference, reference_atol: another registered warper this one must match on any
            flow, and the tolerance.
        autocast_fp32_atol: float32 inputs under autocast vs outside it (0: the warp ignores
            autocast).
        large_atol: float64-definition error allowed at ~1100 px besides one ulp of the
            output dtype: float32 positions there are 2^-13 px apart.
        nan_propagates: a NaN displacement gives NaN at that output pixel.
        gradcheck_atol: ``torch.autograd.gradcheck`` tolerance (float64).
    """

    kind = "warper"
    channels: ClassVar[int] = 5
    grad_inputs = (0,)  # the image; flow gradients are gradcheck'ed below
    interpolation: ClassVar[str] = "bilinear"
    differentiable_flow: ClassVar[bool] = True
    formula_atol: ClassVar[float] = 1e-5
    identity_float64_atol: ClassVar[float] = 0.0
    constant_atol: ClassVar[float] = 4 * 2.0**-23
    linearity_atol: ClassVar[float] = 1e-5
    flip_atol: ClassVar[float] = 1e-5
    independence_atol: ClassVar[float] = 0.0
    channels_last_atol: ClassVar[float] = 0.0
    reference: ClassVar[str | None] = None
    reference_atol: ClassVar[float] = 1e-5
    autocast_fp32_atol: ClassVar[float] = 0.0
    large_atol: ClassVar[float] = 2.0**-13
    nan_propagates: ClassVar[bool] = True
    gradcheck_atol: ClassVar[float] = 1e-5

    # -- the generic rules' hooks -----------------------------------------------------------
    def make_inputs(self, size, batch=2, generator=None):
        x = torch.rand(batch, self.channels, *size, generator=generator)
        flow = (torch.rand(batch, 2, *size, generator=generator) - 0.5) * 6
        return x, flow

    def check_output(self, out, inputs, module):
        x, _ = inputs
        assert isinstance(out, Tensor) and out.shape == x.shape, (
            f"warper {self.name!r}: expected {tuple(x.shape)}, got {getattr(out, 'shape', type(out))}"
        )

    def rules(self) -> list[str]:
        """The rules :meth:`run_all` runs: the generic ones and the zero-flow property (the rest need pytest)."""
        return [r for r in super().rules() if not getattr(getattr(type(self), r), "pytest_only", False)]

    def run_all(self) -> None:
        """The generic rules and the zero-flow property on its explicit examples.

        Without random draws: hypothesis (a test-time dependency) is not needed, and it writes
        no ``.hypothesis`` folder into the caller's working directory.
        """
        self.examples_only = True
        super().run_all()

    # -- helpers for the properties ---------------------------------------------------------
    def warp(self, x: Tensor, flow: Tensor) -> Tensor:
        """Run the warper (without autograd unless the inputs require it)."""
        assert self.name, f"{type(self).__name__} must set `name` to a registered warper"
        out = self.build().to(x.device)(x, flow)
        assert out.shape == x.shape, f"warper {self.name!r}: output {tuple(out.shape)} for input {tuple(x.shape)}"
        return out

    def definition(self, x: Tensor, flow: Tensor) -> Tensor:
        """The float64 reference formula this warper follows (see ``interpolation``)."""
        if self.interpolation == "bilinear":
            return bilinear_reference(x, flow)
        if self.interpolation == "nearest":
            return nearest_reference(x, flow)
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {self.interpolation!r}")

    # -- exactness --------------------------------------------------------------------------
    @property_test(case=warp_cases, examples=[{"case": c} for c in (*THIN_CASES, _CONTRACT_CASE)], quick=True)
    def test_zero_flow_is_identity(self, case: WarpCase) -> None:
        """A zero flow returns ``x`` exactly (atol = 0) in float32; float64 within ``identity_float64_atol``."""
        for dtype, atol in ((torch.float32, 0.0), (torch.float64, self.identity_float64_atol)):
            x = case.image(dtype)
            _assert_close(self.warp(x, torch.zeros(case.flow_shape, dtype=dtype)), x, atol, f"zero flow, {dtype}")

    @property_test(case=warp_cases, examples=[{"case": c} for c in THIN_CASES])
    def test_integer_shift_is_exact_with_replicated_border(self, case: WarpCase) -> None:
        """A constant integer flow ``(dx, dy)`` (one per batch item) is the shift ``x[y+dy, x+dx]``.

        Exact (atol = 0) in the interior; rows and columns read past the border replicate
        the border (clamped reads), also exactly. Shifts reach one image size past the edge.
        """
        x, shifts = case.image(), case.shifts()
        out = self.warp(x, _shift_flow(shifts, case.height, case.width))
        rows = torch.arange(case.height).view(1, -1, 1)
        cols = torch.arange(case.width).view(1, 1, -1)
        ix = (cols + shifts[:, 0].view(-1, 1, 1)).expand(case.batch, case.height, case.width)
        iy = (rows + shifts[:, 1].view(-1, 1, 1)).expand(case.batch, case.height, case.width)
        _assert_equal(out, read_pixels(x, ix, iy), f"integer shifts {shifts.tolist()}")

    @property_test(case=warp_cases)
    def test_integer_flow_reads_pixels(self, case: WarpCase) -> None:
        """Any per-pixel integer flow reads ``x[clamp(p + flow[p])]`` exactly."""
        x, flow = case.image(), case.integer_flow()
        ix, iy = sample_positions(flow)
        _assert_equal(self.warp(x, flow), read_pixels(x, ix, iy), "per-pixel integer flow")

    @property_test(case=warp_cases)
    def test_integer_round_trip_restores_interior(self, case: WarpCase) -> None:
        """Warping by an integer shift ``d`` and then by ``-d`` restores every pixel ``p`` with
        ``p - d`` inside the image, exactly."""
        x, shifts = case.image(), case.shifts()
        flow = _shift_flow(shifts, case.height, case.width)
        back = self.warp(self.warp(x, flow), -flow)
        cols = torch.arange(case.width).view(1, 1, -1) - shifts[:, 0].view(-1, 1, 1)
        rows = torch.arange(case.height).view(1, -1, 1) - shifts[:, 1].view(-1, 1, 1)
        inside = ((cols >= 0) & (cols < case.width) & (rows >= 0) & (rows < case.height)).unsqueeze(1)
        inside = inside.expand_as(x)
        _assert_equal(back[inside], x[inside], f"round trip of shifts {shifts.tolist()}")

    @property_test(case=warp_cases, examples=[{"case": c} for c in THIN_CASES])
    def test_constant_image_stays_constant(self, case: WarpCase) -> None:
        """An image constant per (item, channel) stays that constant under any flow (``constant_atol``)."""
        values = case.image()[..., :1, :1]
        x = values.expand(-1, -1, case.height, case.width).contiguous()
        _assert_close(self.warp(x, case.flow()), x, self.constant_atol, "constant image")

    # -- the definition --------------------------------------------------------------------
    @property_test(case=warp_cases, examples=[{"case": c} for c in THIN_CASES])
    def test_matches_definition(self, case: WarpCase) -> None:
        """The float64 formula of ``interpolation`` within ``formula_atol`` (nearest: ties round up)."""
        x, flow = case.image(), case.flow()
        _assert_close(self.warp(x, flow), self.definition(x, flow), self.formula_atol, f"{self.interpolation} formula")

    @property_test(case=warp_cases, examples=[{"case": c} for c in THIN_CASES])
    def test_output_within_2x2_neighbourhood(self, case: WarpCase) -> None:
        """Every output lies within [min, max] of the 2×2 pixels around its clamped sample
        position (floor/ceil of the exact position), give or take one float32 ulp."""
        x, flow = case.image(), case.flow()
        out = self.warp(x, flow)
        corners = _neighbourhood(x, flow).float()
        low = torch.nextafter(corners.amin(-1), torch.tensor(-math.inf))
        high = torch.nextafter(corners.amax(-1), torch.tensor(math.inf))
        outside = (out < low) | (out > high)
        assert not outside.any(), (
            f"{int(outside.sum())} outputs leave their 2×2 neighbourhood, e.g. {out[outside][0].item()} "
            f"not in [{low[outside][0].item()}, {high[outside][0].item()}]"
        )

    @property_test(case=warp_cases)
    def test_linear_in_the_image(self, case: WarpCase) -> None:
        """``warp(a·x + b·y) == a·warp(x) + b·warp(y)`` for one flow, within ``linearity_atol``."""
        x, y, flow = case.image(stream=0), case.image(stream=5), case.flow()
        g = torch.Generator().manual_seed(case.seed)
        a, b = (torch.rand(2, generator=g) * 4 - 2).tolist()
        together = self.warp(a * x + b * y, flow)
        _assert_close(together, a * self.warp(x, flow) + b * self.warp(y, flow), self.linearity_atol, "linearity")

    @property_test(case=partial(warp_cases, max_batch=3, max_channels=4))
    def test_batch_items_and_channels_are_independent(self, case: WarpCase) -> None:
        """Each batch item, and each channel, warped alone equals its slice of the batched result."""
        x, flow = case.image(), case.flow()
        out = self.warp(x, flow)
        for i in range(case.batch):
            _assert_close(self.warp(x[i : i + 1], flow[i : i + 1]), out[i : i + 1], self.independence_atol, f"item {i}")
        for c in range(case.channels):
            _assert_close(self.warp(x[:, c : c + 1], flow), out[:, c : c + 1], self.independence_atol, f"channel {c}")

    @property_test(case=warp_cases, axis=_flip_axes)
    def test_flip_symmetry(self, case: WarpCase, axis: str) -> None:
        """Flipping the image and the flow field and negating that flow component flips the output.

        Within ``flip_atol``; nearest flows avoid half-way ties, where rounding up is not
        mirror-symmetric.
        """
        x, flow = case.image(), case.flow(tie_free=self.interpolation == "nearest")
        dim, component = (-1, 0) if axis == "horizontal" else (-2, 1)
        mirrored_flow = flow.flip(dim)
        mirrored_flow[:, component] *= -1
        out = self.warp(x.flip(dim), mirrored_flow)
        _assert_close(out, self.warp(x, flow).flip(dim), self.flip_atol, f"{axis} flip")

    # -- gradients --------------------------------------------------------------------------
    @property_test(case=partial(warp_cases, max_size=6, max_batch=2, max_channels=2), max_examples=10)
    def test_gradcheck_image(self, case: WarpCase) -> None:
        """``gradcheck`` w.r.t. the image, float64, on any flow (the warp is linear in ``x``)."""
        x = case.image(torch.float64).requires_grad_(True)
        flow = case.flow(torch.float64)
        warper = self.build().double()
        assert torch.autograd.gradcheck(lambda t: warper(t, flow), (x,), atol=self.gradcheck_atol)

    @property_test(case=partial(warp_cases, min_size=2, max_size=6, max_batch=2, max_channels=2), max_examples=10)
    def test_gradcheck_flow(self, case: WarpCase) -> None:
        """``gradcheck`` w.r.t. image and flow, float64, sample positions ≥ 0.1 px from integers."""
        if not self.differentiable_flow:
            _skip(f"warper {self.name!r} declares no flow gradient")
        x = case.image(torch.float64).requires_grad_(True)
        flow = case.interior_flow(torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(self.build().double(), (x, flow), atol=self.gradcheck_atol)

    # -- agreement, layouts ----------------------------------------------------------------
    @property_test(case=warp_cases)
    def test_agrees_with_reference_warper(self, case: WarpCase) -> None:
        """Matches the registered ``reference`` warper on any flow within ``reference_atol``."""
        if self.reference is None:
            _skip(f"no reference warper declared for {self.name!r}")
        x, flow = case.image(), case.flow()
        expected = REGISTRY.get("warper", self.reference).factory()(x, flow)
        _assert_close(self.warp(x, flow), expected, self.reference_atol, f"vs warper {self.reference!r}")

    @property_test(case=partial(warp_cases, max_channels=6))
    def test_channels_last_gives_same_values(self, case: WarpCase) -> None:
        """A channels_last image (and flow) gives the values of the contiguous one (``channels_last_atol``)."""
        x, flow = case.image(), case.flow()
        out = self.warp(x.to(memory_format=torch.channels_last), flow.to(memory_format=torch.channels_last))
        _assert_close(out, self.warp(x, flow), self.channels_last_atol, "channels_last")

    @property_test(case=partial(warp_cases, max_size=8))
    def test_nan_flow_stays_local(self, case: WarpCase) -> None:
        """A NaN displacement never raises and changes only its own output pixel (NaN there if
        ``nan_propagates``)."""
        x, flow = case.image(), case.flow()
        g = torch.Generator().manual_seed(case.seed)
        b, c, i, j = (int(torch.randint(0, n, (1,), generator=g)) for n in (case.batch, 2, case.height, case.width))
        clean = flow.clone()
        clean[b, :, i, j] = 0.0
        bad = clean.clone()
        bad[b, c, i, j] = math.nan
        out, expected = self.warp(x, bad), self.warp(x, clean)
        here = torch.zeros_like(x, dtype=torch.bool)
        here[b, :, i, j] = True
        _assert_equal(out[~here], expected[~here], "pixels without NaN displacement")
        if self.nan_propagates:
            assert out[here].isnan().all(), f"NaN displacement at {(b, c, i, j)} gave {out[here].tolist()}"

    @_pytest_only
    def test_output_dtype_is_the_image_dtype(self) -> None:
        """Outside autocast the output has the dtype of ``x`` (float16/bfloat16/32/64), any flow dtype."""
        case = WarpCase(2, 3, 5, 7, seed=0)
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            for flow_dtype in dict.fromkeys((dtype, torch.float32)):
                out = self.warp(case.image(dtype), case.flow(flow_dtype))
                assert out.dtype == dtype, f"x {dtype}, flow {flow_dtype}: output {out.dtype}"

    # -- autocast ----------------------------------------------------------------------------
    def check_autocast(self, device: str, dtype: torch.dtype) -> None:
        """Autocast keeps the warp within tolerance of float32, at small and large coordinates.

        1. float32 ``x`` and flow under autocast: float32 output within ``autocast_fp32_atol``
           of the result outside autocast.
        2. ``x`` and flow in ``dtype`` (what autocast convs produce): output of ``dtype``,
           within one ``dtype`` ulp (rtol = eps) of the float32 warp of the same values.
        3. A 1×1×4×1100 image with sub-pixel flows (multiples of 1/64, exact in ``dtype``):
           within ``large_atol`` + one output ulp of the float64 warp, for float32 and
           ``dtype`` images. Half-precision positions would fail here: beyond 1024 px
           fp16 positions are 1 px apart and bf16 ones 8 px.
        """
        if device == "cuda" and not torch.cuda.is_available():
            _skip("CUDA is not available")
        eps = torch.finfo(dtype).eps
        for case in (WarpCase(2, 3, 9, 13, seed=7), *THIN_CASES):
            x, flow = case.image().to(device), case.flow().to(device)
            plain = self.warp(x, flow)
            with torch.autocast(device, dtype=dtype):
                out32 = self.warp(x, flow)
                low = self.warp(x.to(dtype), flow.to(dtype))
            assert out32.dtype == torch.float32, f"float32 input under {dtype} autocast gave {out32.dtype}"
            _assert_close(out32, plain, self.autocast_fp32_atol, f"float32 input under {dtype} autocast")
            assert low.dtype == dtype, f"{dtype} input under autocast gave {low.dtype}"
            expected = self.warp(x.to(dtype).float(), flow.to(dtype).float())
            _assert_close(low.float(), expected, 1e-6, f"{dtype} input under autocast", rtol=eps)

        g = torch.Generator().manual_seed(11)
        x = torch.rand(1, 1, 4, 1100, generator=g).to(device)
        flow = (torch.randint(-63, 64, (1, 2, 4, 1100), generator=g) / 64.0).to(device)
        for image_dtype in (torch.float32, dtype):
            xi = x.to(image_dtype)
            with torch.autocast(device, dtype=dtype):
                out = self.warp(xi, flow.to(dtype))
            expected = self.warp(xi.double(), flow.double())
            rtol = torch.finfo(out.dtype).eps
            _assert_close(out[..., 1000:], expected[..., 1000:], self.large_atol, f"x > 1000 px, {image_dtype}", rtol)
            _assert_close(out, expected, self.large_atol, f"1100 px wide, {image_dtype} image", rtol)

    @_pytest_only
    def test_autocast_cpu_bfloat16(self) -> None:
        """CPU bf16 autocast: see :meth:`check_autocast`."""
        self.check_autocast("cpu", torch.bfloat16)

    @_pytest_only
    @_cuda
    def test_autocast_cuda_float16(self) -> None:
        """CUDA fp16 autocast: see :meth:`check_autocast` (skipped without CUDA)."""
        self.check_autocast("cuda", torch.float16)

    @_pytest_only
    @_cuda
    def test_autocast_cuda_bfloat16(self) -> None:
        """CUDA bf16 autocast: see :meth:`check_autocast` (skipped without CUDA)."""
        self.check_autocast("cuda", torch.bfloat16)
