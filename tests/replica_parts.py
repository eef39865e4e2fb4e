"""Parts that several authors' codes share, for the replicas in these tests (their key names kept)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResidualBlockNoBN(nn.Module):
    """conv 3×3 → ReLU → conv 3×3, plus the input (keys ``conv1.*``, ``conv2.*``).

    EDSR's block without batch norm, as C2-Matching (``ResidualBlockNoBN``), MASA-SR
    (``ResidualBlock``) and TTSR (``ResBlock``, ``res_scale`` 1) write it.
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


#: FlowNetS's contracting convs, (name, in, out, kernel, stride), in flownet2-pytorch's names;
#: CrossNet's flow estimator (MultiscaleWarpingNet) starts with the same ten.
FLOWNETS_CONVS: list[tuple[str, int, int, int, int]] = [
    ("conv1", 6, 64, 7, 2),
    ("conv2", 64, 128, 5, 2),
    ("conv3", 128, 256, 5, 2),
    ("conv3_1", 256, 256, 3, 1),
    ("conv4", 256, 512, 3, 2),
    ("conv4_1", 512, 512, 3, 1),
    ("conv5", 512, 512, 3, 2),
    ("conv5_1", 512, 512, 3, 1),
    ("conv6", 512, 1024, 3, 2),
    ("conv6_1", 1024, 1024, 3, 1),
]
