"""Install the plugin's ``parse_model`` into yolov5, under both of its import names.

yolov5 7.0.14 is also importable as ``models.yolo`` (it adds its folder to ``sys.path``; upstream
checkpoints pickle ``models.yolo.*``), and ``DetectionModel.__init__`` calls its own module's
``parse_model``: each module object gets a parser. ``models.yolo`` is patched by an import hook
when yolov5 imports it, never imported by us (a user's ``models`` package is left alone).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.parser import make_parse_model
from ..config.surgery import expand_attention
from ..importhook import after_import

ORIGINAL_PARSE_MODEL: dict[str, object] = {}  # module name -> yolov5's own parse_model
ALIAS = 'models.yolo'


def patch_module(module) -> None:
    """Replace ``module.parse_model`` with ours (idempotent; the original is kept for reference)."""
    if getattr(module.parse_model, '_yolo_attn', False):
        return
    ORIGINAL_PARSE_MODEL[module.__name__] = module.parse_model
    parse_model = make_parse_model(vars(module), prepare=expand_attention)  # attention: sections too
    parse_model._yolo_attn = True
    module.parse_model = parse_model


def _is_yolov5s(spec) -> bool:
    """``models.yolo`` is yolov5's own yolo.py (not a user's ``models`` package)."""
    import yolov5.models.yolo as canonical
    return bool(spec.origin) and Path(spec.origin).resolve() == Path(canonical.__file__).resolve()


def install() -> None:
    """Patch ``yolov5.models.yolo`` now and ``models.yolo`` whenever it is (or was) imported."""
    import yolov5.models.yolo as canonical
    patch_module(canonical)
    if ALIAS in sys.modules:
        patch_module(sys.modules[ALIAS])
    after_import(ALIAS, patch_module, accept=_is_yolov5s)
