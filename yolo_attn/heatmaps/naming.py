"""How outputs are named: head levels (P3, P4, …) and the files of images and video frames.

Head levels are named as yolov5's YAMLs name the feature maps: ``P<k>`` for stride ``2**k``, so
a stock model's heads are P3 (stride 8), P4 and P5, a ``-p6`` model adds P6 and a ``-p2`` model
starts at P2. The name comes from the head's stride (``model.stride``), never from its position.

Files: an image's outputs start with its stem (``00001``); a video frame's with the stem and the
frame's 0-based index in the video, zero-padded to ``FRAME_DIGITS`` digits (``clip_000000``, the
first frame too), so the files sort in frame order.
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
