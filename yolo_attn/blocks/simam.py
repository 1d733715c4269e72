"""SimAM, a simple parameter-free attention module (Yang, Zhang, Li, Xie: "SimAM: A Simple,
Parameter-Free Attention Module for Convolutional Neural Networks", ICML 2021)."""

import torch
import torch.nn as nn

from ..errors import is_number
from .registry import register_block


@register_block(paper='Yang et al., SimAM: A Simple, Parameter-Free Attention Module, ICML 2021')
class SimAM(nn.Module):
    """Energy-based gate, one weight per neuron, no parameters: ``x * sigmoid((x - mu)^2 / (4 * (s2 +
    lam)) + 1/2)`` per channel, ``s2 = sum((x - mu)^2) / n``, n = H * W - 1 (the paper's eq. 5
    inverted); n is taken as 1 on a 1 x 1 map. ``lam`` > 0 (paper: 1e-4); ``c1`` unused.
    YAML: ``[-1, 1, SimAM, []]`` or ``[-1, 1, SimAM, [0.001]]``."""

    def __init__(self, c1: int, lam: float = 1e-4):
        super().__init__()
        if not is_number(lam) or not lam > 0:
            raise ValueError(f'SimAM lambda must be a positive number, got {lam!r}')
        self.lam = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean((2, 3), keepdim=True)).square()
        inverse_energy = d / (4 * (d.sum((2, 3), keepdim=True) / n + self.lam)) + 0.5
        return x * torch.sigmoid(inverse_energy)

    def extra_repr(self) -> str:
        return f'lam={self.lam}'
