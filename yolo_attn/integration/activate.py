"""Switch the plugin on: once, at the first import of yolov5 (or at once if it is already loaded).

``import yolo_attn`` is cheap — no torch, no yolov5 — so ``yolo-attn --help`` and argument errors
answer at once. What makes yolov5 work with the plugin runs in ``activate()``, in this order:
the compatibility fixes (``compat``, before any yolov5 script runs), yolov5's untrusted-input
paths closed (``untrusted``, ``guards.images``), the built-in blocks
(``blocks``), the parser (``install``), the checkpoint loader (``checkpoints``), the dataset checks
(``datasets``), then the blocks of installed packages (the ``yolo_attn.blocks`` entry points,
``plugins``). ``activate_on_yolov5_import()`` (called by ``import yolo_attn``) runs it right after
the ``yolov5`` package is first imported, by anyone: ``import yolo_attn`` then yolov5's own
``Model(cfg)``, ``attempt_load`` or scripts behave as documented. Accessing a public name of the
package (``yolo_attn.register_block``, ``yolo_attn.BLOCKS``, ...) activates too.
"""

from __future__ import annotations

import importlib.abc
import sys

from . import compat

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
        from .. import blocks  # noqa: F401  (registers SE, CBAM, ECA, CoordAtt, SimAM)
        from . import checkpoints, datasets, distributed, install
        install.install()
        checkpoints.install()
        datasets.install()
        distributed.install()  # under torchrun: yolov5 DDP on the CPU too
        from ..plugins import load_entry_points
        load_entry_points()
    except BaseException:
        _STATE['active'] = False
        raise


class _ActivateAfterYolov5(importlib.abc.MetaPathFinder):
    """Find ``yolov5`` with the other finders and run ``activate()`` after its package executes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TRIGGER or _STATE['active']:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _ActivatingLoader(spec.loader)
        return spec


class _ActivatingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        activate()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self.loader, name)


def activate_on_yolov5_import() -> None:
    """Activate now if yolov5 is already imported, else right after its first import (idempotent)."""
    compat.offline_environment()  # before anything imports ultralytics (yolov5 does)
    if TRIGGER in sys.modules:
        activate()
    elif not any(isinstance(f, _ActivateAfterYolov5) for f in sys.meta_path):
        sys.meta_path.insert(0, _ActivateAfterYolov5())
