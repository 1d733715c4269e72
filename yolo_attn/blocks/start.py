"""Identity start for attention blocks inserted into a trained detector (ReZero / LayerScale).

A block ``f`` that gets a per-channel residual scale ``gamma`` (the parameter ``residual_gamma``,
shape ``(C, 1, 1)``, initialised at zero) computes

    y = x + gamma * (f(x) - x)

so at gamma = 0 it is exactly the identity: a trained model with fresh blocks inserted gives the
stock model's outputs, and training moves each channel away from the identity as far as it
helps (Bachlechner et al., "ReZero is All You Need", 2020, scalar alpha = 0 on a residual
branch; Touvron et al., "Going deeper with Image Transformers" (CaiT), 2021, per-channel
LayerScale). At gamma = 1 the block is its paper formula again.

A block *without* that parameter runs its own forward untouched: the paper formula, bit for bit.
That is what from-scratch training uses (``--attn-start paper``) and what every checkpoint made
before this mechanism holds, so old checkpoints load and behave as before.

How it applies to every block, user blocks included: ``registry.register_block`` wraps the
class's ``forward`` once with :func:`residual_forward`. The wrapper looks up ``residual_gamma``
in the instance's own parameters; nothing else about the class changes (its type, its state-dict
keys, its constructor), so YAML parsing, transfer by layer correspondence and the heatmaps'
"registered block" roles see the same modules. What a user block must provide is only the
registry contract: shape-preserving ``(B, C, H, W) -> (B, C, H, W)``; it must not define its own
attribute named ``residual_gamma``. No new class is pickled (the parameter is an
``nn.Parameter`` in the block's ``_parameters``), so the weights-only checkpoint loader needs no
new allowlist entry. Tracing (TorchScript, ONNX) records the extra ``add``/``mul``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

GAMMA = 'residual_gamma'


def residual_forward(forward):
    """``forward`` wrapped so that an instance holding ``residual_gamma`` blends with its input.

    Idempotent. Only the forward of the instance's own class applies the scale, so a registered
    subclass whose forward calls ``super().forward`` is scaled once, not twice.
    """
    if getattr(forward, '_residual_scale', False):
        return forward

    @functools.wraps(forward)
    def forward_with_residual_scale(self, x, *args, **kwargs):
        y = forward(self, x, *args, **kwargs)
        gamma = self._parameters.get(GAMMA)
        if gamma is None or type(self).forward is not forward_with_residual_scale:
            return y
        return x + gamma * (y - x)

    forward_with_residual_scale._residual_scale = True
    return forward_with_residual_scale


def supports_identity_start(module: nn.Module) -> bool:
    """Whether ``module``'s class forward is the registry's wrapped one."""
    return getattr(type(module).forward, '_residual_scale', False)


def has_identity_start(module: nn.Module) -> bool:
    return module._parameters.get(GAMMA) is not None


def start_as_identity(block: nn.Module, channels: int, value: torch.Tensor | None = None,
                      device=None) -> nn.Parameter:
    """Give ``block`` a ``residual_gamma`` of ``channels`` zeros (or ``value``); returns it."""
    if not supports_identity_start(block):
        raise TypeError(f'{type(block).__name__} is not a registered attention block '
                        f'(its forward does not read {GAMMA})')
    if hasattr(block, GAMMA):
        raise ValueError(f'{type(block).__name__} already has an attribute {GAMMA!r} '
                         f'(an identity start, or a name of its own: rename it)')
    gamma = torch.zeros(channels, 1, 1, device=device)
    if value is not None:
        value = torch.as_tensor(value, dtype=torch.float32).to(gamma.device)
        if value.numel() != channels:
            raise ValueError(f'{GAMMA} for {type(block).__name__}: {value.numel()} values for {channels} channels')
        gamma = value.reshape(channels, 1, 1).clone()
    param = nn.Parameter(gamma)
    block.register_parameter(GAMMA, param)
    return param


def block_layers(model: nn.Module) -> dict[int, nn.Module]:
    """``{layer index: block}`` for the layers of a yolov5 model whose forward honours ``gamma``."""
    layers = getattr(model, 'model', None)
    if layers is None:
        return {}
    return {i: m for i, m in enumerate(layers) if supports_identity_start(m)}


def input_channels(model: nn.Module, layers) -> dict[int, int]:
    """Channel count entering each of ``layers`` of a yolov5 model, from one eval forward of a
    small zero image (any block's ``c1``, without relying on its constructor's attribute names)."""
    layers = list(layers)
    if not layers:
        return {}
    found: dict[int, int] = {}
    hooks = [model.model[i].register_forward_pre_hook(
        lambda mod, args, i=i: found.__setitem__(i, int(args[0].shape[1]))) for i in layers]
    stride = int(max(getattr(model, 'stride', torch.tensor([32.0])).max().item(), 32))
    p = next(model.parameters())
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 2 * stride, 2 * stride, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found


def apply_identity_start(model: nn.Module, layers=None, values: dict | None = None) -> list[int]:
    """Give the block layers ``layers`` of a yolov5 model (default: all) an identity start.

    ``values`` maps a layer index to a gamma to load instead of zeros (a trained model's scales
    carried over). Blocks that already have a gamma are left alone. Returns the indices changed.
    """
    blocks = block_layers(model)
    values = values or {}
    todo = sorted(i for i in (blocks if layers is None else layers)
                  if i in blocks and not has_identity_start(blocks[i]))
    channels = input_channels(model, todo)
    device = next(model.parameters()).device
    for i in todo:
        start_as_identity(blocks[i], channels[i], values.get(i), device=device)
    return todo
