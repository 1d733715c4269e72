"""How much each inserted block changes its features: ``mean |y - x| / mean |x|`` on real images.

An attention block that multiplies its input by gates near 1 (or is mixed in at a blend or residual
scale near 0) is the identity in all but name; this number shows it per block, next to the start
it holds (``blocks.start``), so no model ships with inert blocks unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .start import GAMMA, blend_of, block_layers


@dataclass(frozen=True)
class BlockStrength:
    layer: int
    name: str
    mix: str  # 'paper', 'blend 0.40' or 'residual |γ| mean 0.002 max 0.010'
    change: float  # mean |y - x| / mean |x| over the images

    def line(self) -> str:
        return f'layer {self.layer:>3} {self.name:<10} {self.mix:<32} changes its features by {100 * self.change:.1f} %'


def mix_of(block: nn.Module) -> str:
    """What the block computes: its paper formula, or mixed with its input (and by how much)."""
    gamma = block._parameters.get(GAMMA)
    if gamma is not None:
        g = gamma.detach().abs().float()
        return f'residual |γ| mean {float(g.mean()):.3g} max {float(g.max()):.3g}'
    b = blend_of(block)
    return 'paper' if b is None else f'blend {b:.2f}'


@torch.no_grad()
def block_strength(model: nn.Module, images) -> list[BlockStrength]:
    """Each registered block of a YOLO model (``model.model[i]``) measured on ``images``: a B×3×H×W
    tensor (0-1, the model's dtype and device) or an iterable of them; the model runs in eval mode."""
    blocks = block_layers(model)
    sums = {i: [0.0, 0.0] for i in blocks}

    def hook(i):
        def record(module, args, out):
            x = args[0].float()
            sums[i][0] += float((out.float() - x).abs().mean())
            sums[i][1] += float(x.abs().mean())
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in blocks.items()]
    was_training = model.training
    try:
        model.eval()
        for batch in ([images] if torch.is_tensor(images) else images):
            model(batch)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return [BlockStrength(i, type(m).__name__, mix_of(m), sums[i][0] / max(sums[i][1], 1e-12))
            for i, m in blocks.items()]
