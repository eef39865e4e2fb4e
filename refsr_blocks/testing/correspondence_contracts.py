"""Contracts of the ``correspondence`` and ``restoration`` kinds (C2-Matching's parts, and any alike).

- :class:`CorrespondenceContract`: ``correspondence(target, refs)`` → a
  :class:`~refsr_blocks.ops.correspondence.Correspondence` on the target's grid
  reduced by ``stride``, for K references of any size; a hard choice, so its parameters are
  frozen and its outputs carry no gradient; a shifted copy of the target is found.
- :class:`RestorationContract`: ``restoration(lr, textures, correspondence)`` →
  B×C×(s·h)×(s·w), reading the textures (they receive a gradient and change the output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.correspondence import Correspondence
from .contracts import SIZES, ComponentContract, TextureFusionContract, _NestedInputsContract

__all__ = ["CorrespondenceContract", "RestorationContract"]


def _textured(batch: int, size: tuple[int, int], generator: torch.Generator | None) -> Tensor:
    """Images with texture at every scale (noise over a smooth layer), so patches are distinct."""
    smooth = F.interpolate(torch.rand(batch, 3, 4, 4, generator=generator), size=size, mode="bilinear")
    return (0.5 * smooth + 0.5 * torch.rand(batch, 3, *size, generator=generator)).clamp(0, 1)


class CorrespondenceContract(ComponentContract):
    """``correspondence(target, [ref, ...])`` → a Correspondence on the ``stride``-reduced grid."""

    kind = "correspondence"

    def injected(self) -> dict[str, Any]:
        return {"in_channels": 3}

    def make_inputs(self, size, batch=2, generator=None):
        return _textured(batch, size, generator), _textured(batch, size, generator)

    def call(self, module: nn.Module, inputs: Sequence[Tensor]) -> Any:
        out = module(inputs[0], [inputs[1]])
        return [out.flow, out.score]

    def check_output(self, out, inputs, module):
        flow, score = out
        b, _, h, w = inputs[0].shape
        stride = module.stride
        grid = (-(-h // stride), -(-w // stride))
        assert tuple(flow.shape) == (b, 2, *grid), f"correspondence {self.name!r}: flow {tuple(flow.shape)}"
        assert tuple(score.shape) == (b, 1, *grid), f"correspondence {self.name!r}: score {tuple(score.shape)}"

    def test_gradient_flow(self) -> None:
        """A hard choice: the parameters are frozen (trained apart) and the outputs carry no gradient."""
        module = self.build().train()
        trainable = [n for n, p in module.named_parameters() if p.requires_grad]
        assert not trainable, f"correspondence {self.name!r}: no gradient reaches {trainable}; freeze them"
        target, ref = (t.requires_grad_(True) for t in self.inputs(SIZES[0], batch=1))
        assert not any(o.requires_grad for o in self.call(module, (target, ref)))

    def test_references_of_any_size_and_number(self) -> None:
        """Two references of other sizes: one match per grid pixel, reference indices in range."""
        module = self.build().eval()
        g = torch.Generator().manual_seed(3)
        target = _textured(1, SIZES[1], g)
        refs = [_textured(1, (20, 36), g), _textured(1, (52, 28), g)]
        with torch.no_grad():
            out = module(target, refs)
        self.check_output([out.flow, out.score], (target,), module)
        assert out.reference.min() >= 0 and out.reference.max() < len(refs)
        assert out.ref_sizes == tuple((-(-h // module.stride), -(-w // module.stride)) for h, w in ((20, 36), (52, 28)))

    def test_finds_a_shifted_copy(self) -> None:
        """A reference that is the target moved by two grid pixels is found there (interior pixels)."""
        module = self.build().eval()
        s = module.stride
        image = _textured(1, (24 * s, 24 * s), torch.Generator().manual_seed(5))
        target, ref = image[..., 2 * s :, 2 * s :], image[..., : -2 * s, : -2 * s]
        with torch.no_grad():
            out = module(target, [ref])
        # Away from the borders: the reference lacks the content there, and the features of
        # either image feel its zero padding about 5 grid pixels in.
        inner = out.flow[0, :, 5:-5, 5:-7]
        found = ((inner - 2.0).abs() < 0.5).all(0).float().mean().item()
        assert found > 0.9, f"correspondence {self.name!r}: only {found:.0%} of the shifted copy was found"


class RestorationContract(_NestedInputsContract):
    """``restoration(lr, textures, correspondence)`` → B×C×(s·h)×(s·w), the textures finest first."""

    kind = "restoration"
    upscale: ClassVar[int] = 4
    texture_channels: ClassVar[tuple[int, ...]] = (4, 8, 8)
    grad_groups = (0, 1)

    injected = TextureFusionContract.injected  # the same arguments: textures, factor, channels

    def _pyramid(self, batch: int, size: tuple[int, int], generator: Any) -> list[Tensor]:
        levels = len(self.texture_channels)
        return [
            torch.rand(batch, c, size[0] * 2 ** (levels - 1 - k), size[1] * 2 ** (levels - 1 - k), generator=generator)
            for k, c in enumerate(self.texture_channels)
        ]

    def make_inputs(self, size, batch=2, generator=None):
        h, w = max(3, size[0] // self.upscale), max(3, size[1] // self.upscale)
        lr = torch.rand(batch, 3, h, w, generator=generator)
        flow = 4 * torch.rand(batch, 2, h, w, generator=generator) - 2
        return lr, [self._pyramid(batch, (h, w), generator)], flow

    def call(self, module: nn.Module, inputs: Sequence[Any]) -> Any:
        lr, textures, flow = inputs
        b, _, h, w = flow.shape
        zeros = torch.zeros(b, 1, h, w, dtype=torch.long, device=flow.device)
        sizes = tuple(tuple(p[-1].shape[-2:]) for p in textures)
        corr = Correspondence(flow, zeros % len(textures), flow[:, :1] * 0, zeros == 0, sizes, 4)
        return module(lr, textures, corr)

    def check_output(self, out, inputs, module):
        lr = inputs[0]
        expected = (*lr.shape[:2], lr.shape[-2] * self.upscale, lr.shape[-1] * self.upscale)
        shape = tuple(getattr(out, "shape", ()))
        assert shape == expected, f"restoration {self.name!r}: expected {expected}, got {shape}"

    def test_textures_matter(self) -> None:
        """Changing the textures changes the output."""
        module = self.build().eval()
        inputs = self.inputs(SIZES[1], batch=1)
        brighter = (inputs[0], [[t + 1.0 for t in inputs[1][0]]], inputs[2])
        with torch.no_grad():
            unchanged = torch.allclose(self.call(module, inputs), self.call(module, brighter))
        assert not unchanged, f"restoration {self.name!r} ignores its textures"

    def test_references_of_any_size_and_number(self) -> None:
        """Two texture pyramids of other sizes than the output's give the output's size."""
        module = self.build().eval()
        lr, _, flow = self.inputs(SIZES[1], batch=1)
        g = torch.Generator().manual_seed(4)
        textures = [self._pyramid(1, (5, 9), g), self._pyramid(1, (11, 6), g)]
        h, w = flow.shape[-2:]
        reference = (torch.arange(h * w).view(1, 1, h, w) % 2).long()
        sizes = tuple(tuple(p[-1].shape[-2:]) for p in textures)
        corr = Correspondence(flow, reference, flow[:, :1] * 0, reference >= 0, sizes, 4)
        with torch.no_grad():
            out = module(lr, textures, corr)
        self.check_output(out, (lr,), module)
