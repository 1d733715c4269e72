"""Which framework a model YAML is for, and building it there: yolov5 (``anchors:``) or ultralytics 8.x."""

from __future__ import annotations

import copy

YOLOV5, ULTRALYTICS = 'yolov5', 'ultralytics'


def backend_of(d: dict) -> str:
    """yolov5 YAMLs carry ``anchors:``; ultralytics' (YOLOv8/11/12/26, YOLOv5u, ...) never do."""
    return YOLOV5 if 'anchors' in d else ULTRALYTICS


def scaled(d: dict, scale: str | None = None) -> dict:
    """A copy of an ultralytics model dict with ``scale`` set (default: the first of its ``scales:``)."""
    d = copy.deepcopy(d)
    scales = d.get('scales') or {}
    if scales and d.get('scale') not in scales:
        d['scale'] = scale if scale in scales else next(iter(scales))
    return d


def build(d: dict, nc: int | None = None, scale: str | None = None):
    """The detection model of ``d`` in its own framework (the plugin's parser in either), in eval mode."""
    if backend_of(d) == YOLOV5:
        from yolov5.models.yolo import Model

        from .summary import quiet_yolov5
        with quiet_yolov5():
            return Model(copy.deepcopy(d), nc=nc).eval()
    from ..ultralytics import install
    install()
    from ultralytics.nn.tasks import DetectionModel
    return DetectionModel(scaled(d, scale), ch=3, nc=nc, verbose=False).eval()
