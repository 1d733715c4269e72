"""Deletion and insertion curves of a detection's saliency map (after RISE and the ODAM protocol).

Pixels ranked by the map (ties in a seeded random order) are deleted into, or inserted from, a
baseline image (``BASELINES``) up to a budget ``L`` (``perturbation_budget``: ``box`` protocol,
``BOX_MULTIPLE`` box areas; ``image``, the whole image); each image is scored as detect.py would
(``letterbox``, ``scale_boxes``, ``box_iou``), NMS skipped. Definitions: docs/metrics.md.
OpenCV, torch and the heatmap API are imported where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..heatmaps.options import DEFAULTS
from .metrics import auc, box_pixels
from .options import BASELINES, BOX_MULTIPLE, EVAL, PROTOCOLS

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

BLUR_SIGMA = 0.05  # of the image's longer side
TIE_SEED = 0


def baseline_image(im0: np.ndarray, kind: str = EVAL.baseline) -> np.ndarray:
    """The image every perturbation moves towards, same shape and dtype as ``im0``."""
    if kind == 'blur':
        import cv2
        return cv2.GaussianBlur(im0, (0, 0), sigmaX=BLUR_SIGMA * max(im0.shape[:2]))
    if kind == 'gray':
        return np.full_like(im0, 114)
    if kind == 'black':
        return np.zeros_like(im0)
    raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")


def saliency_order(cam: np.ndarray, seed: int = TIE_SEED) -> np.ndarray:
    """Flat pixel indices, most salient first; equal values in a random order drawn from ``seed``
    (a stable sort of a seeded permutation), so the order is reproducible and free of row order."""
    perm = np.random.default_rng(seed).permutation(cam.size)
    return perm[np.argsort(-cam.reshape(-1)[perm], kind='stable')]


def step_counts(budget: int, steps: int) -> list[int]:
    """Pixels perturbed at steps 0 … ``steps``: 0, then equal shares of ``budget``, then all of it."""
    return [int(round(k * budget / steps)) for k in range(steps + 1)]


def perturbation_budget(box, shape, protocol: str = EVAL.protocol, multiple: float = BOX_MULTIPLE) -> int:
    """Pixels perturbed at the last step (``L``, the budget) for a detection's ``box``
    in an image of ``shape``; at least 1 pixel."""
    n = int(shape[0]) * int(shape[1])
    if protocol == 'image':
        return n
    if protocol != 'box':
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    x1, y1, x2, y2 = box_pixels(box, shape)
    return int(min(max(round(multiple * max(x2 - x1, 0) * max(y2 - y1, 0)), 1), n))


def perturbed(im0, base, order, n, insert=False) -> np.ndarray:
    """``im0`` with its ``n`` most salient pixels deleted (baseline's pixels) or, with ``insert``,
    the baseline image with those pixels taken from ``im0``."""
    return next(perturbed_steps(im0, base, order, [n], insert))


def perturbed_steps(im0, base, order, counts, insert=False):
    """``perturbed(im0, base, order, n, insert)`` for each ``n`` of the increasing ``counts``, built
    incrementally: each image adds only the pixels ranked between the previous count and its own
    (a single count builds the image from scratch)."""
    src, dst = (im0, base) if insert else (base, im0)
    flat_src = src.reshape(dst.shape[0] * dst.shape[1], -1)
    current, done = dst.copy().reshape(flat_src.shape), 0
    for n in counts:
        idx = order[done:n]
        current[idx] = flat_src[idx]
        done = n
        yield current.reshape(dst.shape).copy()


def channels_last_copy(model):
    """A copy of ``model`` with channels-last (NHWC) convolution weights, faster with oneDNN on the
    CPU; the caller's model keeps its layout. Not ``model.to(memory_format=...)``: that also converts
    ``Detect``'s 5-D grids, which have no channels-last form."""
    import copy

    import torch
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return model


@dataclass
class Curves:
    deletion: np.ndarray  # normalised scores at steps 0 … S
    insertion: np.ndarray
    start: float  # score on the unperturbed image
    empty: float  # score on the all-baseline image
    budget: int = 0  # pixels perturbed at the last step

    @property
    def deletion_auc(self) -> float:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.insertion)


