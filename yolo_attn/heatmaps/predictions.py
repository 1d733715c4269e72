"""A detection model as pytorch-grad-cam's own ``cam(input, targets)`` needs it: ``PredictionsOnly``
returns one row per prediction index (yolov5: Detect's predictions; ultralytics: every anchor's class
scores, ``heads.by_anchor``). Only the library path and the tests that compare with it use it.
"""

from __future__ import annotations

import torch

from .heads import head_for


class PredictionsOnly(torch.nn.Module):
    """images -> rows (B, N, C) that ``targets`` index by a detection's row (its anchor)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.head = model, head_for(model)

    def forward(self, x):
        hooks = self.head.attach()
        try:
            out = self.model(x)
        finally:
            for h in hooks:
                h.remove()
        return self.head.by_anchor(*self.head.outputs(out))
