"""Localisation and faithfulness numbers for one saliency map and one box (pure numpy).

Maps and boxes in original-image pixels, boxes rounded as ``mapstats.energy_in_box`` does.
Pointing game (Zhang et al., ECCV 2016; a constant map is a miss), energy-based pointing game
(Score-CAM, Wang et al., CVPRW 2020) and the AUC of deletion/insertion curves (trapezoidal, over the
share perturbed). Definitions: docs/metrics.md.
"""

from __future__ import annotations

import numpy as np

from ..mapstats import CONSTANT_EPS, energy_in_box  # shared with the engine, below both


def box_pixels(box, shape) -> tuple[int, int, int, int]:
    """Integer pixel bounds ``(x1, y1, x2, y2)`` of a box, clipped to an image of ``shape`` (h, w)."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    return max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)


def is_constant(cam: np.ndarray) -> bool:
    return float(cam.max() - cam.min()) < CONSTANT_EPS


def pointing_game(cam: np.ndarray, box) -> bool:
    """Is the map's maximum inside the box? A constant map is a miss."""
    if cam.size == 0 or is_constant(cam):
        return False
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    x1, y1, x2, y2 = box_pixels(box, cam.shape)
    return bool(x1 <= x < x2 and y1 <= y < y2)


def energy_pointing_game(cam: np.ndarray, box) -> float:
    """Share of the map's energy inside the box (the engine's ``energy_in_box``; negatives clipped)."""
    return energy_in_box(np.clip(cam, 0, None), box_pixels(box, cam.shape))


def auc(curve) -> float:
    """Trapezoidal area under a curve sampled at equally spaced fractions 0, 1/S, …, 1."""
    y = np.asarray(curve, dtype=np.float64)
    if y.size < 2:
        raise ValueError('a curve needs at least two points (0 and all pixels perturbed)')
    return float(((y[1:] + y[:-1]) / 2).sum() / (y.size - 1))
