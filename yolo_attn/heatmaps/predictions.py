"""A yolov5 model as pytorch-grad-cam's own ``cam(input, targets)`` needs it: ``PredictionsOnly``
keeps the raw predictions of eval mode's ``(predictions, feature maps)``. Only the library path and
the tests that compare with it use it (not ``engine.py``).
"""

from __future__ import annotations

import torch


class PredictionsOnly(torch.nn.Module):
    """``model(x)[0]``: images -> raw predictions (B, N, 5 + nc)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]
