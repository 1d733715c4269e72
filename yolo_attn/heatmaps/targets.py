"""What a detection's heatmap explains: its objectness, its class probability, or their product.

Each target selects one row of an image's predictions ``pred`` (N, C) as the model's eval-mode
head returns them: yolov5's (x, y, w, h, objectness, classes...) or, with ``classes_at=4``,
ultralytics' anchor-free (x, y, w, h, classes...), which has no objectness (``conf`` is refused
there by ``heads.UltralyticsHead.check_target``; ``score`` is the class probability the model
reports). They are also pytorch-grad-cam targets (the tests compare with the library). No torch
import (the CLI reads ``TARGETS``); the model wrapper is ``predictions.PredictionsOnly``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch


class DetectionTarget:
    """Base: ``index`` is the prediction's row, ``cls`` the detection's class id, ``classes_at`` the
    column of the first class probability (5: yolov5; 4: anchor-free heads, no objectness column)."""

    name = ''

    def __init__(self, index: int, cls: int, classes_at: int = 5):
        self.index, self.cls, self.classes_at = int(index), int(cls), int(classes_at)

    def __call__(self, pred):
        raise NotImplementedError

    def class_prob(self, pred):
        return pred[self.index, self.classes_at + self.cls]


class ConfTarget(DetectionTarget):
    """Objectness (``pred[i, 4]``); yolov5 only."""

    name = 'conf'

    def __call__(self, pred):
        if self.classes_at < 5:
            raise ValueError('conf: this head has no objectness score')
        return pred[self.index, 4]


class ClassTarget(DetectionTarget):
    """Probability of the detection's class."""

    name = 'class'

    def __call__(self, pred):
        return self.class_prob(pred)


class ScoreTarget(DetectionTarget):
    """The confidence the model reports for the detection: objectness x class probability (yolov5),
    the class probability (anchor-free heads)."""

    name = 'score'

    def __call__(self, pred):
        if self.classes_at < 5:
            return self.class_prob(pred)
        return pred[self.index, 4] * self.class_prob(pred)


TARGETS = {t.name: t for t in (ConfTarget, ClassTarget, ScoreTarget)}
