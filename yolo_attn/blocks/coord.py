"""Coordinate Attention (Hou, Zhou, Feng: "Coordinate Attention for Efficient Mobile Network
Design", CVPR 2021)."""

import torch
import torch.nn as nn

from .registry import register_block
from ..errors import is_int
from ._width import MIN_HIDDEN


@register_block(paper='Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021')
class CoordAtt(nn.Module):
    """Channel attention that keeps position along each axis.

    1. Pool along W (a ``C x H`` descriptor per column position) and along H (``C x W``): means.
    2. Concatenate both along the spatial axis, ``(B, C, H + W, 1)``, and transform them with one
       shared 1x1 conv C -> h, BatchNorm and h-swish (``x * ReLU6(x + 3) / 6``).
    3. Split back; a 1x1 conv h -> C and a sigmoid per direction give ``a_h (B, C, H, 1)`` and
       ``a_w (B, C, 1, W)``; the output is ``x * a_h * a_w``.

    Hidden width ``h = max(8, C // r)``, r = 32 by default (the paper's formula and reduction; not
    capped by the SE/CBAM rule, so any r works at any C). The shared conv has no bias (BatchNorm
    follows it, so a bias would be cancelled); the two gate convs have biases, as in the authors'
    code. The BatchNorm normalises a ``(B, h, H + W, 1)`` tensor: at least two values per channel
    even for B = 1 and a 1 x 1 map, so yolov5's train-mode stride probe (1 x 3 x 256 x 256) works.

    YAML: ``[-1, 1, CoordAtt, []]`` or ``[-1, 1, CoordAtt, [16]]`` (reduction r).
    """

    def __init__(self, c1: int, r: int = 32):
        super().__init__()
        if not is_int(r) or r < 1:
            raise ValueError(f'reduction must be a positive integer, got {r!r}')
        hidden = max(MIN_HIDDEN, c1 // r)
        self.conv1 = nn.Conv2d(c1, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(hidden, c1, 1)
        self.conv_w = nn.Conv2d(hidden, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pooled = torch.cat((x.mean(3, keepdim=True), x.mean(2, keepdim=True).transpose(2, 3)), 2)
        y_h, y_w = self.act(self.bn1(self.conv1(pooled))).split((h, w), 2)
        a_h = torch.sigmoid(self.conv_h(y_h))  # (B, C, H, 1)
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        return x * a_h * a_w
