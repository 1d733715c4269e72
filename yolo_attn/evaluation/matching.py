"""Pairing boxes: detections with ground-truth labels, and detections of one model with another's.

One rule for both: same class, IoU >= a threshold (0.5 by default), greedy — the highest-scoring
box first takes the free partner it overlaps most; every box is used at most once.
Labels are read with yolov5's own helpers (``img2label_paths``, ``xywhn2xyxy``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from ..integration.datasets import label_file  # one home: yolov5's img2label_paths


def iou_matrix(a, b) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy (yolov5's ``box_iou``)."""
    from yolov5.utils.metrics import box_iou
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def greedy_match(boxes, classes, scores, other_boxes, other_classes, iou_thres=0.5) -> dict:
    """``{i: (j, iou)}``: box i (taken by descending score) gets the free same-class box j of the
    other set with the largest IoU, if that IoU is at least ``iou_thres``."""
    iou = iou_matrix(boxes, other_boxes)
    classes, other_classes = np.asarray(classes).reshape(-1), np.asarray(other_classes).reshape(-1)
    taken, pairs = set(), {}
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind='stable'):
        best, best_iou = None, iou_thres
        for j in range(len(other_classes)):
            if j not in taken and other_classes[j] == classes[i] and iou[i, j] >= best_iou:
                best, best_iou = j, iou[i, j]
        if best is not None:
            taken.add(best)
            pairs[int(i)] = (int(best), float(best_iou))
    return pairs


def read_labels(image, shape) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of an image of ``shape`` (h, w): class ids (N,) and xyxy boxes in pixels (N, 4).
    No label file means no objects (yolov5's convention)."""
    from yolov5.utils.general import xywhn2xyxy
    lf = label_file(image)
    if not lf.is_file():
        return np.zeros(0, dtype=int), np.zeros((0, 4))
    rows = np.loadtxt(lf, ndmin=2)
    if rows.size == 0:
        return np.zeros(0, dtype=int), np.zeros((0, 4))
    h, w = shape[:2]
    return rows[:, 0].astype(int), xywhn2xyxy(rows[:, 1:5], w=w, h=h)


def require_labels(images, where: str) -> None:
    """Refuse a split where no image has a label file: there is nothing to match detections with."""
    if not any(label_file(p).is_file() for p in images):
        example = label_file(images[0]) if images else 'labels/…'
        raise UserError(f'{where}: none of the {len(images)} images has a label file (e.g. {example}); '
                        'heatmap-eval needs ground-truth boxes in YOLO format next to images/ in labels/')
