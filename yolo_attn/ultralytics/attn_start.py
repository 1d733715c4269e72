"""The attention start in ultralytics' trainer: new blocks ramp from the identity to the papers' formulas.

When ``load()`` moves pretrained weights into a YAML with blocks the checkpoint lacks (``transfer``),
those blocks get a blend of 0 (``blocks.start``): the model computes the stock one. ultralytics'
default callbacks then raise the blend per batch to 1 over its ``warmup_epochs`` (at most half the
run), keep it exact in the EMA copy, keep best.pt to epochs at full strength, and drop finished
blends from last.pt/best.pt, which then compute the papers' formulas (the yolov5 rule, ``--attn-start
ramp``).
"""

from __future__ import annotations

import logging
import math

from ..blocks.start import BlendRamp, apply_blend_start, blend_of, block_layers, finish_saved_blends, ramp_iterations

LOGGER = logging.getLogger('ultralytics')
STATE = '_yolo_attn_ramp'


def start_fresh_blocks(model, src_yaml: dict, dst_yaml: dict) -> list[int]:
    """Blend 0 for the registered blocks of ``model`` that have no partner layer in ``src_yaml``."""
    from ..config.transfer import layer_correspondence
    partners = set(layer_correspondence(src_yaml, dst_yaml).values())
    fresh = [i for i in block_layers(model) if i not in partners]
    started = apply_blend_start(model, fresh)
    if started:
        names = ', '.join(f'{i} ({type(model.model[i]).__name__})' for i in started)
        LOGGER.info(f'attention start: ramp for layers {names} (blend 0: the model starts as the pretrained one)')
    return started


def on_pretrain_routine_end(trainer):
    model = trainer.model.module if hasattr(trainer.model, 'module') else trainer.model
    nb = len(trainer.train_loader)
    steps = ramp_iterations(trainer.args.warmup_epochs, trainer.epochs, nb)
    ramp = BlendRamp(model, steps, trainer.start_epoch * nb, trainer.ema.ema if trainer.ema is not None else None)
    if not ramp.blocks:
        return
    LOGGER.info(f'attention start: blend rises to 1 over the first {steps} iterations')
    setattr(trainer, STATE, ramp)
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


def on_train_batch_start(trainer):
    ramp = getattr(trainer, STATE, None)
    if ramp is not None:
        ramp.step()


def on_train_epoch_end(trainer):
    ramp = getattr(trainer, STATE, None)
    if ramp is not None:
        LOGGER.info(f'attention: blend {min(blend_of(m) for m in ramp.blocks):.2f}')


def on_train_end(trainer):
    """last.pt and best.pt: blends that reached 1 removed (the papers' formulas, exactly)."""
    if getattr(trainer, STATE, None) is None:
        return
    from ultralytics.nn.tasks import torch_safe_load
    for f in (trainer.last, trainer.best):
        if f.exists() and finish_saved_blends(f, lambda path: torch_safe_load(path)[0]):
            LOGGER.info(f"{f}: attention blocks at full strength, saved as the papers' formulas (blend removed)")


CALLBACKS = {'on_pretrain_routine_end': on_pretrain_routine_end, 'on_train_batch_start': on_train_batch_start,
             'on_train_epoch_end': on_train_epoch_end, 'on_train_end': on_train_end}


def install() -> None:
    """Add the callbacks to ultralytics' defaults (every trainer made afterwards gets them); idempotent."""
    from ultralytics.utils.callbacks.base import default_callbacks
    for event, fn in CALLBACKS.items():
        if fn not in default_callbacks[event]:
            default_callbacks[event].append(fn)
