"""Noise-residual input (SRM): fixed forensic high-pass filters beside the RGB channels.

Face swaps and reenactment re-render the face and blend it in; the camera's and the codec's
noise inside the face then differs from the noise around it. The three classic 5x5 filters of
the spatial rich model (Fridrich and Kodovsky, 2012), used by DFDC and FaceForensics++ models,
take the image content away and leave that noise: each sums to zero, so a flat region gives
zero residual whatever its brightness.
"""

from __future__ import annotations

import torch
from torch import nn

from dfdc.kinds.heads import TimmWrapper

__all__ = ["SRM_KERNELS", "NoiseResidualInput", "srm_kernels"]

# The three classic SRM kernels (5x5, each normalised; all sum to zero).
SRM_KERNELS = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2],
     [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)  # fmt: skip
SRM_SCALE = (4.0, 12.0, 2.0)


def srm_kernels() -> torch.Tensor:
    """(3, 3, 5, 5): output k applies kernel k to each of R, G and B and sums (a grey
    residual per filter)."""
    k = torch.tensor(SRM_KERNELS, dtype=torch.float32)
    k = k / torch.tensor(SRM_SCALE).view(3, 1, 1)
    return k.unsqueeze(1).repeat(1, 3, 1, 1) / 3.0


class NoiseResidualInput(TimmWrapper):
    """A timm model built for 6 input channels, fed the image and its 3 SRM residuals."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        self.register_buffer("srm", srm_kernels(), persistent=False)

    def residuals(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.srm.to(x.dtype), padding=2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(torch.cat([x, self.residuals(x)], dim=1))
