"""Convolutional Block Attention Module (Woo, Park, Lee, Kweon: "CBAM", ECCV 2018)."""

import torch
import torch.nn as nn

from .registry import register_block
from ..errors import is_int
from ._width import hidden_width


class ChannelAttention(nn.Module):
    """CBAM's channel half: average- and max-pooled descriptors through one shared bias-free MLP
    (as in the paper's equation), summed, sigmoid, scale. ``mean``/``amax`` pooling, no BatchNorm."""

    def __init__(self, c1: int, r: int = 16):
        super().__init__()
        hidden = hidden_width(c1, r)
        self.mlp = nn.Sequential(nn.Linear(c1, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, c1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))
        return x * w[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM's spatial half: channel-wise mean and max maps, concatenated in that order, a k x k conv
    (padding k // 2, no bias) to one map, sigmoid, scale every channel."""

    def __init__(self, k: int = 7):
        super().__init__()
        if not is_int(k) or k < 1 or k % 2 == 0:
            raise ValueError(f'spatial kernel k must be a positive odd integer (shape-preserving), got {k!r}')
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(maps))


@register_block(paper='Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018')
class CBAM(nn.Module):
    """Channel attention, then spatial attention. YAML: ``[-1, 1, CBAM, []]``, ``[-1, 1, CBAM, [8]]``
    (reduction) or ``[-1, 1, CBAM, [16, 3]]`` (reduction, spatial kernel)."""

    def __init__(self, c1: int, r: int = 16, k: int = 7):
        super().__init__()
        self.channel = ChannelAttention(c1, r)
        self.spatial = SpatialAttention(k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
