"""How a registered block starts inside a trained detector: a blend with its input, or a residual scale.

``register_block`` wraps every block's ``forward`` with :func:`residual_forward`; an instance may
then hold one of two tensors, and computes ``y = x + s * (f(x) - x)`` with

* ``attn_blend`` — a scalar buffer the trainer ramps from 0 to 1 (``--attn-start ramp``); at 1 it
  is removed (:func:`finish_blends`) and the block is its paper's formula, bit for bit;
* ``residual_gamma`` — a learned per-channel parameter, zero at the start (``--attn-start
  residual``; ReZero, Bachlechner et al. 2020; LayerScale, Touvron et al. 2021): a different
  architecture from the paper's, which keeps whatever scale training gives it.

A block holding neither runs its own forward untouched. Nothing is added to the class, so
module types, state-dict keys of the block and the checkpoint allowlist stay as they are.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn as nn

GAMMA = 'residual_gamma'
BLEND = 'attn_blend'


def residual_forward(forward):
    """``forward`` wrapped so that an instance holding ``attn_blend`` or ``residual_gamma`` mixes
    in its input. Idempotent; only the instance's own class forward mixes (a registered subclass
    calling ``super().forward`` is mixed once)."""
    if getattr(forward, '_residual_scale', False):
        return forward

    @functools.wraps(forward)
    def forward_with_residual_scale(self, x, *args, **kwargs):
        y = forward(self, x, *args, **kwargs)
        s = self._parameters.get(GAMMA)
        if s is None:
            s = self._buffers.get(BLEND)
        if s is None or type(self).forward is not forward_with_residual_scale:
            return y
        return x + s * (y - x)

    forward_with_residual_scale._residual_scale = True
    return forward_with_residual_scale


def supports_start(module: nn.Module) -> bool:
    """Whether ``module``'s class forward is the registry's wrapped one."""
    return getattr(type(module).forward, '_residual_scale', False)


def has_residual_scale(module: nn.Module) -> bool:
    """Whether ``module`` holds a residual scale (``--attn-start residual``)."""
    return module._parameters.get(GAMMA) is not None


def blend_of(module: nn.Module) -> float | None:
    """The blend in force in ``module`` (None: it has none)."""
    b = module._buffers.get(BLEND)
    return None if b is None else float(b)


def _check_free(block: nn.Module) -> None:
    if not supports_start(block):
        raise TypeError(f'{type(block).__name__} is not a registered attention block '
                        f'(its forward does not read {GAMMA} or {BLEND})')
    for attr in (GAMMA, BLEND):
        if hasattr(block, attr):
            raise ValueError(f'{type(block).__name__} already has an attribute {attr!r} '
                             f'(a start of its own, or a name of its own: rename it)')


def start_residual(block: nn.Module, channels: int, value: torch.Tensor | None = None,
                   device=None) -> nn.Parameter:
    """Give ``block`` a ``residual_gamma`` of ``channels`` zeros (or ``value``); returns it."""
    _check_free(block)
    gamma = torch.zeros(channels, 1, 1, device=device)
    if value is not None:
        value = torch.as_tensor(value, dtype=torch.float32).to(gamma.device)
        if value.numel() != channels:
            raise ValueError(f'{GAMMA} for {type(block).__name__}: {value.numel()} values for {channels} channels')
        gamma = value.reshape(channels, 1, 1).clone()
    param = nn.Parameter(gamma)
    block.register_parameter(GAMMA, param)
    return param


def start_blended(block: nn.Module, value: float = 0.0, device=None) -> torch.Tensor:
    """Give ``block`` an ``attn_blend`` buffer holding ``value`` (0: the identity); returns it."""
    _check_free(block)
    block.register_buffer(BLEND, torch.tensor(float(value), device=device))
    return block._buffers[BLEND]


def block_layers(model: nn.Module) -> dict[int, nn.Module]:
    """``{layer index: block}`` for the layers of a YOLO model that are registered blocks."""
    layers = getattr(model, 'model', None)
    if layers is None:
        return {}
    return {i: m for i, m in enumerate(layers) if supports_start(m)}


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


def _started(block: nn.Module) -> bool:
    return has_residual_scale(block) or blend_of(block) is not None


def apply_residual_start(model: nn.Module, layers=None, values: dict | None = None) -> list[int]:
    """Give the block layers ``layers`` of a yolov5 model (default: all) a zero residual scale.

    ``values`` maps a layer index to a gamma to load instead of zeros (a trained model's scales
    carried over). Blocks that already have a start are left alone. Returns the indices changed.
    """
    blocks = block_layers(model)
    values = values or {}
    todo = sorted(i for i in (blocks if layers is None else layers) if i in blocks and not _started(blocks[i]))
    channels = input_channels(model, todo)
    device = next(model.parameters()).device
    for i in todo:
        start_residual(blocks[i], channels[i], values.get(i), device=device)
    return todo


def apply_blend_start(model: nn.Module, layers=None, values: dict | None = None) -> list[int]:
    """Give the block layers ``layers`` (default: all) a blend of 0 (or ``values[i]``); returns them."""
    blocks = block_layers(model)
    values = values or {}
    todo = sorted(i for i in (blocks if layers is None else layers) if i in blocks and not _started(blocks[i]))
    device = next(model.parameters()).device
    for i in todo:
        start_blended(blocks[i], values.get(i, 0.0), device=device)
    return todo


def finish_blends(model: nn.Module) -> list[nn.Module]:
    """Remove every blend that reached 1: those blocks compute their paper formula again, exactly.
    Returns the blocks changed."""
    done = [m for m in model.modules() if m._buffers.get(BLEND) is not None and float(m._buffers[BLEND]) >= 1]
    for m in done:
        del m._buffers[BLEND]
    return done


def finish_saved_blends(path, load) -> bool:
    """Remove the finished blends from the checkpoint file ``path`` (read by ``load(path) -> dict``),
    rewritten whole through a temporary file; whether anything changed."""
    ckpt = load(path)
    if not any([finish_blends(m) for m in (ckpt.get('model'), ckpt.get('ema')) if m is not None]):
        return False
    tmp = Path(path).with_name(Path(path).name + '.tmp')
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return True


def ramp_iterations(ramp_epochs: float, epochs: int, batches: int) -> int:
    """Iterations of a blend ramp over ``ramp_epochs`` (at most half of ``epochs``) at ``batches`` per epoch."""
    return max(1, round(max(0.0, min(float(ramp_epochs), epochs / 2)) * batches))


class BlendRamp:
    """The blends in ``model`` rising linearly per iteration to 1 over ``steps`` iterations, each from
    where it started (a resumed run, ``done`` > 0, continues its original ramp from 0); ``copy`` (an
    EMA model of the same architecture) holds the blend in force. The same schedule for every trainer."""

    def __init__(self, model: nn.Module, steps: int, done: int = 0, copy: nn.Module | None = None):
        self.blocks = [m for m in model.modules() if blend_of(m) is not None]
        self.copies = [m for m in copy.modules() if blend_of(m) is not None] if copy is not None else []
        self.origin = [0.0 if done else blend_of(m) for m in self.blocks]
        self.steps, self.done = steps, done

    def step(self) -> None:
        """Before a training batch: the blends for the next iteration (nothing once at 1)."""
        if not self.blocks or self.done >= self.steps:
            return
        self.done += 1
        t = self.done / self.steps
        for m, b0 in zip(self.blocks, self.origin):
            m._buffers[BLEND].fill_(1.0 if t >= 1 else b0 + (1 - b0) * t)
        self.sync()

    def sync(self) -> None:
        """The copy's blends set to the model's (an EMA update averages buffers, once per accumulation)."""
        for c, m in zip(self.copies, self.blocks):
            c._buffers[BLEND].copy_(m._buffers[BLEND])

    def full_strength(self) -> bool:
        return all(blend_of(m) >= 1 for m in self.blocks + self.copies)
