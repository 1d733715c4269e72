"""``yolo-attn train --attn-start identity|paper``: how attention blocks new to a model start.

Blocks inserted into a trained model start fresh. A fresh sigmoid gate scales features by about
0.5 (CBAM twice), so every trained layer downstream sees inputs it never saw: measured on the
shapes data, CBAM transferred from the stock checkpoint validates at mAP50 0.000 before training.
``identity`` (the default whenever ``--weights`` transfers into blocks the checkpoint does not
have) gives those blocks a zero residual scale (``yolo_attn.identity_start``), so the model
starts exactly where the stock one is; ``paper`` leaves the papers' formulas, as from-scratch
training does (the default without ``--weights``; ``--attn-start identity`` there starts every
block as the identity).

Whatever the mode, residual scales a checkpoint already holds are carried over: ``--resume``,
fine-tuning a trained identity-start model, or transferring it into another YAML (through the
layer correspondence) keep each block's learned gamma, since yolov5 rebuilds the model from its
YAML and the key would otherwise be dropped by ``intersect_dicts``.

Hooks (``scripts.run_script`` enters ``patched_train``, the train preflight calls ``install``): train.py's ``argparse`` gets the
flag (so ``yolo-attn train --help`` lists it), and train.py's ``smart_optimizer`` — the first
call after the pretrained transfer and before the optimizer exists — adds the scales, then, after
a transfer, validates once with yolov5's ``val.run`` and logs
``epoch 0 (after transfer): mAP50 … mAP50-95 …``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path

from ..identity_start import GAMMA, apply_identity_start, block_layers

LOGGER = logging.getLogger('yolov5')
MODES = ('identity', 'paper')
FLAG_HELP = ("how attention blocks new to the model start: 'identity' (residual scale 0, outputs equal the "
             "transferred model's; default when --weights transfers into new blocks) or 'paper' (the papers' "
             "formulas; default from scratch)")


class TrainArgumentParser(argparse.ArgumentParser):
    """train.py's parser plus ``--attn-start``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument('--attn-start', choices=MODES, default=None, help=FLAG_HELP)


def argparse_for_train():
    """An ``argparse`` module for train.py's globals whose ``ArgumentParser`` knows ``--attn-start``."""
    from .compat import ModuleView
    return ModuleView(argparse, ArgumentParser=TrainArgumentParser)


def checkpoint_gammas(ckpt) -> dict[int, object]:
    """``{layer index: residual gamma}`` held by a checkpoint's ``model`` (the weights train.py loads)."""
    if ckpt is None:
        return {}
    model = ckpt.get('model') or ckpt.get('ema')
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split('.')
        if len(parts) == 3 and parts[0] == 'model' and parts[1].isdigit() and parts[2] == GAMMA:
            out[int(parts[1])] = value.detach().float().clone()
    return out


def plan(mode, ckpt=None, src_yaml=None, dst_yaml=None):
    """``(mode, fresh, carried)``: the resolved mode, the target layer indices without a partner in
    the checkpoint (``None``: every layer, from scratch) and the gammas carried over, by target layer."""
    from ..config.transfer import layer_correspondence, layer_rows
    if ckpt is None:
        return mode or 'paper', None, {}
    gammas = checkpoint_gammas(ckpt)
    if dst_yaml is None or src_yaml is None:  # same model as the checkpoint's (fine-tune, resume)
        return mode or 'paper', [], gammas
    mapping = layer_correspondence(src_yaml, dst_yaml)
    fresh = sorted(set(range(len(layer_rows(dst_yaml)))) - set(mapping.values()))
    carried = {mapping[i]: g for i, g in gammas.items() if i in mapping}
    return mode or ('identity' if fresh else 'paper'), fresh, carried


def frozen_layers(opt) -> set[int]:
    """The layer indices train.py freezes (its own rule: ``--freeze N`` = first N, or a list)."""
    freeze = opt.freeze if isinstance(opt.freeze, (list, tuple)) else [opt.freeze]
    return set(freeze if len(freeze) > 1 else range(freeze[0]))


