"""Exported model formats: the software each needs, the file each writes, and export failures.

yolov5's export.py installs what a format needs; yolo-attn installs nothing, so preflights use
``BACKENDS`` and ``EXPORT_NEEDS`` to refuse a format whose software is missing. ``EXPORT_SUFFIXES``:
what export writes (never overwritten). ``export_failures`` turns export.py's logged "export
failure" (exit 0) into one line and exit 2.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil

from ..errors import UserError

BACKENDS = {'ONNX': ('onnxruntime',), 'OpenVINO': ('openvino',), 'TensorRT': ('tensorrt',),
            'CoreML': ('coremltools',), 'TensorFlow GraphDef': ('tensorflow',), 'TensorFlow Lite': ('tensorflow',),
            'TensorFlow SavedModel': ('tensorflow',), 'PaddlePaddle': ('paddle',), 'TorchScript': ()}
# --include FORMAT -> (python modules, programs) it needs; yolov5 would pip/apt-install them
EXPORT_NEEDS = {'torchscript': ((), ()), 'onnx': (('onnx',), ()), 'openvino': (('openvino',), ('mo',)),
                'engine': (('tensorrt',), ()), 'coreml': (('coremltools',), ()),
                'saved_model': (('tensorflow',), ()), 'pb': (('tensorflow',), ()), 'tflite': (('tensorflow',), ()),
                'edgetpu': (('tensorflow',), ('edgetpu_compiler',)),
                'tfjs': (('tensorflow', 'tensorflowjs'), ('tensorflowjs_converter',)),
                'paddle': (('paddle', 'x2paddle'), ())}
EXPORT_SUFFIXES = {'torchscript': '.torchscript', 'onnx': '.onnx', 'engine': '.engine', 'pb': '.pb',
                   'tflite': '.tflite', 'openvino': '_openvino_model', 'coreml': '.mlmodel',
                   'edgetpu': '_edgetpu.tflite', 'saved_model': '_saved_model', 'tfjs': '_web_model',
                   'paddle': '_paddle_model'}


def not_installed(modules=(), programs=()) -> list[str]:
    """The Python modules and programs of these that are not installed."""
    return [m for m in modules if importlib.util.find_spec(m) is None] + \
        [p for p in programs if shutil.which(p) is None]


def export_formats(include) -> list[str]:
    """``--include`` as yolov5 reads it (comma-separated allowed, any case), each format known."""
    formats = [f.strip().lower() for item in include for f in str(item).split(',') if f.strip()]
    unknown = [f for f in formats if f not in EXPORT_NEEDS]
    if unknown:
        raise UserError(f"--include {' '.join(unknown)}: unknown format; choose from {', '.join(EXPORT_NEEDS)}")
    return formats


@contextlib.contextmanager
def export_failures():
    """The lines yolov5's ``try_export`` logs for a format that failed (it then carries on and
    exits 0): collected here, so that ``run_script`` ends such an export with one line, exit 2."""
    import logging
    import re

    failures = []

    class Collect(logging.Handler):
        def emit(self, record):
            text = re.sub(r'\x1b\[[0-9;]*m', '', record.getMessage())  # colorstr's escapes
            if 'export failure' in text:
                failures.append(text.replace(' ❌', ''))

    handler, logger = Collect(), logging.getLogger('yolov5')
    logger.addHandler(handler)
    try:
        yield failures
    finally:
        logger.removeHandler(handler)
