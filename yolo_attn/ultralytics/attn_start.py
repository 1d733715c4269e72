"""How attention blocks new to a model start in ultralytics' trainer: ``attn_start=ramp|paper|residual``.

The same three starts as yolov5's ``--attn-start`` (``integration.attn_start``), as two keys of
ultralytics' own configuration, registered into its defaults at install: ``yolo-attn yolo detect
train ... attn_start=paper attn_ramp=5`` and ``model.train(..., attn_start='residual')`` are
checked like any key of ultralytics', land in ``args.yaml`` and the checkpoints' ``train_args``.

* When ``load()`` moves pretrained weights into a YAML with blocks the checkpoint lacks
  (``transfer``), those blocks get a blend of 0 (``blocks.start``): the model computes the stock
  one, and the layers are noted on the model (``FRESH``) for the trainer.
* ``ramp`` (the default for such a transfer): the trainer raises the blend per batch to 1 over
  ``attn_ramp`` epochs (default ``warmup_epochs``, at most half the run), keeps it exact in the EMA
  copy, keeps best.pt to epochs at full strength, and drops finished blends from last.pt/best.pt,
  which then compute the papers' formulas. ``paper``: the papers' formulas from the first step
  (the default from scratch). ``residual``: a learned per-channel scale from 0 (ReZero/LayerScale),
  in the optimizer group without weight decay; a different architecture from the paper's.
* A start a checkpoint holds (a blend mid-ramp, a residual scale) is carried over by ``load()``:
  fine-tuning, ``resume``, the model ``Model.train`` rebuilds from the one ``YOLO.load`` filled.
* After a transfer into new blocks, the starting model is validated once before the first batch
  (``epoch 0 (after transfer): mAP50 … mAP50-95 …``), on a copy, by a standalone validator with the
  run's own settings. Each epoch, each block's mix and strength (``blocks.strength``, on 4 training
  images) is logged and written to ``attention.csv`` in the run folder.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from ..blocks.start import (BLEND, BlendRamp, apply_blend_start, apply_residual_start, blend_of, block_layers,
                            finish_saved_blends, has_residual_scale, ramp_iterations)
from ..errors import UserError

LOGGER = logging.getLogger('ultralytics')
MODES = ('ramp', 'paper', 'residual')
KEYS = {'attn_start': None, 'attn_ramp': None}  # ultralytics-style keys, None: the defaults described above
FRESH = 'yolo_attn_fresh'  # attribute of a loaded model: its block layers a transfer left fresh ([]: none)
STATE = '_yolo_attn_start'  # the trainer's StartRun
SAMPLE_IMAGES = 4  # training images the per-epoch strength is measured on


class OptionValueError(UserError, ValueError):
    """A bad ``attn_start`` / ``attn_ramp`` / ``cache`` value (ultralytics raises ValueError for its own keys)."""


# ---- the keys in ultralytics' configuration -------------------------------------------------------

def check_keys(cfg: dict) -> None:
    """``attn_start`` one of MODES (or None), ``attn_ramp`` a number of epochs >= 0 (or None)."""
    mode, ramp = cfg.get('attn_start'), cfg.get('attn_ramp')
    if mode is not None and mode not in MODES:
        raise OptionValueError(f"attn_start={mode!r} is not valid: choose {', '.join(MODES)} (how attention blocks "
                               f"new to the model start)")
    if ramp is not None and (isinstance(ramp, bool) or not isinstance(ramp, (int, float)) or not ramp >= 0
                             or math.isinf(ramp)):
        raise OptionValueError(f'attn_ramp={ramp!r} is not valid: a number of epochs >= 0 (0: the papers\' formulas '
                               f'from the first step)')


def register_keys() -> None:
    """Add ``attn_start`` / ``attn_ramp`` to ultralytics' defaults (so its key check accepts them, in the
    CLI, ``Model.train``, the DDP worker and a resume) and check their values with its ``check_cfg``
    (``cache`` too: ``datasets.check_cache``)."""
    import ultralytics.cfg as cfg
    from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT
    for k, v in KEYS.items():
        DEFAULT_CFG_DICT.setdefault(k, v)  # DEFAULT_CFG_KEYS is a view of this dict
        if not hasattr(DEFAULT_CFG, k):
            setattr(DEFAULT_CFG, k, v)
    original = cfg.check_cfg
    if getattr(original, '_yolo_attn', False):
        return

    def check_cfg(c, hard=True):
        original(c, hard)
        check_keys(c)
        from .datasets import check_cache
        check_cache(c)

    check_cfg._yolo_attn = True
    check_cfg.__wrapped__ = original
    cfg.check_cfg = check_cfg


# ---- what load() does: fresh blocks at blend 0, starts carried over ------------------------------

def _names(model, layers) -> str:
    return ', '.join(f'{i} ({type(model.model[i]).__name__})' for i in layers)


def start_fresh_blocks(model, src_yaml: dict, dst_yaml: dict) -> list[int]:
    """Blend 0 for the registered blocks of ``model`` that have no partner layer in ``src_yaml``; they
    are noted on the model for the trainer (``FRESH``)."""
    from ..config.transfer import layer_correspondence
    partners = set(layer_correspondence(src_yaml, dst_yaml).values())
    fresh = [i for i in block_layers(model) if i not in partners]
    started = apply_blend_start(model, fresh)
    setattr(model, FRESH, sorted(set(getattr(model, FRESH, None) or []) | set(fresh)))
    if started:
        LOGGER.info(f'attention start: blend 0 for the new layers {_names(model, started)} (the model computes the '
                    f'pretrained one; training mixes them in, attn_start)')
    return started


def carry_starts(model, src, mapping: dict[int, int]) -> list[int]:
    """The blends and residual scales ``src`` (a model) holds, put on their partner blocks of ``model``
    (ultralytics' load drops the keys ``model`` lacks); the fresh-layer note too. Returns the layers."""
    src_blocks, dst_blocks = block_layers(src), block_layers(model)
    blends, gammas = {}, {}
    for i, m in src_blocks.items():
        j = mapping.get(i)
        if j is None or j not in dst_blocks:
            continue
        if has_residual_scale(m):
            gammas[j] = m._parameters['residual_gamma'].detach().float().clone()
        elif blend_of(m) is not None:
            blends[j] = blend_of(m)
    done = apply_blend_start(model, list(blends), values=blends) + apply_residual_start(model, list(gammas), gammas)
    fresh = getattr(src, FRESH, None)
    setattr(model, FRESH, [mapping[i] for i in fresh if i in mapping] if fresh is not None else [])
    return done


# ---- the trainer: the start resolved, the ramp, epoch 0, strength per epoch -----------------------

@dataclass
class StartRun:
    """One training run's attention start (kept on the trainer)."""
    mode: str
    layers: list  # the blocks given this run's start
    transferred: bool  # pretrained weights moved into new blocks: epoch 0 is validated
    ramp: BlendRamp | None = None
    sample: object = None
    epoch0: tuple | None = None  # (mAP50, mAP50-95) of the starting model, when validated


def _unwrap(model):
    return model.module if hasattr(model, 'module') else model


def prepare(trainer) -> StartRun:
    """After ultralytics' ``setup_model``: the blocks new to the model start as ``attn_start`` says."""
    model = _unwrap(trainer.model)
    requested = getattr(trainer.args, 'attn_start', None)
    fresh = getattr(model, FRESH, None)
    if fresh is not None:
        delattr(model, FRESH)  # a note for this step only: not saved with the model
    blocks = block_layers(model)
    if fresh is None:  # no pretrained weights: from scratch (or a model without a transfer)
        layers = [i for i in blocks if blend_of(blocks[i]) is None and not has_residual_scale(blocks[i])] \
            if requested else []
        mode = requested or 'paper'
    else:
        layers = [i for i in fresh if i in blocks]
        mode = requested or ('ramp' if layers else 'paper')
    if mode != 'ramp':  # a transfer left them at blend 0: this run starts them otherwise
        for i in layers:
            if blend_of(blocks[i]) == 0.0:
                del blocks[i]._buffers[BLEND]
    if mode == 'ramp':
        apply_blend_start(model, layers)
    elif mode == 'residual':
        apply_residual_start(model, layers)
    run = StartRun(mode, layers, fresh is not None and bool(layers))
    if layers:
        what = {'ramp': "blend 0, rising to the papers' formulas", 'residual': 'residual_gamma = 0, learned',
                'paper': "the papers' formulas from the first step"}[mode]
        LOGGER.info(f'attention start: {mode} for layers {_names(model, layers)} ({what})')
    setattr(trainer, STATE, run)
    return run


def residual_group(optimizer, model) -> int:
    """Every trainable residual scale moved into ultralytics' parameter group without weight decay
    (``param_group`` 'bn'; it would otherwise be in the decayed 'weight' group). Returns how many."""
    scales = [m._parameters['residual_gamma'] for m in model.modules()
              if has_residual_scale(m) and m._parameters['residual_gamma'].requires_grad]
    free = [g for g in optimizer.param_groups if g.get('param_group') == 'bn' and g.get('weight_decay', 0) == 0]
    if not scales or not free:
        return 0
    ids = {id(p) for p in scales}
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in ids]
    free[0]['params'].extend(scales)
    return len(scales)


