"""yolo-attn: attention blocks for Ultralytics YOLOv5 7.0, registered into its model-YAML parsing.

``import yolo_attn`` makes yolov5 work on the pinned stack (``compat``), registers the blocks
(``blocks``) and installs the parser (``install``): from then on yolov5's own ``Model(cfg)`` —
and so its train/val/detect/export in this process — builds YAMLs that name SE, CBAM or any block
added with ``register_block``.
"""

from .integration import compat

compat.apply()

from . import blocks  # noqa: E402  (registers SE, CBAM)
from .integration import checkpoints, datasets  # noqa: E402
from .blocks import CBAM, SE  # noqa: E402
from .integration.install import install  # noqa: E402
from .config.parser import ModelConfigError  # noqa: E402
from .registry import BLOCKS, register_block  # noqa: E402

install()
checkpoints.install()
datasets.install()

__version__ = '0.1.0'
__all__ = ['BLOCKS', 'CBAM', 'SE', 'ModelConfigError', 'register_block', '__version__']
