"""``yolo-attn train --attn-start ramp|paper|residual``: how attention blocks new to a model start.

A fresh sigmoid gate scales features by about 0.5 (CBAM twice), so a pretrained model with fresh
blocks collapses (CBAM from the stock shapes checkpoint: mAP50 0.000 before training).

* ``ramp`` (default when ``--weights`` transfers into new blocks): each new block is mixed with its
  input, ``x + b * (block(x) - x)``, the blend ``b`` rising linearly from 0 to 1 over the first
  ``--attn-ramp`` epochs (default: yolov5's warmup epochs, at most half the run), per iteration.
  Epoch 0 equals the transferred model; once ``b`` = 1 the blend is dropped from the saved weights,
  which then compute the papers' formulas. best.pt is chosen among epochs at full strength only.
* ``paper``: the papers' formulas from the first step (the default from scratch).
* ``residual``: a learned per-channel scale from 0 (ReZero/LayerScale), in the optimizer group
  without weight decay. A different architecture from the paper's.

Starts a checkpoint already holds are carried over (``--resume``, fine-tuning, transfer into another
YAML through the layer correspondence). Hooks, for one train.py run (``patched_train``): its
``argparse`` knows the flags; ``smart_optimizer`` prepares the blocks, validates once after a
transfer (``epoch 0 (after transfer): ...``) and moves residual scales out of weight decay; ``create_dataloader``
gives the batches per epoch; ``ModelEMA`` keeps the blend exact in the EMA copy; ``fitness``
ignores epochs below full strength; ``strip_optimizer`` drops finished blends from last/best.pt.
Per epoch the blend and each block's strength (``blocks.strength``) are logged and written to
``attention.csv`` in the run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
from pathlib import Path

from ..blocks.start import (BLEND, GAMMA, BlendRamp, apply_blend_start, apply_residual_start, block_layers,
                            finish_saved_blends, ramp_iterations)
from ..torchrun import rank

LOGGER = logging.getLogger('yolov5')
MODES = ('ramp', 'paper', 'residual')
FLAG_HELP = ("how attention blocks new to the model start: 'ramp' (mixed in from 0 to their full paper formula "
             "over --attn-ramp epochs; default when --weights transfers into new blocks), 'paper' (the papers' "
             "formulas from the first step; default from scratch) or 'residual' (a learned per-channel residual "
             "scale from 0, ReZero/LayerScale: a different architecture from the paper's)")
RAMP_HELP = ("epochs over which --attn-start ramp mixes the new blocks in (default: hyp warmup_epochs, at most "
             "half the epochs)")
SAMPLE_IMAGES = 4  # training images the per-epoch strength is measured on


class TrainArgumentParser(argparse.ArgumentParser):
    """train.py's parser plus ``--attn-start`` and ``--attn-ramp``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument('--attn-start', choices=MODES, default=None, help=FLAG_HELP)
        self.add_argument('--attn-ramp', type=float, default=None, metavar='EPOCHS', help=RAMP_HELP)


def argparse_for_train():
    """An ``argparse`` module for train.py's globals whose ``ArgumentParser`` knows the flags."""
    from .compat import ModuleView
    return ModuleView(argparse, ArgumentParser=TrainArgumentParser)


def checkpoint_starts(ckpt) -> dict[int, tuple[str, object]]:
    """``{layer: ('gamma', tensor) | ('blend', float)}``: the starts a checkpoint's model holds."""
    if ckpt is None:
        return {}
    model = ckpt.get('model') or ckpt.get('ema')
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split('.')
        if len(parts) == 3 and parts[0] == 'model' and parts[1].isdigit() and parts[2] in (GAMMA, BLEND):
            kind = 'gamma' if parts[2] == GAMMA else 'blend'
            out[int(parts[1])] = (kind, value.detach().float().clone() if kind == 'gamma' else float(value))
    return out


def checkpoint_gammas(ckpt) -> dict[int, object]:
    """``{layer: residual gamma}`` held by a checkpoint's model."""
    return {i: v for i, (kind, v) in checkpoint_starts(ckpt).items() if kind == 'gamma'}


def plan(mode, ckpt=None, src_yaml=None, dst_yaml=None):
    """``(mode, fresh, carried)``: the resolved mode, the target layers without a partner in the
    checkpoint (``None``: every layer, from scratch) and the starts carried over, by target layer."""
    from ..config.transfer import layer_correspondence, layer_rows
    if ckpt is None:
        return mode or 'paper', None, {}
    starts = checkpoint_starts(ckpt)
    if dst_yaml is None or src_yaml is None:  # same model as the checkpoint's (fine-tune, resume)
        return mode or 'paper', [], starts
    mapping = layer_correspondence(src_yaml, dst_yaml)
    fresh = sorted(set(range(len(layer_rows(dst_yaml)))) - set(mapping.values()))
    carried = {mapping[i]: s for i, s in starts.items() if i in mapping}
    return mode or ('ramp' if fresh else 'paper'), fresh, carried


