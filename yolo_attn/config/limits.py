"""Bounds on what a model YAML may ask the parser to build, checked before anything is allocated.

A few characters of YAML can ask for 10^9 layers or a 10^6-channel convolution; the parser calls
``check_header``, ``check_repeats`` and ``check_layer_size`` (built on PyTorch's ``meta`` device
first) for each row, so such a file is refused in one line. The limits sit far above every stock
model (yolov5x included).
"""

from __future__ import annotations

import math

from ..errors import ModelConfigError, is_int

MAX_REPEATS = 100
MAX_MULTIPLE = 10.0
MAX_CLASSES = 100_000
MAX_LAYER_PARAMETERS = 100_000_000  # 400 MB of float32 in one layer


def _positive_number(v) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v) and v > 0


def check_header(nc, gd, gw, anchors) -> None:
    if not is_int(nc) or not 1 <= nc <= MAX_CLASSES:
        raise ModelConfigError(f'nc: {nc!r}: must be a whole number of classes, 1 to {MAX_CLASSES:,}')
    for key, v in (('depth_multiple', gd), ('width_multiple', gw)):
        if not _positive_number(v) or v > MAX_MULTIPLE:
            raise ModelConfigError(f'{key}: {v!r}: must be a positive number up to {MAX_MULTIPLE:g} '
                                   f'(yolov5s uses 0.33 and 0.50)')
    ok = (is_int(anchors) and 1 <= anchors <= MAX_REPEATS) or (
        isinstance(anchors, list) and anchors and all(
            isinstance(a, list) and a and len(a) % 2 == 0 and all(_positive_number(x) for x in a) for a in anchors))
    if not ok:
        raise ModelConfigError(f'anchors: {anchors!r}: must be a number of anchors per level, or one list of '
                               f'w,h pixel pairs per detection level')


def check_repeats(n, gd, where) -> None:
    if n * gd > MAX_REPEATS + 0.5:
        raise ModelConfigError(f'{where}: {n} repeats x depth_multiple {gd} is more than {MAX_REPEATS} layers in one '
                               f'row (stock models use at most 12)')


def check_layer_size(build, where) -> None:
    """Build once on the ``meta`` device and refuse an oversized layer; a build that fails there
    is left to the real build, which reports its own error."""
    import torch
    try:
        with torch.device('meta'):
            probe = build()
        count = sum(p.numel() for p in probe.parameters())
    except Exception:  # any constructor error: the real construction reports it in one line
        return
    if count > MAX_LAYER_PARAMETERS:
        raise ModelConfigError(f'{where}: {count:,} parameters in one layer is more than the limit of '
                               f'{MAX_LAYER_PARAMETERS:,} (check its channel count and width_multiple)')


RUN_ERRORS = (RuntimeError, TypeError, ValueError, NotImplementedError, IndexError, ZeroDivisionError)


def forward_error(where, e: BaseException) -> ModelConfigError:
    """One line for a model that builds but fails its first forward pass (yolov5 runs one to find
    the strides): the failing layer (found in yolov5's ``_forward_once`` frame) and the reason."""
    layer, tb = None, e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == '_forward_once':
            layer = tb.tb_frame.f_locals.get('m', layer)
        tb = tb.tb_next
    at = f'layer {layer.i} ({getattr(layer, "type", type(layer).__name__).split(".")[-1]})' \
        if layer is not None and hasattr(layer, 'i') else 'the model'
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    return ModelConfigError(f'{where}: {at} fails on an input image: {first} (check its arguments: kernel, '
                            f'stride, mode, channels)')
