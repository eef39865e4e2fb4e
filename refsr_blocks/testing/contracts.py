"""Contract classes, one per component kind, and :func:`check_component`.

Each contract builds the component under test with small, kind-specific arguments (the ones
an architecture would inject, such as ``scales``) plus the class's ``params``, and checks
one rule per ``test_*`` method. Every method is usable from pytest (subclass the contract
with a ``Test`` prefix) and from :func:`check_component`, which runs them all.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Sequence
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
    "WarperContract",
    "check_component",
    "contract_for",
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

    # -- hooks for subclasses -------------------------------------------------------------
    def injected(self) -> dict[str, Any]:
        """The arguments an architecture would pass (``scales`` and friends)."""
        return {}

    def make_inputs(
        self, size: tuple[int, int], batch: int = 2, generator: torch.Generator | None = None
    ) -> tuple[Tensor, ...]:
        """Inputs for one call, ``batch`` items, images of ``size``."""
        raise NotImplementedError

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

    def injected(self) -> dict[str, Any]:
        return {"scale": self.scale, "in_channels": 3}

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

    def injected(self) -> dict[str, Any]:
        return {"scales": self.scales, "in_channels": 3}

    def make_inputs(self, size, batch=2, generator=None):
        return tuple(torch.rand(batch, 3, *size, generator=generator) for _ in range(2))

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

    def make_inputs(self, size, batch=2, generator=None):
        return tuple(torch.rand(batch, 3, *size, generator=generator) for _ in range(2))

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


class WarperContract(ComponentContract):
    """``warper(x, flow)`` → x backward-warped; a zero flow returns x exactly."""

    kind = "warper"
    channels: ClassVar[int] = 5
    grad_inputs = (0,)  # the image; flow gradients are checked by the property suite

    def make_inputs(self, size, batch=2, generator=None):
        x = torch.rand(batch, self.channels, *size, generator=generator)
        flow = (torch.rand(batch, 2, *size, generator=generator) - 0.5) * 6
        return x, flow

    def check_output(self, out, inputs, module):
        x, _ = inputs
        assert isinstance(out, Tensor) and out.shape == x.shape, (
            f"warper {self.name!r}: expected {tuple(x.shape)}, got {getattr(out, 'shape', type(out))}"
        )

    def test_zero_flow_is_identity(self) -> None:
        """A zero flow returns the input exactly."""
        module = self.build()
        x, flow = self.inputs(SIZES[0])
        out = module(x, torch.zeros_like(flow))
        _close(out, x, f"warper {self.name!r} with a zero flow", atol=1e-6, rtol=0)


class EncoderContract(ComponentContract):
    """``encoder(image)`` → ``scales`` maps, level k B×out_channels[k]×⌈H/2^k⌉×⌈W/2^k⌉."""

    kind = "encoder"
    scales: ClassVar[int] = 3

    def injected(self) -> dict[str, Any]:
        return {"scales": self.scales, "in_channels": 3, "channels": 8}

    def make_inputs(self, size, batch=2, generator=None):
        return (torch.rand(batch, 3, *size, generator=generator),)

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

    def make_inputs(self, size, batch=2, generator=None):
        return tuple(torch.rand(batch, 3, *size, generator=generator) for _ in range(2))

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