def frozen_layers(opt) -> set[int]:
    """The layer indices train.py freezes (its own rule: ``--freeze N`` = first N, or a list)."""
    freeze = opt.freeze if isinstance(opt.freeze, (list, tuple)) else [opt.freeze]
    return set(freeze if len(freeze) > 1 else range(freeze[0]))


def prepare(model, mode, fresh, carried, frozen=()) -> list[int]:
    """Carry the checkpoint's starts, then start the fresh blocks as ``mode`` says. Returns the
    layers given a new start (blend 0 or residual scale 0)."""
    blocks = block_layers(model)
    apply_residual_start(model, [i for i, (k, _) in carried.items() if k == 'gamma'],
                         values={i: v for i, (k, v) in carried.items() if k == 'gamma'})
    apply_blend_start(model, [i for i, (k, _) in carried.items() if k == 'blend'],
                      values={i: v for i, (k, v) in carried.items() if k == 'blend'})
    start = {'ramp': apply_blend_start, 'residual': apply_residual_start}.get(mode)
    started = start(model, fresh) if start else []
    for i, m in blocks.items():
        if m._parameters.get(GAMMA) is not None:
            m._parameters[GAMMA].requires_grad = i not in frozen
    names = ', '.join(f'{i} ({type(blocks[i]).__name__})' for i in started)
    if started:
        what = {'ramp': "blend 0, rising to the papers' formulas", 'residual': f'{GAMMA} = 0, learned'}[mode]
        LOGGER.info(f'attention start: {mode} for layers {names} ({what}; the model starts as the transferred one)')
    elif mode == 'paper' and [i for i in (fresh if fresh is not None else blocks) if i in blocks]:
        LOGGER.info("attention start: paper (the new blocks' own formulas from their first step)")
    if carried:
        LOGGER.info(f'attention start: carried from the checkpoint for layers {sorted(carried)}')
    return started


def residual_group(optimizer, model) -> int:
    """Move every trainable residual scale out of the weight-decayed parameter group into the one
    without weight decay (yolov5's ``smart_optimizer`` decays any parameter not named bias/weight,
    pulling the scales toward 0). The group count stays 3: train.py's loggers write one column
    per group's learning rate."""
    scales = [m._parameters[GAMMA] for m in model.modules()
              if m._parameters.get(GAMMA) is not None and m._parameters[GAMMA].requires_grad]
    free = [g for g in optimizer.param_groups[1:] if g.get('weight_decay', 0) == 0]  # [0]: biases (own warmup)
    if not scales or not free:
        return 0
    ids = {id(p) for p in scales}
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in ids]
    free[-1]['params'].extend(scales)
    return len(scales)


class StartRun:
    """One training run's attention start: the blend ramp (``blocks.start.BlendRamp``) and what is
    logged per epoch."""

    def __init__(self, opt, mode, fresh, carried, start_epoch=0):
        self.opt, self.mode, self.fresh, self.carried = opt, mode, fresh, carried  # train() sets the run's opt
        self.start_epoch = start_epoch
        self.model = self.ema = self.sample = None
        self.ramp = None  # made once the model, its EMA copy and the train loader exist

    def batches(self, nb: int) -> None:
        """The train loader's batches per epoch (train.py makes it after the model and its EMA): the ramp."""
        if self.ramp is not None or self.model is None:
            return
        ramp = getattr(self.opt, 'attn_ramp', None)
        if ramp is None:
            ramp = float(hyp_of(self.opt).get('warmup_epochs', 3))
        steps = ramp_iterations(ramp, self.opt.epochs, nb)
        self.ramp = BlendRamp(self.model, steps, self.start_epoch * nb, self.ema.ema if self.ema else None)
        if self.ramp.blocks:
            LOGGER.info(f'attention start: blend rises to 1 over the first {steps} iterations '
                        f'({min(ramp, self.opt.epochs / 2):g} epochs of {nb} batches)')

    def step(self) -> None:
        """Before each training batch (every rank)."""
        if self.ramp is not None:
            self.ramp.step()

    def full_strength(self) -> bool:
        return self.ramp is None or self.ramp.full_strength()

    # what is logged per epoch ----------------------------------------------------------------
    def keep_sample(self, imgs) -> None:
        if self.sample is None:
            self.sample = imgs[:SAMPLE_IMAGES].detach().clone()

    def epoch_end(self, epoch) -> None:
        model = self.ema.ema if self.ema is not None else self.model
        if model is None or self.sample is None or not block_layers(model):
            return
        from ..blocks.strength import block_strength
        p = next(model.parameters())
        rows = block_strength(model, self.sample.to(p.device, p.dtype))
        LOGGER.info('attention: ' + '; '.join(f'layer {r.layer} {r.name} {r.mix}, changes its features by '
                                             f'{100 * r.change:.1f} %' for r in rows))
        path = Path(self.opt.save_dir) / 'attention.csv'
        new = not path.exists()
        with open(path, 'a', newline='') as f:
            w = csv.writer(f)
            if new:
                w.writerow(['epoch', 'layer', 'block', 'mix', 'change'])
            w.writerows([epoch, r.layer, r.name, r.mix, f'{r.change:.6f}'] for r in rows)


def hyp_of(opt) -> dict:
    if isinstance(opt.hyp, dict):
        return opt.hyp
    from ..config.yamlfile import read_yaml
    return read_yaml(Path(opt.hyp))


