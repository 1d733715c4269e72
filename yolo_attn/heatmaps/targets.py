"""What a detection's heatmap explains: its objectness, its class probability, or their product.

Each target is a tiny callable over one image's raw predictions ``pred`` (N, 5 + nc) as
yolov5's ``Detect`` returns them in eval mode (sigmoid applied, boxes decoded), selecting one
row — the raw prediction a kept detection came from. They are also valid pytorch-grad-cam targets
(``target(model_output)``), which is how the tests compare our fast path with the library.
Nothing here imports torch (the CLI reads ``TARGETS``); ``PredictionsOnly``, the model wrapper those
library calls need, is in ``predictions.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch


class DetectionTarget:
    """Base: ``index`` is the raw prediction's row, ``cls`` the detection's class id."""

    name = ''

    def __init__(self, index: int, cls: int):
        self.index, self.cls = int(index), int(cls)

    def __call__(self, pred):
        raise NotImplementedError


class ConfTarget(DetectionTarget):
    """Objectness (``pred[i, 4]``)."""

    name = 'conf'

    def __call__(self, pred):
        return pred[self.index, 4]


class ClassTarget(DetectionTarget):
    """Probability of the detection's class (``pred[i, 5 + c]``)."""

    name = 'class'

    def __call__(self, pred):
        return pred[self.index, 5 + self.cls]


class ScoreTarget(DetectionTarget):
    """Objectness x class probability: the confidence yolov5 reports for the detection."""

    name = 'score'

    def __call__(self, pred):
        return pred[self.index, 4] * pred[self.index, 5 + self.cls]


TARGETS = {t.name: t for t in (ConfTarget, ClassTarget, ScoreTarget)}


def head_row(raw: list, b: int, level: int, anchor: int, cell: tuple) -> torch.Tensor:
    """One raw prediction as a (1, 5 + nc) ``pred`` whose objectness and class columns equal
    ``Detect``'s (yolov5 7.0 computes them as the sigmoid of its head's raw output, ``raw[level]``
    of shape (B, na, ny, nx, 5 + nc)); the box columns are left undecoded, and no target reads them.

    A target applied to this row (``index`` 0) gives the same number as on the concatenated
    predictions, but its graph reaches back through that head only: differentiating a score read
    from the concatenation also runs the other heads' backward, on zeros."""
    return raw[level][b, anchor, cell[0], cell[1]].sigmoid()[None]
