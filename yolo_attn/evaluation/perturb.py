"""Deletion and insertion curves of a detection's saliency map (the ODAM protocol, ICLR 2023).

For a detection with class ``c``, box ``b`` and map ``m`` (original image size):

* pixels are ranked by ``m``, most salient first (ties in row-major order);
* ``steps`` + 1 images are made: at step ``k`` the top ``round(k / steps * H * W)`` pixels are
  **deleted** (replaced by the baseline image's pixels) or, for insertion, copied from the image
  **into** the baseline image. Step 0 of deletion and the last step of insertion are the image
  itself; the last step of deletion and step 0 of insertion are the all-baseline image, whose score
  is the *empty-image score*;
* each perturbed image goes through the model as detect.py would see it (yolov5's ``letterbox``,
  one forward per batch of ``batch`` images, in a channels-last copy of the model -- see
  ``channels_last_copy`` --, boxes back to the original image with ``scale_boxes``);
* its score is the highest confidence among the predictions labelled ``c`` whose IoU with ``b``
  exceeds 0.5 (yolov5's ``box_iou``), 0 when there is none, divided by the score of the unperturbed
  image (the *starting score*). Predictions are labelled and scored as yolov5's single-label NMS
  does it (confidence = objectness x best class probability, label = that class, confidence >=
  ``score_floor`` = 0.001 as in val.py); NMS itself is skipped: it keeps the highest-scoring box of
  every cluster, so the maximum is the same, except when a higher-scoring box with IoU <= 0.5 to
  ``b`` would have suppressed it (then ODAM's post-NMS score is 0 and ours is not).

Baselines (``BASELINES``): ``blur`` — the image under a Gaussian blur of sigma 5 % of its longer
side (RISE/ODAM insertion start; keeps the colours, removes the shapes), ``gray`` — yolov5's
letterbox padding colour (114, 114, 114), ``black`` — zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .metrics import auc

BASELINES = ('blur', 'gray', 'black')
BLUR_SIGMA = 0.05  # of the image's longer side


def baseline_image(im0: np.ndarray, kind: str = 'blur') -> np.ndarray:
    """The image every perturbation moves towards, same shape and dtype as ``im0``."""
    if kind == 'blur':
        return cv2.GaussianBlur(im0, (0, 0), sigmaX=BLUR_SIGMA * max(im0.shape[:2]))
    if kind == 'gray':
        return np.full_like(im0, 114)
    if kind == 'black':
        return np.zeros_like(im0)
    raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")


def saliency_order(cam: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most salient first; equal values keep row-major order."""
    return np.argsort(-cam.reshape(-1), kind='stable')


def step_counts(n_pixels: int, steps: int) -> list[int]:
    """Pixels perturbed at steps 0 … ``steps``: 0, then equal shares, then all of them."""
    return [int(round(k * n_pixels / steps)) for k in range(steps + 1)]


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
    """A copy of ``model`` whose convolution weights are stored channels-last (NHWC), the layout
    oneDNN convolves fastest on the CPU (measured on yolov5n-cbam at 320, batch 8: 7.6 vs 11.2 ms
    per image); same predictions up to float rounding. A copy, so the caller's model -- also used
    for the gradients of the heatmaps -- keeps its layout. (``model.to(memory_format=...)`` is not
    used: it also converts ``Detect``'s 5-D grids, which have no channels-last form.)"""
    import copy
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

    @property
    def deletion_auc(self) -> float:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.insertion)


class Perturber:
    """Deletion/insertion for the detections of one image at a time (see the module docstring)."""

    def __init__(self, model, imgsz=640, steps=20, baseline='blur', batch=8, match_iou=0.5, score_floor=0.001):
        from yolov5.utils.general import check_img_size
        if steps < 1:
            raise ValueError('steps must be at least 1')
        baseline_image(np.zeros((1, 1, 3), np.uint8), baseline)  # validates the name
        self.model, self.stride = channels_last_copy(model).eval(), int(model.stride.max())
        self.imgsz = check_img_size(imgsz, s=self.stride)
        self.device = next(model.parameters()).device
        self.steps, self.baseline, self.batch, self.match_iou = steps, baseline, max(int(batch), 1), match_iou
        self.score_floor = score_floor

    def letterbox(self, im0: np.ndarray) -> torch.Tensor:
        """What ``LoadImages`` feeds the model: letterboxed, RGB, CHW, float in [0, 1]."""
        from yolov5.utils.augmentations import letterbox
        im = letterbox(im0, self.imgsz, stride=self.stride, auto=True)[0]
        return torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)[::-1])).float() / 255

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

    @torch.inference_mode()
    def _score_batch(self, jobs) -> list[list[float]]:
        from yolov5.utils.general import scale_boxes, xywh2xyxy
        from yolov5.utils.metrics import box_iou
        x = torch.stack([self.letterbox(im) for im, _ in jobs]).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        pred = self.model(x)[0].float()
        result = []
        for (im, targets), p in zip(jobs, pred):
            conf, label = (p[:, 5:] * p[:, 4:5]).max(1)  # yolov5's single-label confidence and class
            keep = conf >= self.score_floor
            conf, label = conf[keep], label[keep]
            boxes = scale_boxes(x.shape[2:], xywh2xyxy(p[keep, :4]), im.shape).round().cpu()  # pixels, as detect.py
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
        curves, perturbed images made lazily and run ``batch`` at a time."""
        if not targets:
            return []
        base = baseline_image(im0, self.baseline)
        boxes = [(cls, box) for _, cls, box in targets]
        start, empty = self.scores([(im0, boxes), (base, boxes)])
        counts = step_counts(im0.shape[0] * im0.shape[1], self.steps)[1:-1]
        orders = [saliency_order(cam) for cam, _, _ in targets]

        def jobs():
            for (cls, box), order in zip(boxes, orders):
                for insert in (False, True):
                    for image in perturbed_steps(im0, base, order, counts, insert):
                        yield image, [(cls, box)]

        middle = iter(s[0] for s in self.scores(jobs()))
        out = []
        for t in range(len(targets)):
            deletion = [start[t]] + [next(middle) for _ in counts] + [empty[t]]
            insertion = [empty[t]] + [next(middle) for _ in counts] + [start[t]]
            norm = start[t] if start[t] > 0 else np.nan
            out.append(Curves(np.array(deletion) / norm, np.array(insertion) / norm, start[t], empty[t]))
        return out