def on_pretrain_routine_end(trainer):
    run = getattr(trainer, STATE, None)
    if run is None:
        return
    model = _unwrap(trainer.model)
    nb = len(trainer.train_loader)
    epochs = trainer.args.attn_ramp if getattr(trainer.args, 'attn_ramp', None) is not None \
        else trainer.args.warmup_epochs
    steps = ramp_iterations(epochs, trainer.epochs, nb)
    ramp = BlendRamp(model, steps, trainer.start_epoch * nb, trainer.ema.ema if trainer.ema is not None else None)
    preprocess = trainer.preprocess_batch

    def preprocess_and_keep(batch):  # the first batch's images, for the per-epoch strength
        batch = preprocess(batch)
        if run.sample is None and isinstance(batch, dict) and 'img' in batch:
            run.sample = batch['img'][:SAMPLE_IMAGES].detach().float().clone()
        return batch

    trainer.preprocess_batch = preprocess_and_keep
    if not ramp.blocks:
        return
    run.ramp = ramp
    LOGGER.info(f'attention start: blend rises to 1 over the first {steps} iterations '
                f'({min(float(epochs), trainer.epochs / 2):g} epochs of {nb} batches)')
    if trainer.ema is not None:
        update = trainer.ema.update

        def update_exact(model):  # EMA's update averages buffers too: put the blend in force back
            update(model)
            ramp.sync()

        trainer.ema.update = update_exact
    validate = trainer.validate

    def validate_at_full_strength():  # best.pt only from epochs whose blocks are the papers'
        before = trainer.best_fitness
        metrics, fitness = validate()
        if fitness is not None and not ramp.full_strength():
            trainer.best_fitness = before
            fitness = -math.inf
        return metrics, fitness

    trainer.validate = validate_at_full_strength


