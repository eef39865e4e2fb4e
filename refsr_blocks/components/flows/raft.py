"""RAFT-small (Teed & Deng, ECCV 2020) as a flow component, from torchvision's architecture.

The network is ``torchvision.models.optical_flow.raft_small(weights=None)``: the architecture
only, randomly initialised (load torchvision's ``Raft_Small_Weights`` into ``.core`` yourself
if you have them: the state-dict keys are torchvision's, under ``core.``). torchvision is
imported when the component is built, not when :mod:`refsr_blocks` is imported.

The wrapper adapts RAFT to the flow contract:

* inputs in [0, 1] are mapped to RAFT's [-1, 1];
* images are replicate-padded at the bottom/right to a multiple of 8, and to at least
  :data:`MIN_SIZE` (RAFT-small's 4-level correlation pyramid pools its 1/8 feature maps three
  times and needs them at least 16 wide), and the flow is cropped back;
* RAFT's flow from ``image1`` to ``image2`` satisfies ``image1[p] ≈ image2[p + flow[p]]``, so
  ``image1`` is the target and ``image2`` the reference: no sign change;
* the full-resolution flow is turned into ``scales`` levels by
  :func:`~refsr_blocks.ops.flow.flow_pyramid` (values scaled by exactly ``2^-k``).

The update loop is torchvision's ``RAFT.forward`` re-stated (:meth:`RAFTSmall.raft`) so that
the coordinate grid follows the input dtype (torchvision's is always float32, which breaks
float64 models) and only the last iteration's flow is upsampled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.registry import register_component
from ...core.support import Support
from ...ops.flow import crop_to, flow_pyramid, pad_to_multiple
from ..conventions import usual_bounds

__all__ = ["MIN_SIZE", "RAFTSmall"]

#: RAFT works at 1/8 resolution.
STRIDE = 8
#: Smallest padded input side: 8 × (2 · 2^(num_levels - 1)) with RAFT-small's 4 correlation levels.
MIN_SIZE = 128


@register_component("flow", "raft_small")
class RAFTSmall(nn.Module):
    """RAFT-small (torchvision's architecture, no pretrained weights): ~1M parameters.

    Args:
        scales: number of pyramid levels returned (at least 1).
        in_channels: channels of each input image: 3, or 1 (replicated to RGB).
        num_updates: recurrent flow updates per call (RAFT's ``num_flow_updates``; the
            paper uses 12 at test time, fewer is cheaper).
    """

    SUPPORT = Support(
        dtypes=("fp32",), onnx=True, torch_export=True, size_multiple=8, notes="onnxruntime within 5e-5 of PyTorch"
    )

    PARAM_BOUNDS = usual_bounds("scales in_channels", num_updates=(1, 64))

    def __init__(self, scales: int = 4, in_channels: int = 3, num_updates: int = 6) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be at least 1, got {scales}")
        if in_channels not in (1, 3):
            raise ValueError(
                f"raft_small takes RGB images (in_channels=3) or grey ones (1), got in_channels={in_channels}"
            )
        if num_updates < 1:
            raise ValueError(f"num_updates must be at least 1, got {num_updates}")
        from torchvision.models.optical_flow import raft_small  # lazy: keeps `import refsr_blocks` light

        self.scales = scales
        self.in_channels = in_channels
        self.num_updates = num_updates
        self.core = raft_small(weights=None, progress=False)

    def forward(self, target: Tensor, ref: Tensor) -> list[Tensor]:
        """Flows aligning ``ref`` to ``target``: ``target[p] ≈ ref[p + flow[p]]``.

        Args:
            target, ref: B×C×H×W in [0, 1], C = ``in_channels``, any H and W.

        Returns:
            ``scales`` flows, finest first; level k is B×2×ceil(H/2^k)×ceil(W/2^k) in pixels
            of that level (channel 0: x, channel 1: y).
        """
        if target.shape != ref.shape:
            raise ValueError(f"target {tuple(target.shape)} and ref {tuple(ref.shape)} must match")
        if target.ndim != 4 or target.shape[1] != self.in_channels:
            raise ValueError(f"raft_small expects B×{self.in_channels}×H×W images, got {tuple(target.shape)}")
        pair = torch.cat((target, ref), 0) * 2 - 1  # RAFT expects [-1, 1]
        if self.in_channels == 1:
            pair = pair.expand(-1, 3, -1, -1)
        pair, size = pad_to_multiple(pair, STRIDE)
        h, w = pair.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            pair = F.pad(pair, (0, max(0, MIN_SIZE - w), 0, max(0, MIN_SIZE - h)), mode="replicate")
        image1, image2 = pair.chunk(2)
        return flow_pyramid(crop_to(self.raft(image1, image2), size), self.scales)

    def raft(self, image1: Tensor, image2: Tensor) -> Tensor:
        """RAFT's last flow estimate, in torchvision's convention.

        Args:
            image1, image2: B×3×H×W in [-1, 1], H and W multiples of 8 and at least
                :data:`MIN_SIZE`.

        Returns:
            B×2×H×W, the flow from ``image1`` to ``image2``: ``image1[p] ≈ image2[p + flow[p]]``,
            in pixels, channel 0 x and channel 1 y (equal to
            ``self.core(image1, image2, self.num_updates)[-1]`` in float32).
        """
        core = self.core
        fmap1, fmap2 = core.feature_encoder(torch.cat((image1, image2), 0)).chunk(2)
        b, _, h, w = fmap1.shape
        context = core.context_encoder(image1)
        hidden_size = core.update_block.hidden_state_size
        hidden, context = context.split([hidden_size, context.shape[1] - hidden_size], 1)
        hidden, context = torch.tanh(hidden), F.relu(context)

        ys, xs = torch.meshgrid(
            torch.arange(h, device=image1.device, dtype=image1.dtype),
            torch.arange(w, device=image1.device, dtype=image1.dtype),
            indexing="ij",
        )
        coords0 = torch.stack((xs, ys))[None].expand(b, -1, -1, -1)  # B×2×h×w, x then y
        coords1 = coords0
        core.corr_block.build_pyramid(fmap1, fmap2)
        try:
            for _ in range(self.num_updates):
                coords1 = coords1.detach()  # as in RAFT: no gradient through the coordinates
                corr = core.corr_block.index_pyramid(centroids_coords=coords1)
                hidden, delta = core.update_block(hidden, context, corr, coords1 - coords0)
                coords1 = coords1 + delta
        finally:
            # torchvision keeps the pyramid on the module; drop it so no activations (and
            # autograd graph) outlive the call, which would also break copy.deepcopy(model).
            core.corr_block.corr_pyramid = [torch.tensor(0)]
        # RAFT-small has no mask predictor: bilinear ×8 upsampling (torchvision's upsample_flow).
        flow = F.interpolate(coords1 - coords0, size=(h * STRIDE, w * STRIDE), mode="bilinear", align_corners=True)
        return flow * STRIDE
