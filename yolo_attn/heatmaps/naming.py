"""How outputs are named: head levels (P3, P4, …) and the files of images and video frames.

A head is ``P<k>`` for stride ``2**k`` (as yolov5's YAMLs name feature maps), from its stride, never
its position. A video frame's stem adds its 0-based index, zero-padded to ``FRAME_DIGITS`` digits.
"""

from __future__ import annotations

import math
from pathlib import Path

FRAME_DIGITS = 6


def level_name(stride) -> str:
    """``P3`` for stride 8, ``P2`` for 4, ``P6`` for 64."""
    return f'P{round(math.log2(float(stride)))}'


def level_names(model) -> list[str]:
    """The head level names of a yolov5 detection model, in Detect's order."""
    return [level_name(s) for s in model.stride.tolist()]


def output_stem(path, frame=None) -> str:
    """The file stem of an image's outputs, or of a video frame's (``frame``: 0-based index)."""
    stem = Path(str(path)).stem
    return stem if frame is None else f'{stem}_{int(frame):0{FRAME_DIGITS}d}'
