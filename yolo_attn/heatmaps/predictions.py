"""A yolov5 model as pytorch-grad-cam's own ``cam(input, targets)`` needs it.

pytorch-grad-cam calls ``model(input)`` and hands the output to each target; a yolov5 ``Model`` in
eval mode returns ``(predictions, feature maps)``. ``PredictionsOnly`` keeps the first: the raw
predictions (B, N, 5 + nc) that the targets of ``targets.py`` select a row from. The fast path
(``engine.py``) does not need it; the library path and the tests that compare with it do.
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
