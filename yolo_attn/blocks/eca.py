"""Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu: "ECA-Net: Efficient Channel Attention
for Deep Convolutional Neural Networks", CVPR 2020)."""

import math

import torch
import torch.nn as nn

from ..errors import is_int, is_number
from .registry import register_block


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """The paper's adaptive kernel size (eq. 12): ``k = |log2(C) / gamma + b / gamma|_odd``, the
    nearest odd number, a tie going up as in the authors' code (``2 * floor(t / 2) + 1``). With
    gamma=2, b=1: 3 for C = 8..127, 5 up to 2047; 1 below C = 8 (timm clamps it to 3)."""
    if not (is_number(gamma) and gamma > 0):
        raise ValueError(f'ECA gamma must be a positive number, got {gamma!r}')
    if not is_number(b):
        raise ValueError(f'ECA b must be a number, got {b!r}')
    t = (math.log2(channels) + b) / gamma
    if t < 0:
        raise ValueError(f'ECA kernel size for C={channels}, gamma={gamma}, b={b} is negative ({t:.2f})')
    return 2 * math.floor(t / 2) + 1


@register_block(paper='Wang et al., ECA-Net: Efficient Channel Attention, CVPR 2020')
class ECA(nn.Module):
    """Channel gate without reduction: global average pool -> 1-D conv of size k across channels (no
    bias) -> sigmoid -> scale. ``k``: adaptive (``eca_kernel_size``) unless an odd ``k`` is given.
    YAML: ``[-1, 1, ECA, []]`` or ``[-1, 1, ECA, [3]]``."""

    def __init__(self, c1: int, k: int | None = None, gamma: float = 2, b: float = 1):
        super().__init__()
        if k is None:
            k = eca_kernel_size(c1, gamma, b)
        elif not is_int(k) or k < 1 or k % 2 == 0:
            raise ValueError(f'ECA kernel k must be a positive odd integer (or omitted: adaptive), got {k!r}')
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3)).unsqueeze(1))  # (B, 1, C): the channel descriptor as a 1-D signal
        return x * torch.sigmoid(y).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1)