def validate_start(trainer) -> tuple[float, float] | None:
    """The starting model (EMA copy) validated once, before any step, on a deep copy, by a standalone
    validator of the trainer's class with the run's settings (no plots): nothing of the training
    state changes. ``(mAP50, mAP50-95)`` on the main process, None elsewhere."""
    from copy import copy, deepcopy

    from ultralytics.utils import RANK
    model = trainer.ema.ema if trainer.ema is not None else _unwrap(trainer.model)
    args = copy(trainer.args)
    args.plots = args.save_json = args.save_txt = False
    args.mode = 'val'
    validator = type(trainer.validator)(trainer.test_loader, save_dir=trainer.save_dir, args=args)
    stats = validator(model=deepcopy(model))
    if RANK not in {-1, 0} or not stats:
        return None
    return float(stats.get('metrics/mAP50(B)', float('nan'))), float(stats.get('metrics/mAP50-95(B)', float('nan')))


def on_train_start(trainer):
    run = getattr(trainer, STATE, None)
    if run is None or not run.transferred or trainer.start_epoch > 0:
        return
    found = validate_start(trainer)
    if found is not None:
        run.epoch0 = found
        LOGGER.info(f'epoch 0 (after transfer): mAP50 {found[0]:.4f} mAP50-95 {found[1]:.4f}')


