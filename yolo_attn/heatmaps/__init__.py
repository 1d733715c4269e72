"""Per-detection heatmaps: one faithful saliency map for every object a YOLOv5 model detects.

The public names are imported on first use (PEP 562): the CLI reads its flags without torch,
pytorch-grad-cam or OpenCV.
"""

from __future__ import annotations

from ..lazy import names_from

_WHERE = {'explain': 'api', 'load_model': 'api', 'run': 'runner', 'HeatmapEngine': 'engine', 'Detection': 'engine',
          'ImageResult': 'engine', 'HeatmapOptions': 'options', 'DEFAULTS': 'options', 'cam_class': 'methods',
          'DEFAULT_METHOD': 'methods', 'TARGETS': 'targets', 'ConfTarget': 'targets', 'ClassTarget': 'targets',
          'ScoreTarget': 'targets'}
__all__ = list(_WHERE)

__getattr__ = names_from(__name__, _WHERE)
