"""Share one backward pass between detections whose gradients cannot overlap.

Between the target layers and Detect, yolov5 (and YOLOv8/11's convolution blocks) use only local
operations, so a detection's gradient is zero outside a window around its cell; detections with
pairwise disjoint windows share one backward (column compression of sparse Jacobians: Curtis,
Powell and Reid, 1974). Windows are
measured by one probe backward per head; ``packable`` turns packing off for non-local modules.
See docs/heatmaps.md, "How it works".
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

MARGIN = 2  # cells added on every side of a shifted probe window

_LOCAL = (nn.Conv2d, nn.BatchNorm2d, nn.SiLU, nn.Identity, nn.Upsample, nn.Sequential, nn.ModuleList)


def _local_types(ultralytics: bool):
    if ultralytics:  # YOLOv8/11/26 blocks made of convolutions only (C2PSA, A2C2f, attention C3k2: not local)
        from ultralytics.nn.modules import C2f, C3, C3k2, DFL, Bottleneck, Concat, Conv, Detect, DWConv
        from ultralytics.nn.modules.block import C3k
        return _LOCAL + (Conv, DWConv, C2f, C3, C3k, C3k2, Bottleneck, Concat, Detect, DFL)
    from yolov5.models.common import C3, Bottleneck, Concat, Conv
    from yolov5.models.yolo import Detect
    return _LOCAL + (Conv, C3, Bottleneck, Concat, Detect)


def packable(model, layers) -> bool:
    """True if every module after the first target layer is local and data-independent."""
    from .heads import is_ultralytics
    local = _local_types(is_ultralytics(model))
    first = min(layers)
    return all(isinstance(m, local) for layer in model.model[first + 1:] for m in layer.modules())


def gradients_to(scores, activations, b: int) -> list:
    """Per target layer, the list over k of d score_k / d activation of image ``b`` (C, H, W); one
    shared zero tensor where a layer does not affect a score. One ``autograd.grad`` per score (the
    graph is kept); nothing is stacked, so the caller copies only what it keeps."""
    out = [[] for _ in activations]
    zeros = [None] * len(activations)
    for score in scores:
        for j, (g, a) in enumerate(zip(torch.autograd.grad(score, activations, retain_graph=True, allow_unused=True),
                                       activations)):
            if g is None and zeros[j] is None:
                zeros[j] = torch.zeros_like(a[b])
            out[j].append(zeros[j] if g is None else g[b])
    return out


class Windows:
    """Per (head level, target layer): the probe's gradient extent relative to its cell."""

    def __init__(self, extents: dict, grids: list, shapes: list):
        self.extents, self.grids, self.shapes = extents, grids, shapes

    @classmethod
    def probe(cls, raw, activations, b: int) -> 'Windows':
        """One backward per head level: a random positive mix of every raw output of that head
        (``raw[level]``: B, na, ny, nx, 5 + nc) at its central cell, all anchors, differentiated
        with respect to each target activation."""
        gen = torch.Generator().manual_seed(0)
        probes, grids = [], [tuple(r.shape[2:4]) for r in raw]
        for r, (ny, nx) in zip(raw, grids):
            cell = r[b, :, ny // 2, nx // 2]
            probes.append((cell * (torch.rand(cell.shape, generator=gen, dtype=cell.dtype) + 0.5)).sum())
        grads = gradients_to(probes, activations, b)
        shapes = [tuple(a.shape[2:]) for a in activations]
        extents = {}
        for level, (ny, nx) in enumerate(grids):
            for j, (g, (h, w)) in enumerate(zip(grads, shapes)):
                nz = g[level].abs().sum(0) > 0
                ys, xs = np.flatnonzero(nz.any(1).numpy()), np.flatnonzero(nz.any(0).numpy())
                if not len(ys):
                    extents[level, j] = None
                    continue
                sy, sx = h / ny, w / nx
                cy, cx = (ny // 2 + 0.5) * sy - 0.5, (nx // 2 + 0.5) * sx - 0.5
                lo_y = -math.inf if ys[0] == 0 else ys[0] - cy
                hi_y = math.inf if ys[-1] == h - 1 else ys[-1] - cy
                lo_x = -math.inf if xs[0] == 0 else xs[0] - cx
                hi_x = math.inf if xs[-1] == w - 1 else xs[-1] - cx
                extents[level, j] = (lo_y, hi_y, lo_x, hi_x)
        return cls(extents, list(grids), shapes)

    def of(self, level: int, cell: tuple) -> list:
        """Per target layer: ``(y0, y1, x0, x1)`` (end-exclusive) or None where the gradient is zero."""
        ny, nx = self.grids[level]
        out = []
        for j, (h, w) in enumerate(self.shapes):
            e = self.extents[level, j]
            if e is None:
                out.append(None)
                continue
            sy, sx = h / ny, w / nx
            cy, cx = (cell[0] + 0.5) * sy - 0.5, (cell[1] + 0.5) * sx - 0.5
            y0, y1 = _span(cy + e[0], cy + e[1], h)
            x0, x1 = _span(cx + e[2], cx + e[3], w)
            out.append((y0, y1, x0, x1))
        return out


def _span(lo: float, hi: float, size: int) -> tuple:
    a = 0 if lo == -math.inf else max(math.floor(lo) - MARGIN, 0)
    b = size if hi == math.inf else min(math.ceil(hi) + MARGIN + 1, size)
    return a, b


def pack(windows: list, shapes: list, order: list) -> list:
    """Greedy colouring: groups of detection indices whose windows are pairwise disjoint in every
    target layer, visiting detections in ``order``."""
    groups, used = [], []
    for k in order:
        win = windows[k]
        for g, occ in zip(groups, used):
            if all(w is None or not occ[j][w[0]:w[1], w[2]:w[3]].any() for j, w in enumerate(win)):
                break
        else:
            g, occ = [], [np.zeros(s, dtype=bool) for s in shapes]
            groups.append(g)
            used.append(occ)
        g.append(k)
        for j, w in enumerate(win):
            if w is not None:
                occ[j][w[0]:w[1], w[2]:w[3]] = True
    return groups
