"""What the engine needs to know of a detection head: yolov5's anchor-based ``Detect`` or ultralytics'
anchor-free one (YOLOv8/11/12/26, YOLOv5u), with NMS or NMS-free (``end2end``).

``head_for(model)`` picks one. Each turns the model's eval output into ``pred`` (B, N, C) rows,
runs its framework's NMS keeping the row index (the anchor), locates a row in its head's grid,
and gives a row's scores per head level (``raw``: B, na, ny, nx, channels) so a score's graph
reaches back through that head level only. Facts from reading yolov5 7.0 ``models/yolo.py`` and
ultralytics 8.4 ``nn/modules/head.py``, ``utils/nms.py``; see docs/heatmaps.md, "Ultralytics models".
"""

from __future__ import annotations

import torch

from ..errors import OptionError


def is_ultralytics(model) -> bool:
    """A model built by ultralytics (its Detect family), not by yolov5."""
    return type(model.model[-1]).__module__.startswith('ultralytics.')


def head_for(model):
    """The head adapter of ``model`` (``Yolov5Head`` or ``UltralyticsHead``)."""
    return UltralyticsHead(model) if is_ultralytics(model) else Yolov5Head(model)


def locate(index: int, na: int, grids: list) -> tuple:
    """(level, anchor, (row, col)) of a prediction row; ``grids`` holds each head's (ny, nx)."""
    for level, (ny, nx) in enumerate(grids):
        n = na * ny * nx
        if index < n:
            anchor, rest = divmod(index, ny * nx)
            return level, anchor, divmod(rest, nx)
        index -= n
    raise IndexError('prediction index beyond the last head')


def nms_with_index(pred, conf_thres, iou_thres, classes, agnostic, max_det) -> list:
    """Per image ``(det (n, 6) xyxy conf cls, rows)``: yolov5's NMS; the row of every kept detection
    rides through it as mask columns ``[index, 1]`` (NMS scales both by objectness, so the index is
    their ratio)."""
    from yolov5.utils.general import non_max_suppression
    b, n, _ = pred.shape
    # at least float32: float16 holds whole numbers exactly only up to 2048 (yolov5s at 640 has 25,200 rows)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    idx = torch.arange(n, dtype=dtype, device=pred.device).expand(b, n)[..., None]
    carried = torch.cat((pred.detach().to(dtype), idx, torch.ones_like(idx)), -1)
    out = non_max_suppression(carried, conf_thres, iou_thres, classes, agnostic, max_det=max_det, nm=2)
    return [(o[:, :6], torch.round(o[:, 6] / o[:, 7]).long()) for o in out]


class _Head:
    """What both heads share: rows ordered level by level, anchor by anchor, cell by cell."""

    na = 1  # anchors per grid cell

    def locate(self, index: int, grids: list) -> tuple:
        return locate(index, self.na, grids)

    def check_target(self, target: str, model_name: str = 'this model') -> None:
        """Refuse (``OptionError``) a ``--target`` this head does not define; every target by default."""


class Yolov5Head(_Head):
    """yolov5 7.0: rows (x, y, w, h, objectness, classes...) after the sigmoid; ``raw[level]``
    (B, na, ny, nx, 5 + nc) before it; NMS by ``non_max_suppression`` with the row index carried."""

    classes_at = 5  # column of the first class probability
    objectness = True

    def __init__(self, model):
        self.detect = model.model[-1]
        self.na = self.detect.na

    def attach(self) -> list:
        return []

    def outputs(self, out) -> tuple:
        """Eval-mode ``(pred, raw)`` as Detect returns it."""
        return out

    def predictions(self, out) -> torch.Tensor:
        """(B, N, 5 + nc) from eval output (inference mode, for the perturbation scores)."""
        return out[0]

    def by_anchor(self, pred, raw) -> torch.Tensor:
        """(B, N, C): one row per prediction index (``nms``'s rows), as the targets read them."""
        return pred

    def dense(self, out) -> list:
        """Per image (boxes xyxy in input pixels, confidence, class) of every row: yolov5's single-label
        confidence (objectness x class probability)."""
        from yolov5.utils.general import xywh2xyxy
        pred = self.predictions(out).float()
        return [(xywh2xyxy(p[:, :4]), *(p[:, 5:] * p[:, 4:5]).max(1)) for p in pred]

    def nms(self, pred, raw, conf_thres, iou_thres, classes, agnostic, max_det) -> list:
        return nms_with_index(pred, conf_thres, iou_thres, classes, agnostic, max_det)

    def head_row(self, raw, b, level, anchor, cell) -> torch.Tensor:
        """One prediction as a (1, 5 + nc) row: objectness and class columns equal Detect's (the sigmoid
        of ``raw[level]``), boxes undecoded (no target reads them)."""
        return raw[level][b, anchor, cell[0], cell[1]].sigmoid()[None]

    def values(self, pred, raw, b, index, where, cls) -> tuple:
        """(objectness, class probability) of a kept row, as floats."""
        row = pred[b, index].detach()
        return float(row[4]), float(row[5 + cls])


