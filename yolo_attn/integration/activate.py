"""Switch the plugin on: once, at the first import of yolov5 (or at once if it is already loaded).

``import yolo_attn`` is cheap (no torch, no yolov5); ``activate()`` does the rest, in this order:
``compat`` fixes, ``untrusted`` and ``guards.images`` (yolov5's untrusted-input paths closed), the
built-in blocks, the parser (``install``), ``checkpoints``, ``datasets``, then the entry-point blocks
(``plugins``). ``activate_on_yolov5_import()`` (called by ``import yolo_attn``) runs it right after
anyone first imports ``yolov5``; accessing a public name of the package activates too.
"""

from __future__ import annotations

import sys

from . import compat
from ..importhook import after_import

_STATE = {'active': False}
TRIGGER = 'yolov5'


def activate() -> None:
    """Apply every patch and register every block, once (re-entrant calls return at once)."""
    if _STATE['active']:
        return
    _STATE['active'] = True  # first: the imports below import yolov5, which would call us again
    try:
        compat.apply()
        from ..guards import images
        from . import untrusted
        untrusted.install()  # yolov5's own eval/pickle/YAML/subprocess paths closed (needs compat first)
        images.install()
        from ..blocks import import_builtins
        from ..blocks.registry import check_yolov5_names
        import_builtins()  # SE, CBAM, ECA, CoordAtt, SimAM
        check_yolov5_names()  # blocks registered before yolov5 was imported
        from . import checkpoints, datasets, distributed, install
        install.install()
        checkpoints.install()
        compat.patch_amp()  # after checkpoints: it wraps the torch train.py sees
        datasets.install()
        distributed.install()  # under torchrun: yolov5 DDP on the CPU too
        from ..blocks.plugins import registered
        registered()  # the built-in blocks, the entry points and YOLO_ATTN_IMPORTS
    except BaseException:
        _STATE['active'] = False
        raise


def activate_on_yolov5_import() -> None:
    """Activate now if yolov5 is already imported, else right after its first import (idempotent)."""
    compat.offline_environment()  # before anything imports ultralytics (yolov5 does)
    compat.quiet_pkg_resources()  # before yolov5's utils/general.py imports it
    if TRIGGER in sys.modules:
        activate()
    else:
        after_import(TRIGGER, lambda module: activate())