_RUN: list[StartRun] = []  # the run in progress (train.py's hooks read it)


def current() -> StartRun | None:
    return _RUN[-1] if _RUN else None


def add_callbacks(callbacks) -> None:
    """Register the per-batch blend and the per-epoch log on a train.py ``Callbacks`` object."""
    callbacks.register_action('on_train_batch_start', 'yolo_attn_blend', lambda *a: current() and current().step())
    callbacks.register_action('on_train_batch_end', 'yolo_attn_sample',
                              lambda model, ni, imgs, *a: current() and current().keep_sample(imgs))
    callbacks.register_action('on_train_epoch_end', 'yolo_attn_strength',
                              lambda epoch=0: current() and current().epoch_end(epoch))


def finish_checkpoint(f) -> None:
    """Drop the blends that reached 1 from a saved checkpoint (after train.py's ``strip_optimizer``)."""
    from .checkpoints import load_checkpoint
    if finish_saved_blends(f, load_checkpoint):
        LOGGER.info(f'{f}: attention blocks at full strength, saved as the papers\' formulas (blend removed)')


@contextlib.contextmanager
def patched_train(train):
    """For one run of train.py: its flags, and the hooks ``install`` relies on; undone afterwards."""
    names = ('argparse', 'smart_optimizer', 'create_dataloader', 'ModelEMA', 'fitness', 'strip_optimizer')
    saved = {n: getattr(train, n) for n in names}
    train.argparse = argparse_for_train()

    def create_dataloader(*args, **kwargs):
        loader, dataset = saved['create_dataloader'](*args, **kwargs)
        if current() is not None:
            current().batches(len(loader))  # the first call is the train loader
        return loader, dataset

    class ModelEMA(saved['ModelEMA']):
        def __init__(self, model, *args, **kwargs):
            super().__init__(model, *args, **kwargs)
            if current() is not None:
                current().ema = self

        def update(self, model):
            super().update(model)
            run = current()
            if run is not None and run.ramp is not None:
                run.ramp.sync()  # the EMA holds the blend in force, not an average of it

    def fitness(x):
        f = saved['fitness'](x)
        run = current()
        return f - 2.0 if run is not None and not run.full_strength() else f  # best.pt at full strength

    def strip_optimizer(f='best.pt', s=''):
        saved['strip_optimizer'](f, s)
        finish_checkpoint(s or f)

    train.create_dataloader, train.ModelEMA, train.fitness = create_dataloader, ModelEMA, fitness
    train.strip_optimizer = strip_optimizer
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(train, n, v)
        _RUN.clear()


def install(opt, ckpt=None) -> StartRun:
    """Hook train.py's ``smart_optimizer`` for this run (called by the train preflight, inside
    ``patched_train``). ``ckpt``: the loaded ``--weights`` (or ``--resume``) checkpoint, if any."""
    import yolov5.train as train

    from ..config.files import load_cfg
    src_yaml = dst_yaml = None
    if ckpt is not None and opt.cfg and not opt.resume:  # the transfer by layer correspondence
        src_yaml, dst_yaml = (ckpt.get('ema') or ckpt['model']).yaml, load_cfg(opt.cfg)
    mode, fresh, carried = plan(getattr(opt, 'attn_start', None), ckpt, src_yaml, dst_yaml)
    opt.attn_start = mode
    if getattr(opt, 'attn_ramp', None) is not None and opt.attn_ramp < 0:
        from ..errors import OptionError
        raise OptionError('attn_ramp', f'{opt.attn_ramp!r}: must be a number of epochs >= 0')
    start_epoch = ckpt.get('epoch', -1) + 1 if (opt.resume and ckpt is not None) else 0
    run = StartRun(opt, mode, fresh, carried, start_epoch)
    _RUN[:] = [run]
    transferred = ckpt is not None and dst_yaml is not None and not opt.resume
    original = train.smart_optimizer

    def smart_optimizer(model, *args, **kwargs):
        run.model = model
        prepare(model, mode, fresh, carried, frozen_layers(opt))
        if transferred and rank() in (-1, 0):
            validate_after_transfer(model, opt)
        optimizer = original(model, *args, **kwargs)
        n = residual_group(optimizer, model)
        if n:
            LOGGER.info(f'attention start: {n} residual scales in the parameter group without weight decay')
        return optimizer

    train.smart_optimizer = smart_optimizer
    return run


def validate_after_transfer(model, opt) -> tuple[float, float]:
    """One validation of the transferred model before any step (yolov5's ``val.run`` on train.py's
    val split, settings as its per-epoch validation); logs and returns ``(mAP50, mAP50-95)``."""
    import yolov5.val as val
    from yolov5.utils.dataloaders import create_dataloader
    from yolov5.utils.general import check_dataset, check_img_size, colorstr

    from ..torchrun import world_size
    data = check_dataset(opt.data)
    gs = max(int(model.stride.max()), 32)
    imgsz = check_img_size(opt.imgsz, gs, floor=gs * 2)
    batch = max(opt.batch_size, 1) // world_size() * 2
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