def on_train_batch_start(trainer):
    run = getattr(trainer, STATE, None)
    if run is not None and run.ramp is not None:
        run.ramp.step()


def on_train_epoch_end(trainer):
    """Each block's mix and strength on the kept training images: one log line, rows of attention.csv
    (``epoch`` numbered as ultralytics' results.csv)."""
    from ultralytics.utils import RANK
    run = getattr(trainer, STATE, None)
    if run is None or RANK not in {-1, 0}:
        return
    model = trainer.ema.ema if trainer.ema is not None else _unwrap(trainer.model)
    if not block_layers(model):
        return
    if run.sample is None:
        if run.ramp is not None:
            LOGGER.info(f'attention: blend {min(blend_of(m) for m in run.ramp.blocks):.2f}')
        return
    from ..blocks.strength import block_strength
    p = next(model.parameters())
    rows = block_strength(model, run.sample.to(p.device, p.dtype))
    LOGGER.info('attention: ' + '; '.join(f'layer {r.layer} {r.name} {r.mix}, changes its features by '
                                         f'{100 * r.change:.1f} %' for r in rows))
    path = Path(trainer.save_dir) / 'attention.csv'
    new = not path.exists()
    with open(path, 'a', newline='') as f:
        w = csv.writer(f)
        if new:
            w.writerow(['epoch', 'layer', 'block', 'mix', 'change'])
        w.writerows([trainer.epoch + 1, r.layer, r.name, r.mix, f'{r.change:.6f}'] for r in rows)


def on_train_end(trainer):
    """last.pt and best.pt: blends that reached 1 removed (the papers' formulas, exactly)."""
    run = getattr(trainer, STATE, None)
    if run is None or run.ramp is None:
        return
    from ultralytics.nn.tasks import torch_safe_load
    for f in (trainer.last, trainer.best):
        if f.exists() and finish_saved_blends(f, lambda path: torch_safe_load(path)[0]):
            LOGGER.info(f"{f}: attention blocks at full strength, saved as the papers' formulas (blend removed)")


CALLBACKS = {'on_pretrain_routine_end': on_pretrain_routine_end, 'on_train_start': on_train_start,
             'on_train_batch_start': on_train_batch_start, 'on_train_epoch_end': on_train_epoch_end,
             'on_train_end': on_train_end}


def _wrap_trainer(trainer_module) -> None:
    """``BaseTrainer.setup_model`` resolves the start (before compile, DDP, EMA and the optimizer);
    ``build_optimizer`` puts residual scales in the group without weight decay."""
    BaseTrainer = trainer_module.BaseTrainer
    setup_model = BaseTrainer.setup_model
    if getattr(setup_model, '_yolo_attn', False):
        return
    build_optimizer = BaseTrainer.build_optimizer

    def setup_model_and_start(self):
        ckpt = setup_model(self)
        prepare(self)
        return ckpt

    def build_optimizer_with_scales(self, model, *args, **kwargs):
        optimizer = build_optimizer(self, model, *args, **kwargs)
        n = residual_group(optimizer, _unwrap(model))
        if n:
            LOGGER.info(f'attention start: {n} residual scales in the parameter group without weight decay')
        return optimizer

    for fn, original in ((setup_model_and_start, setup_model), (build_optimizer_with_scales, build_optimizer)):
        fn._yolo_attn = True
        fn.__wrapped__ = original
    BaseTrainer.setup_model = setup_model_and_start
    BaseTrainer.build_optimizer = build_optimizer_with_scales


def install() -> None:
    """The keys, the trainer hooks and the callbacks in ultralytics' defaults (every trainer made
    afterwards gets them); idempotent."""
    from ..importhook import when_imported
    register_keys()
    when_imported('ultralytics.engine.trainer', _wrap_trainer, fallback='ultralytics.models.yolo.detect.train')
    from ultralytics.utils.callbacks.base import default_callbacks
    for event, fn in CALLBACKS.items():
        if fn not in default_callbacks[event]:
            default_callbacks[event].append(fn)
