"""Registered blocks in ultralytics (8.x) model YAMLs: ``install()`` wraps ``ultralytics.nn.tasks.parse_model``.

Light to import (no torch, no ultralytics): ``activate_on_ultralytics_import()`` only arms an import
hook. Names: ultralytics' own nn.Module names in ``tasks`` win over a user block of that name; the
shipped SE, CBAM, ECA, CoordAtt and SimAM always mean ours (ultralytics' ``CBAM(c1, kernel_size)``
is not ours: write ``[16, 7]``, not ``[7]``). Mechanism and checks: ``parsing``; checkpoints load
weights-only (``checkpoints``); shipped YAMLs by short name (``names``); pretrained weights by
layer correspondence (``transfer``) and started as ``attn_start`` says (``attn_start``); nothing
installed (``offline``); no dataset cache read or written, no data YAML's download script run (``datasets``).
"""

from __future__ import annotations

import sys
import warnings

from ..errors import UserError

TRIGGER = 'ultralytics.nn.tasks'
TESTED = '8.4.190'  # the ultralytics release this backend was written against


class UltralyticsCompatError(UserError, RuntimeError):
    """The installed ultralytics no longer parses YAMLs the way ``install()`` relies on (one line)."""


def install(strict: bool = True) -> None:
    """Wrap ultralytics' ``parse_model`` so YAML rows may name registered blocks (idempotent).

    Runs a self-check build first; if ultralytics changed underneath, ``strict`` raises
    ``UltralyticsCompatError`` and leaves ultralytics as it was. ``strict=False`` (the import hook)
    keeps stock YAMLs working and raises that error only for rows that name a registered block."""
    from . import attn_start, checkpoints, datasets, names, offline, parsing, transfer
    offline.install()  # no pip/uv install from ultralytics' requirement checks
    datasets.install()  # no dataset cache (a pickle) read or written, no download script of a data YAML run
    checkpoints.install()  # weights-only loading first: it does not depend on the parser check
    names.install()  # the shipped attention YAMLs by short name
    transfer.install()  # pretrained weights by layer correspondence, new blocks at blend 0
    attn_start.install()  # attn_start/attn_ramp keys; the trainer ramps them to the papers' formulas
    parsing.install(strict=strict)


def uninstall() -> None:
    """Put ultralytics' own ``parse_model`` back (no-op when not installed or ultralytics not imported)."""
    if TRIGGER in sys.modules:
        from . import parsing
        parsing.uninstall()


def _install_from_hook(module=None) -> None:
    try:
        install(strict=False)
    except Exception as e:  # never break `import ultralytics` (nor yolov5, which imports it)
        warnings.warn(f'yolo-attn: blocks not registered into ultralytics YAML parsing: {type(e).__name__}: {e}',
                      RuntimeWarning, stacklevel=2)


def activate_on_ultralytics_import() -> None:
    """``install()`` now if ``ultralytics.nn.tasks`` is loaded, else right after its first import (idempotent)."""
    if TRIGGER in sys.modules:
        _install_from_hook()
    else:
        from ..importhook import after_import
        after_import(TRIGGER, _install_from_hook)


__all__ = ['TESTED', 'UltralyticsCompatError', 'activate_on_ultralytics_import', 'install', 'uninstall']
