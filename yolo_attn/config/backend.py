"""Which framework a model YAML is for, and building it there: yolov5 (``anchors:``) or ultralytics 8.x."""

from __future__ import annotations

import copy

YOLOV5, ULTRALYTICS = 'yolov5', 'ultralytics'


def backend_of(d: dict) -> str:
    """yolov5 YAMLs carry ``anchors:``; ultralytics' (YOLOv8/11/12/26, YOLOv5u, ...) never do."""
    return YOLOV5 if 'anchors' in d else ULTRALYTICS


def backend_of_checkpoint(path) -> str:
    """ULTRALYTICS when a torch checkpoint's pickle names a class of the ``ultralytics`` package, else
    YOLOV5 (also for what is no zip checkpoint: the yolov5 loader then says what is wrong). Read from
    the pickle's opcodes (``pickletools``): nothing is unpickled or executed."""
    import pickletools
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith('/data.pkl') or n == 'data.pkl'), None)
            data = z.read(name) if name else b''
    except (OSError, zipfile.BadZipFile, ValueError):
        return YOLOV5
    try:
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and arg.split(' ')[0].startswith('ultralytics.'):
                return ULTRALYTICS
    except Exception:  # a damaged pickle: the loader reports it
        return YOLOV5
    return YOLOV5


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
