"""Per-detection heatmaps: one faithful saliency map for every object a YOLOv5 model detects.

The names below are imported on first use (``yolo_attn.lazy``): the CLI reads the flags from
``flags`` without importing torch or pytorch-grad-cam.
"""

from ..lazy import export

__all__ = export(__name__, {
    'api': ('explain', 'load_model'),
    'run': ('run',),
    'engine': ('HeatmapEngine', 'Detection', 'ImageResult'),
    'options': ('HeatmapOptions', 'DEFAULTS'),
    'methods': ('METHODS', 'DEFAULT_METHOD'),
    'targets': ('TARGETS', 'ConfTarget', 'ClassTarget', 'ScoreTarget'),
})
