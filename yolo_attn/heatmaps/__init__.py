"""Per-detection heatmaps: one faithful saliency map for every object a YOLOv5 model detects."""

from .api import explain, load_model
from .engine import DEFAULT_METHOD, METHODS, Detection, HeatmapEngine, ImageResult
from .options import DEFAULTS, HeatmapOptions
from .run import run
from .targets import TARGETS, ClassTarget, ConfTarget, ScoreTarget

__all__ = ['explain', 'load_model', 'run', 'HeatmapEngine', 'HeatmapOptions', 'DEFAULTS', 'Detection', 'ImageResult',
           'METHODS', 'DEFAULT_METHOD', 'TARGETS', 'ConfTarget', 'ClassTarget', 'ScoreTarget']
