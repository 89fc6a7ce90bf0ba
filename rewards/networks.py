"""Network blocks of SPEC §5, shared by the policy, the value function and the discriminator.

Images come in NHWC, linear RGB (nominally [0, 1]); the encoder subtracts 0.5, applies 4x4
stride-2 convolutions with leaky ReLU (0.2) -- 32, 64, 128 channels, then a last one to
4x4xC -- and flattens (C = 256 gives the paper's 4096-wide feature at 64x64 input).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def with_state_planes(image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """Append each state entry as a constant plane: ``(N,H,W,3)`` + ``(N,d)`` -> ``(N,H,W,3+d)``."""
    n, h, w, _ = image.shape
    planes = state[:, None, None, :].expand(n, h, w, state.shape[-1])
    return torch.cat([image, planes.to(image.dtype)], dim=-1)


class ConvEncoder(nn.Module):
    """``(N, H, W, C_in)`` -> ``(N, feature_dim)``; 64x64 input with defaults gives 4096 features."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (32, 64, 128),
        out_channels: int = 256,
        input_size: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, input_size
        for width in list(channels) + [out_channels]:
            layers += [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c, size = width, size // 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.feature_dim = c * size * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.5).permute(0, 3, 1, 2)
        return self.dropout(self.net(x))


def mlp(in_dim: int, out_dim: int, hidden: int = 128) -> nn.Sequential:
    """``Linear(in, hidden) -> LeakyReLU(0.2) -> Linear(hidden, out)`` (the paper's heads)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out_dim))