@contextlib.contextmanager
def patched_train(train):
    """For one run of train.py: its ``argparse`` knows ``--attn-start``, and whatever ``install``
    does to its ``smart_optimizer`` is undone afterwards."""
    saved = train.argparse, train.smart_optimizer
    train.argparse = argparse_for_train()
    try:
        yield
    finally:
        train.argparse, train.smart_optimizer = saved


def install(opt, ckpt=None) -> None:
    """Hook train.py's ``smart_optimizer`` for this run (called by the train preflight, inside
    ``patched_train``). ``ckpt``: the loaded ``--weights`` (or ``--resume``) checkpoint, if any."""
    import yolov5.train as train

    from ..config.files import load_cfg
    src_yaml = dst_yaml = None
    if ckpt is not None and opt.cfg and not opt.resume:  # the transfer by layer correspondence
        src_yaml, dst_yaml = (ckpt.get('ema') or ckpt['model']).yaml, load_cfg(opt.cfg)
    mode, fresh, carried = plan(getattr(opt, 'attn_start', None), ckpt, src_yaml, dst_yaml)
    opt.attn_start = mode
    transferred = ckpt is not None and dst_yaml is not None and not opt.resume
    original = train.smart_optimizer

    def smart_optimizer(model, *args, **kwargs):
        prepare(model, mode, fresh, carried, frozen_layers(opt))
        if transferred and int(os.getenv('RANK', -1)) in (-1, 0):
            validate_after_transfer(model, opt)
        return original(model, *args, **kwargs)

    train.smart_optimizer = smart_optimizer


def prepare(model, mode, fresh, carried, frozen=()) -> list[int]:
    """Carry the checkpoint's gammas, then give the fresh blocks an identity start (``identity``).
    Returns the layers that start as the identity."""
    blocks = block_layers(model)
    apply_identity_start(model, list(carried), values=carried)
    started = apply_identity_start(model, fresh) if mode == 'identity' else []
    for i in set(carried) | set(started):
        if i in blocks:
            getattr(blocks[i], GAMMA).requires_grad = i not in frozen
    names = ', '.join(f'{i} ({type(blocks[i]).__name__})' for i in started)
    if started:
        LOGGER.info(f'attention start: identity for layers {names} ({GAMMA} = 0, so the model starts as the '
                    f"transferred one; --attn-start paper for the papers' formulas)")
    elif mode == 'paper' and [i for i in (fresh if fresh is not None else blocks) if i in blocks]:
        LOGGER.info("attention start: paper (the new blocks' own formulas from their first step)")
    if carried:
        LOGGER.info(f'attention start: residual scales carried from the checkpoint for layers {sorted(carried)}')
    return started


def validate_after_transfer(model, opt) -> tuple[float, float]:
    """One validation of the transferred model before any step (yolov5's ``val.run`` on train.py's
    val split, settings as its per-epoch validation); logs and returns ``(mAP50, mAP50-95)``."""
    import yolov5.val as val
    from yolov5.utils.dataloaders import create_dataloader
    from yolov5.utils.general import check_dataset, check_img_size, colorstr
    data = check_dataset(opt.data)
    gs = max(int(model.stride.max()), 32)
    imgsz = check_img_size(opt.imgsz, gs, floor=gs * 2)
    batch = max(opt.batch_size, 1) // int(os.getenv('WORLD_SIZE', 1)) * 2
    loader = create_dataloader(data['val'], imgsz, batch, gs, opt.single_cls, hyp=opt.hyp, cache=None, rect=True,
                               rank=-1, workers=opt.workers * 2, pad=0.5, prefix=colorstr('epoch 0 val: '))[0]
    was_training = model.training
    try:
        (_, _, map50, map5095, *_), *_ = val.run(data, batch_size=batch, imgsz=imgsz, half=False, model=model,
                                                single_cls=opt.single_cls, dataloader=loader,
                                                save_dir=Path(opt.save_dir), plots=False)
    finally:
        model.train(was_training)
    LOGGER.info(f'epoch 0 (after transfer): mAP50 {map50:.4f} mAP50-95 {map5095:.4f}')
    return map50, map5095
