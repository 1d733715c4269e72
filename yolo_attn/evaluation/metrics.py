"""Localisation and faithfulness numbers for one saliency map and one box (pure numpy).

A map is a 2-D array at original image size (what ``Detection.map`` holds); a box is xyxy in the
same pixels, rounded to whole pixels the way ``mapstats.energy_in_box`` rounds it: pixel
column ``x`` is inside when ``round(x1) <= x < round(x2)`` (the same for rows).

* **Pointing game** (Zhang et al., ECCV 2016): a hit when the map's maximum lies in the box. The
  maximum is ``np.argmax`` (the first maximal pixel in row-major order); a constant map has no
  maximum to point with and is a miss.
* **Energy-based pointing game** (Score-CAM, Wang et al., CVPRW 2020): the share of the map's
  total energy (sum of its non-negative values) that lies inside the box, in [0, 1]; 0 for an
  all-zero map.
* **AUC** of a deletion or insertion curve: trapezoidal area over the fraction of pixels perturbed,
  0 … 1 on the x axis, so a curve that stays at 1 has AUC 1.
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
