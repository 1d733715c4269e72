"""Coordinate Attention (Hou, Zhou, Feng: "Coordinate Attention for Efficient Mobile Network
Design", CVPR 2021)."""

import torch
import torch.nn as nn

from .registry import register_block
from ..errors import is_int
from ._width import MIN_HIDDEN


@register_block(paper='Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021')
class CoordAtt(nn.Module):
    """Channel attention that keeps position: means along W and H, concatenated ``(B, C, H + W, 1)``,
    one shared 1x1 conv C -> h (no bias) + BatchNorm + h-swish, split, a 1x1 conv h -> C + sigmoid
    per direction; output ``x * a_h * a_w``. ``h = max(8, C // r)`` (the paper's, r = 32). The
    BatchNorm sees H + W values per channel, so yolov5's batch-1 train-mode stride probe works.
    YAML: ``[-1, 1, CoordAtt, []]`` or ``[-1, 1, CoordAtt, [16]]`` (reduction r)."""

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
