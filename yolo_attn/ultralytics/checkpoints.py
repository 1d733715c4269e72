"""Ultralytics checkpoints load weights-only once yolo-attn is imported: no pickle code runs, no pip.

``ultralytics.nn.tasks.torch_safe_load`` unpickles with ``weights_only=False`` unless
``ULTRALYTICS_SAFE_LOAD`` is set, and installs a package named by a checkpoint it cannot load. The
wrapper asks it for its own restricted load (``safe_only=True``: ultralytics' allow-list, plus the
registered blocks that ``register_block`` puts on torch's) for every caller, ``YOLO(path)`` included.
A file refused is one line; ``YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS=1`` restores ultralytics' own load.
"""

from __future__ import annotations

import os

from ..errors import UserError
from ..guards import UNSAFE_ENV


class CheckpointRefused(UserError, TypeError):
    """An ultralytics checkpoint that a weights-only load refuses (ultralytics raises TypeError too)."""


def install() -> None:
    """Wrap ``torch_safe_load`` in ``ultralytics.nn.tasks`` (and its re-export); idempotent."""
    import ultralytics.nn as nn_package
    import ultralytics.nn.tasks as tasks
    original = tasks.torch_safe_load
    if getattr(original, '_yolo_attn', False):
        return
    if not tasks._SafeLoad.SUPPORTED:
        raise UserError('this torch cannot load checkpoints weights-only (torch >= 2.6 needed); yolo-attn does not '
                        f'unpickle ultralytics checkpoints without it (only for files you trust: {UNSAFE_ENV}=1)')

    def torch_safe_load(weight, safe_only=None):
        if os.environ.get(UNSAFE_ENV) == '1':
            return original(weight, safe_only)
        from ..blocks.plugins import registered
        registered()  # every block's classes on torch's allow-list (register_block) before the load
        try:
            return original(weight, safe_only=True)
        except ModuleNotFoundError as e:
            raise CheckpointRefused(f'{weight}: the checkpoint names a module that is not installed ({e.name}); '
                                    f'yolo-attn installs nothing: --import the module that defines its blocks, '
                                    f'or install it yourself') from None
        except TypeError as e:
            raise CheckpointRefused(f'{weight}: refused by the weights-only loader ({str(e).strip().splitlines()[0]})'
                                    f'; only for a file you trust: {UNSAFE_ENV}=1') from None

    torch_safe_load._yolo_attn = True
    torch_safe_load.__wrapped__ = original
    tasks.torch_safe_load = torch_safe_load
    if getattr(nn_package, 'torch_safe_load', None) is original:
        nn_package.torch_safe_load = torch_safe_load
