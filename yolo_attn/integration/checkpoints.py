"""Secure checkpoint loading: ``torch.load(weights_only=True)`` with an explicit allowlist.

The allowlist (``compat.checkpoint_allowlist``: torch.nn module classes, yolov5's module classes
under both import names, registered blocks, the numpy globals yolov5 checkpoints hold) is
registered with torch's weights-only unpickler, which refuses every other global *before*
calling it: a pickle whose reduce calls ``os.system`` is refused and nothing runs.

yolov5's own loads (``attempt_load``, ``strip_optimizer``, train.py's pretrained/resume loads)
go through ``secure_load`` too: ``install`` hands those modules a ``torch`` whose ``load`` is it.

Opt-out, for files you trust only: ``YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS=1`` loads with
``weights_only=False`` (arbitrary code execution if the file is malicious) and says so loudly.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from ..errors import UserError

UNSAFE_ENV = 'YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS'
YOLOV5_LOADERS = ('yolov5.models.experimental', 'yolov5.utils.general', 'yolov5.train')


class CheckpointError(UserError):
    """A weights file that is missing, unreadable, not a YOLOv5 checkpoint, or refused."""


def secure_load(f, map_location=None, **kwargs):
    """``torch.load`` with ``weights_only=True`` forced; failures become one-line CheckpointErrors."""
    trusted = os.environ.get(UNSAFE_ENV) == '1'
    if trusted:
        warnings.warn(f'{UNSAFE_ENV}=1: loading {f} with weights_only=False; a malicious file can run code')
    kwargs['weights_only'] = not trusted
    name = f if isinstance(f, (str, Path)) else getattr(f, 'name', 'checkpoint')
    if isinstance(f, (str, Path)) and not Path(f).is_file():
        raise CheckpointError(f'weights not found: {f}')
    try:
        return torch.load(f, map_location=map_location, **kwargs)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL (\S+)', str(e))
        what = found.group(1) if found else str(e).splitlines()[-1][:200]
        raise CheckpointError(f'{name}: refused: it references {what}, which is not on the allowlist (torch.nn, '
                              f'yolov5 and registered block classes, numpy arrays); nothing was executed. '
                              f'Only for a file you trust: {UNSAFE_ENV}=1') from None
    except Exception as e:  # any parse failure of arbitrary bytes (zip, pickle, storage errors)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f'{name}: not a readable PyTorch checkpoint (truncated or another format?): {first}') from None


def load_checkpoint(f, map_location='cpu') -> dict:
    """A YOLOv5 checkpoint dict (with ``model`` or ``ema``), loaded securely."""
    ckpt = secure_load(f, map_location=map_location)
    model = (ckpt.get('ema') or ckpt.get('model')) if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f'{f}: not a YOLOv5 checkpoint (expected a dict with a "model" entry)')
    return ckpt


def install() -> None:
    """Route yolov5's checkpoint loads through ``secure_load`` (idempotent)."""
    from .compat import ModuleView
    proxy = ModuleView(torch, load=secure_load)  # torch as yolov5's loader modules see it
    for name in YOLOV5_LOADERS:
        module = importlib.import_module(name)
        if module.torch is torch:
            module.torch = proxy
