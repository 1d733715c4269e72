"""Numbers of one saliency map (pure numpy), shared by the heatmap engine and the evaluation metrics.

A map is a 2-D array at original image size; a box is xyxy in the same pixels, rounded to whole
pixels: pixel column ``x`` is inside when ``round(x1) <= x < round(x2)`` (rows alike). Kept
below both ``heatmaps`` and ``evaluation`` so the metrics take maps without importing the engine
(captum's rule: metrics receive attributions, they do not make them).
"""

from __future__ import annotations

import numpy as np

CONSTANT_EPS = 1e-6  # a map whose max - min is below this is constant: no maximum to point with


def energy_in_box(cam: np.ndarray, box) -> float:
    """Share of the map's total (float64) sum that lies inside ``box``, in [0, 1]; 0 for an all-zero map."""
    total = float(cam.sum(dtype=np.float64))
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    inside = float(cam[max(y1, 0):y2, max(x1, 0):x2].sum(dtype=np.float64))
    return min(inside / total, 1.0) if total > 0 else 0.0
