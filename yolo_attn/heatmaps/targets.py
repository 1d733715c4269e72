"""What a detection's heatmap explains: its objectness, its class probability, or their product.

Each target selects one row of an image's predictions ``pred`` (N, 5 + nc) as yolov5's eval-mode
``Detect`` returns them; they are also pytorch-grad-cam targets (the tests compare with the library).
No torch import (the CLI reads ``TARGETS``); the model wrapper is ``predictions.PredictionsOnly``.
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
    """One raw prediction as a (1, 5 + nc) ``pred``: objectness and class columns equal ``Detect``'s
    (yolov5 7.0: the sigmoid of ``raw[level]``, (B, na, ny, nx, 5 + nc)), boxes undecoded (no target
    reads them). A target's graph then reaches back through that head only, not the others."""
    return raw[level][b, anchor, cell[0], cell[1]].sigmoid()[None]
