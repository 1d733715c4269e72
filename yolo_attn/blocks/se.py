"""Squeeze-and-Excitation block (Hu, Shen, Sun: "Squeeze-and-Excitation Networks", CVPR 2018)."""

import torch
import torch.nn as nn

from .registry import register_block
from ._width import hidden_width


@register_block(paper='Hu et al., Squeeze-and-Excitation Networks, CVPR 2018')
class SE(nn.Module):
    """Channel gate: global average pool -> Linear C->h -> ReLU -> Linear h->C (no biases) -> sigmoid
    -> scale, ``h = hidden_width(C, r)``. YAML: ``[-1, 1, SE, []]`` or ``[-1, 1, SE, [8]]`` (reduction).
    Pooling is ``x.mean``, not ``AdaptiveAvgPool2d`` (deterministic CUDA backward, clean ONNX export)."""

    def __init__(self, c1: int, r: int = 16):
        super().__init__()
        hidden = hidden_width(c1, r)
        self.fc1 = nn.Linear(c1, hidden, bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, c1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * w[:, :, None, None]