class UltralyticsHead(_Head):
    """ultralytics 8.x: rows (x, y, w, h, classes...) with sigmoid class scores and no objectness,
    one per anchor point (na = 1). The class logits are read per level from the classification
    branch in use (``cv3``, or ``one2one_cv3`` for an NMS-free head); ``raw[level]`` is them as
    (B, 1, ny, nx, nc). NMS: ``non_max_suppression(return_idxs=True)``; NMS-free (``end2end``):
    ``Detect.get_topk_index`` gives each of the head's top rows its anchor, then the confidence filter."""

    classes_at = 4
    objectness = False

    def __init__(self, model):
        self.detect = model.model[-1]
        self.end2end = bool(getattr(self.detect, 'end2end', False))
        self._logits = {}

    def branch(self):
        """The classification convolutions the head's output comes from (one per level)."""
        return self.detect.one2one_cv3 if self.end2end else self.detect.cv3

    def attach(self) -> list:
        """Hooks keeping each level's class logits (B, nc, ny, nx). The head's anchors are rebuilt in
        this forward: ones cached by an earlier ``inference_mode`` call cannot enter autograd."""
        self.detect.shape = None
        self._logits = {}
        return [m.register_forward_hook(lambda mod, inp, out, k=k: self._logits.__setitem__(k, out))
                for k, m in enumerate(self.branch())]

    def outputs(self, out) -> tuple:
        raw = [self._logits[k].permute(0, 2, 3, 1)[:, None] for k in range(len(self._logits))]
        self._logits = {}
        return self.predictions(out), raw

    def predictions(self, out) -> torch.Tensor:
        """(B, N, C): (B, anchors, 4 + nc) xywh rows, or an NMS-free head's (B, max_det, 6) xyxy-conf-cls rows."""
        y = out[0] if isinstance(out, (tuple, list)) else out
        return y if self.end2end else y.transpose(1, 2)

    def by_anchor(self, pred, raw) -> torch.Tensor:
        """(B, anchors, 4 + nc): the class scores of every anchor (boxes zero), in Detect's order."""
        scores = torch.cat([r.flatten(1, 3) for r in raw], 1).sigmoid()
        return torch.cat((scores.new_zeros((*scores.shape[:2], 4)), scores), -1)

    def dense(self, out) -> list:
        from ultralytics.utils.ops import xywh2xyxy
        pred = self.predictions(out).float()
        if self.end2end:
            return [(p[:, :4], p[:, 4], p[:, 5].long()) for p in pred]
        return [(xywh2xyxy(p[:, :4]), *p[:, 4:].max(1)) for p in pred]

    def nms(self, pred, raw, conf_thres, iou_thres, classes, agnostic, max_det) -> list:
        """Per image ``(det (n, 6), anchors)``: the kept rows and the anchor each came from."""
        from ultralytics.utils.nms import non_max_suppression
        pred = pred.detach()
        if not self.end2end:
            out, keep = non_max_suppression(pred.transpose(1, 2), conf_thres, iou_thres, classes, agnostic,
                                            max_det=max_det, nc=self.detect.nc, return_idxs=True)
            return [(o[:, :6], k.view(-1).long()) for o, k in zip(out, keep)]
        scores = self.by_anchor(pred, [r.detach() for r in raw])[..., 4:]  # (B, anchors, nc), Detect's order
        top = self.detect.get_topk_index(scores, pred.shape[1])[2]  # the anchor of each of the head's rows
        out, keep = non_max_suppression(pred, conf_thres, iou_thres, classes, agnostic, max_det=max_det,
                                        end2end=True, return_idxs=True)
        return [(o[:, :6], top[b, k.view(-1)].long()) for b, (o, k) in enumerate(zip(out, keep))]

    def head_row(self, raw, b, level, anchor, cell) -> torch.Tensor:
        """One anchor's row (1, 4 + nc): the class scores the head reports, boxes zero (no target reads them)."""
        scores = raw[level][b, anchor, cell[0], cell[1]].sigmoid()
        return torch.cat((scores.new_zeros(4), scores))[None]

    def values(self, pred, raw, b, index, where, cls) -> tuple:
        """(None: no objectness, class probability) of a kept detection."""
        level, anchor, cell = where
        return None, float(raw[level][b, anchor, cell[0], cell[1], cls].detach().sigmoid())

    def check_target(self, target: str, model_name: str = 'this model') -> None:
        if target == 'conf':
            raise OptionError('target', f"conf: {model_name} has an anchor-free head with no objectness score; use "
                                        f"class or score (both the class probability the model reports, here)")