class Perturber:
    """Deletion/insertion for the detections of one image at a time."""

    def __init__(self, model, imgsz=DEFAULTS.imgsz, steps=EVAL.steps, baseline=EVAL.baseline, batch=EVAL.batch,
                 match_iou=EVAL.match_iou, score_floor=0.001, protocol=EVAL.protocol, box_multiple=EVAL.box_multiple,
                 seed=TIE_SEED):
        """``imgsz``: the size the maps were made at (``heatmaps.options``); ``batch``: perturbed
        images per forward pass."""
        from yolov5.utils.general import check_img_size
        if steps < 1:
            raise ValueError('steps must be at least 1')
        if not box_multiple > 0:
            raise ValueError(f'box_multiple must be positive, got {box_multiple}')
        baseline_image(np.zeros((1, 1, 3), np.uint8), baseline)  # validates the name
        perturbation_budget((0, 0, 1, 1), (1, 1), protocol)  # validates the protocol
        self.protocol, self.box_multiple, self.seed = protocol, float(box_multiple), seed
        from ..heatmaps.heads import head_for
        self.model, self.stride = channels_last_copy(model).eval(), int(model.stride.max())
        self.head = head_for(self.model)  # how its output reads as boxes, confidences and classes
        self.imgsz = check_img_size(imgsz, s=self.stride)
        self.device = next(model.parameters()).device
        self.steps, self.baseline, self.batch, self.match_iou = steps, baseline, max(int(batch), 1), match_iou
        self.score_floor = score_floor

    def letterbox(self, im0: np.ndarray) -> torch.Tensor:
        """What ``LoadImages`` feeds the model: letterboxed, RGB, CHW, float in [0, 1] (``heatmaps.api``)."""
        from ..heatmaps.api import letterbox_tensor
        return letterbox_tensor(im0, self.imgsz, self.stride)

    def scores(self, jobs) -> list[list[float]]:
        """``jobs``: iterable of ``(image, [(cls, box), …])`` (images of one shape, BGR uint8); for each
        job the best same-class score with IoU > ``match_iou`` to each box. One forward per batch."""
        out, pending = [], []
        for job in jobs:
            pending.append(job)
            if len(pending) == self.batch:
                out += self._score_batch(pending)
                pending = []
        return out + (self._score_batch(pending) if pending else [])

    def _score_batch(self, jobs) -> list[list[float]]:
        import torch
        from yolov5.utils.general import scale_boxes
        from yolov5.utils.metrics import box_iou
        with torch.inference_mode():
            x = torch.stack([self.letterbox(im) for im, _ in jobs]).to(self.device)
            x = x.contiguous(memory_format=torch.channels_last)
            dense = self.head.dense(self.model(x))  # per image: boxes, the model's confidence and class per row
            result = []
            for (im, targets), (boxes, conf, label) in zip(jobs, dense):
                keep = conf >= self.score_floor
                conf, label = conf[keep], label[keep]
                boxes = scale_boxes(x.shape[2:], boxes[keep], im.shape).round().cpu()  # pixels, as detect.py
                row = []
                for cls, box in targets:
                    same = label.cpu() == int(cls)
                    iou = box_iou(torch.tensor([list(box)], dtype=boxes.dtype), boxes[same])[0]
                    hit = iou > self.match_iou
                    row.append(float(conf.cpu()[same][hit].max()) if hit.any() else 0.0)
                result.append(row)
        return result

    def curves(self, im0: np.ndarray, targets) -> list[Curves]:
        """``targets``: ``[(map, cls, box), …]`` for detections of ``im0``; their deletion and insertion
        curves, perturbed images made lazily and run ``batch`` at a time. Steps with nothing or
        everything perturbed reuse the image's and the all-baseline image's scores."""
        if not targets:
            return []
        base = baseline_image(im0, self.baseline)
        boxes = [(cls, box) for _, cls, box in targets]
        start, empty = self.scores([(im0, boxes), (base, boxes)])
        n = im0.shape[0] * im0.shape[1]
        budgets = [perturbation_budget(box, im0.shape, self.protocol, self.box_multiple) for _, box in boxes]
        counts = [step_counts(b, self.steps) for b in budgets]
        orders = [saliency_order(cam, self.seed) for cam, _, _ in targets]

        def jobs():
            for target, order, c in zip(boxes, orders, counts):
                inner = [k for k in c if 0 < k < n]
                for insert in (False, True):
                    for image in perturbed_steps(im0, base, order, inner, insert):
                        yield image, [target]

        middle = iter(s[0] for s in self.scores(jobs()))
        out = []
        for t in range(len(targets)):
            ends = {0: start[t], n: empty[t]}  # deletion; insertion swaps them
            deletion = [ends[k] if k in ends else next(middle) for k in counts[t]]
            ends = {0: empty[t], n: start[t]}
            insertion = [ends[k] if k in ends else next(middle) for k in counts[t]]
            norm = start[t] if start[t] > 0 else np.nan
            out.append(Curves(np.array(deletion) / norm, np.array(insertion) / norm, start[t], empty[t], budgets[t]))
        return out
