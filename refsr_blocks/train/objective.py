"""The training objective: the image loss plus optional terms that see intermediates.

``schedule.loss`` (a registered loss on ``sr`` vs ``hr``) is the main term. ``schedule.aux_losses``
adds weighted terms, each a mapping ``{name, weight, on, params}``:

- ``{name: flow_epe}``: multi-scale end-point error of the model's ``flows`` against the
  item's ground-truth ``flow`` (synthetic pairs), masked by its ``valid`` map, level ``k``
  weighted ``level_decay**k``; items without ground truth (``valid`` all zero) add nothing;
- ``{name: warp}``: the paper's warping loss, Charbonnier of ``warp(ref, flows[0]) − hr``
  where the sampled position lies inside the reference (CrossNet-iw's pre-training);
- ``{name: texture}``: TTSR's transferal perceptual loss between the texture features of the
  output (``sr_textures``) and the transferred ``textures`` (models that return both: ``ttsr``);
- ``{name: <a registered loss>, on: upsampled}``: that loss on another image output
  (``upsampled``, ``warped_image``) against ``hr``.

Example:
    >>> import torch
    >>> objective = Objective({"name": "l1", "params": {}}, [{"name": "warp", "weight": 0.5}])
    >>> objective.needs_intermediates
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.registry import get_component
from ..ops.flow import flow_pyramid
from ..ops.warp import backward_warp, inside_frame

__all__ = ["AUX_TERMS", "IMAGE_OUTPUTS", "Objective", "aux_term_parameters", "flow_epe_loss", "warping_loss"]

#: Model outputs an image loss may be applied to (compared with ``hr``).
IMAGE_OUTPUTS = ("sr", "upsampled", "warped_image")


def flow_epe_loss(flows: Sequence[Tensor], target: Tensor, valid: Tensor, level_decay: float = 0.5) -> Tensor:
    """Multi-scale end-point error, averaged over valid pixels.

    Args:
        flows: predicted flows, finest first, level k B×2×⌈H/2^k⌉×⌈W/2^k⌉.
        target: ground-truth flow B×2×H×W (level-0 pixels).
        valid: B×1×H×W, 1 where the ground truth holds.
        level_decay: level k weighs ``level_decay**k`` (weights normalised to sum to 1).

    Returns:
        A scalar (0 with a gradient path when no pixel is valid).
    """
    targets = flow_pyramid(target.float(), len(flows))
    total = flows[0].sum() * 0.0
    weights = [level_decay**k for k in range(len(flows))]
    for k, (flow, gt) in enumerate(zip(flows, targets)):
        # A coarse pixel is valid only where all the fine pixels it covers are.
        mask = -F.max_pool2d(-valid.float(), 2**k, ceil_mode=True) if k else valid.float()
        epe = torch.linalg.vector_norm(flow.float() - gt, dim=1, keepdim=True)
        total = total + weights[k] * (epe * mask).sum() / mask.sum().clamp_min(1.0)
    return total / sum(weights)


def warping_loss(ref: Tensor, flow: Tensor, hr: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier of ``backward_warp(ref, flow) − hr`` where ``p + flow[p]`` is inside ``ref``.

    Shapes: ``ref``, ``hr`` B×C×H×W; ``flow`` B×2×H×W. Returns a scalar.
    """
    warped = backward_warp(ref.float(), flow.float())
    inside = inside_frame(flow.detach().float()).float()
    diff = torch.sqrt((warped - hr.float()) ** 2 + eps**2)
    return (diff * inside).sum() / (inside.sum() * ref.shape[1]).clamp_min(1.0)


def transferal_perceptual_loss(sr_textures: Sequence[Tensor], textures: Sequence[Tensor]) -> Tensor:
    """TTSR's transferal perceptual (texture) loss: the output's texture features should be the
    textures transferred from the reference.

    ``sr_textures[k]`` is the texture extractor applied to the output, ``textures[k]`` the
    aligned reference textures, both B×C_k×H_k×W_k per level; the mean squared difference is
    averaged over levels. The transferred textures are the target (no gradient through them).
    The paper's extractor starts from pretrained VGG; ours learns from scratch.
    """
    if len(sr_textures) != len(textures):
        raise ValueError(f"{len(sr_textures)} output texture levels for {len(textures)} transferred ones")
    terms = [F.mse_loss(s.float(), t.detach().float()) for s, t in zip(sr_textures, textures)]
    return torch.stack(terms).mean()


#: Auxiliary terms that need more than an image output, and the function each calls (its
#: parameters with defaults are what ``params`` may set).
AUX_TERMS = {"flow_epe": flow_epe_loss, "warp": warping_loss, "texture": transferal_perceptual_loss}


def aux_term_parameters(name: str) -> list[str]:
    """The settable ``params`` of an auxiliary term (its function's defaulted arguments)."""
    signature = inspect.signature(AUX_TERMS[name])
    return [k for k, v in signature.parameters.items() if v.default is not inspect.Parameter.empty]


class Objective(nn.Module):
    """The weighted sum of the image loss and the auxiliary terms.

    Args:
        loss: the main loss ``{name, params}`` (a registered loss on ``sr``).
        aux: auxiliary terms (see the module docstring), already validated.
    """

    def __init__(self, loss: Mapping[str, Any], aux: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        self.main = get_component("loss", loss["name"]).factory(**loss.get("params", {}))
        self.aux = [dict(term) for term in aux]
        self.image_losses = nn.ModuleList(
            get_component("loss", t["name"]).factory(**t.get("params", {}))
            for t in self.aux
            if t["name"] not in AUX_TERMS
        )

    @property
    def needs_intermediates(self) -> bool:
        """True when a term reads more than ``sr``."""
        return bool(self.aux)

    def forward(self, outputs: Mapping[str, Any], batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Total loss and each term's value.

        Args:
            outputs: the model's outputs by name (at least ``sr``; ``flows`` etc. for aux terms).
            batch: the training batch on the device (``hr``, ``ref``, and ``flow``/``valid``
                for ``flow_epe``).
        """
        total = self.main(outputs["sr"], batch["hr"])
        parts = {"loss_main": float(total.detach())}
        image_losses = iter(self.image_losses)
        for term in self.aux:
            name, weight = term["name"], float(term.get("weight", 1.0))
            params = term.get("params", {})
            if name == "flow_epe":
                if "flow" not in batch:
                    raise KeyError("aux loss 'flow_epe' needs items with ground-truth 'flow' (synthetic pairs)")
                value = flow_epe_loss(outputs["flows"], batch["flow"], batch["valid"], **params)
            elif name == "warp":
                value = warping_loss(batch["ref"], outputs["flows"][0], batch["hr"], **params)
            elif name == "texture":
                if "sr_textures" not in outputs:
                    raise KeyError("aux loss 'texture' needs a model whose intermediates carry 'sr_textures' (ttsr)")
                value = transferal_perceptual_loss(outputs["sr_textures"], outputs["textures"], **params)
            else:
                value = next(image_losses)(outputs[term.get("on", "sr")], batch["hr"])
            parts[f"loss_{name}"] = float(value.detach())
            total = total + weight * value
        return total, parts
