"""yolo-attn: attention blocks for YOLOv5 7.0 and ultralytics 8.x, registered into their model-YAML parsing.

``import yolo_attn`` switches the plugin on for yolov5 in this process (``integration.activate``):
from the first import of yolov5 on, its own ``Model(cfg)`` — and so its train/val/detect/export
here — builds YAMLs that name SE, CBAM, ECA, CoordAtt, SimAM or any block added with
``register_block``, and its checkpoints load through the secure loader. The import itself is
light (no torch, no yolov5), so the ``yolo-attn`` command answers ``--help`` at once.

Public names (each activates the plugin when first used):

* ``register_block``, ``BLOCKS``, ``allow_in_checkpoints`` — the block registry (``registry``);
* ``SE``, ``CBAM``, ``ECA``, ``CoordAtt``, ``SimAM`` — the built-in blocks (``blocks``);
* ``model(cfg, nc=None)`` — yolov5's ``Model`` for a path or shipped name (``yolov5s-cbam``), from
  any folder; ``resolve_cfg``, ``resolve_weights`` — paths of shipped YAMLs / checkpoints;
* ``import_user_modules`` — import the user's block modules (``--import``, ``YOLO_ATTN_IMPORTS``);
* ``ModelConfigError``, ``UserError`` — the errors user mistakes raise;
* ``activate()`` — switch on now (needed only before a bare ``torch.load`` of a checkpoint).
"""

from __future__ import annotations

from .integration.activate import activate, activate_on_yolov5_import
from .lazy import names_from
from .ultralytics import activate_on_ultralytics_import

__version__ = '0.1.0'  # the one place: setup.cfg reads it (version = attr: yolo_attn.__version__)

_PUBLIC = {'register_block': 'blocks.registry', 'BLOCKS': 'blocks.registry', 'allow_in_checkpoints': 'blocks.registry',
           'SE': 'blocks', 'CBAM': 'blocks', 'ECA': 'blocks', 'CoordAtt': 'blocks', 'SimAM': 'blocks',
           'resolve_cfg': 'config.files', 'resolve_weights': 'config.files',
           'import_user_modules': 'blocks.plugins', 'ModelConfigError': 'errors', 'UserError': 'errors'}

__all__ = sorted(_PUBLIC) + ['activate', 'model', '__version__']

activate_on_yolov5_import()  # each backend switched on at its framework's first import
activate_on_ultralytics_import()
_public = names_from(__name__, _PUBLIC)


def model(cfg, nc: int | None = None, verbose: bool = False, ch: int = 3):
    """yolov5's ``Model`` for a YAML path or shipped name (``yolov5s-cbam``), from any folder."""
    activate()
    from .config.summary import build_model
    return build_model(cfg, nc=nc, verbose=verbose, ch=ch)


def __getattr__(name):
    """The public names, imported (and the plugin activated) on first use."""
    if name in _PUBLIC:
        activate()
    return _public(name)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
