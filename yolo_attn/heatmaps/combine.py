"""How one detection's per-layer maps become its heatmap.

Every per-layer map is exactly pytorch-grad-cam's (``compute_cam_per_layer``: the method's
weighting, ReLU, resized to the input and min-max normalised). Rules:

* ``tanh`` (default): LayerCAM's scaling of each layer's map before fusing them (Jiang et al.,
  "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization", IEEE TIP 2021,
  section III-C: ``M' = tanh(gamma * M / max(M))``,
  ``gamma = 2``), then the layers averaged and min-max normalised like ``mean``. Fine layers give
  maps whose few strongest pixels (an object's edges and corners) dwarf the rest of the object;
  the scaling lifts the object's weaker responses towards the peaks without reordering any layer's
  pixels (``tanh`` is increasing: a one-layer map keeps its ranking, so its pointing game,
  deletion/insertion order and randomisation rank correlation are unchanged). Measured
  (benchmarks/heatmap_layers_study.py, README "Which layers", ``level`` layers, demo / stock
  model): median share of the box above half the maximum 0.21 -> 0.43 / 0.26 -> 0.49 for energy in
  the box 0.70 -> 0.66 / 0.68 -> 0.64, the same pointing game and randomisation figures.
* ``mean``: pytorch-grad-cam's own ``aggregate_multi_layers`` (the layers averaged,
  normalised again). Where a coarse layer is on, it is on over its whole cell: a stride-32 map
  spreads a 32-pixel-cell halo around a small object; the default ``level`` layers avoid that by
  never giving a small (P3) object a coarser layer than stride 8.
* ``gmean``: the geometric mean of the layers' maps, normalised (``prod(m_l) ** (1 / L)``). A pixel
  is salient only where *every* layer finds it salient: the fine layer's map confines the coarse
  layer's halo to the object, while the coarse layer vetoes fine-layer responses elsewhere. A
  layer whose map is zero everywhere for this detection (no gradient reached it, e.g. a stride-8
  detection at the stride-32 Detect input) says nothing about it and is left out rather than
  zeroing the product; with one layer it is that layer's map. Measured (benchmarks/
  heatmap_layers_study.py, README "Which layers"): more energy in the box than the mean (demo model
  0.49 -> 0.53, stock yolov5n 0.68 -> 0.70) but, on the stock model, maps that depend more on the
  architecture (randomisation rho 0.59 -> 0.72 raw, 0.23 -> 0.40 given the centre prior; likely
  because the product keeps only where every layer is non-zero, and without a global-pooling block
  that is a receptive-field window a randomised model shares). Not the default for that reason.
"""

from __future__ import annotations

import numpy as np

RULES = ('tanh', 'mean', 'gmean')
DEFAULT_RULE = 'tanh'
LAYERCAM_GAMMA = 2.0  # LayerCAM's gamma for the tanh scaling


def combine_layers(maps: np.ndarray, rule: str, cam=None) -> np.ndarray:
    """``maps``: (n, L, H, W) per-layer maps of n detections -> (n, H, W) heatmaps in [0, 1].
    ``cam``: the pytorch-grad-cam object whose ``aggregate_multi_layers`` the ``mean`` rule uses."""
    from pytorch_grad_cam.utils.image import scale_cam_image  # on first use: the library takes seconds
    if rule == 'tanh':  # each map is already min-max normalised (max 1 or all zero): M / max(M) = M
        return scale_cam_image(np.tanh(LAYERCAM_GAMMA * np.maximum(maps, 0)).mean(1).astype(np.float32))
    if rule == 'mean':
        if cam is None:
            raise ValueError("the 'mean' rule is pytorch-grad-cam's aggregate_multi_layers: pass its cam object")
        return cam.aggregate_multi_layers([maps[:, j:j + 1] for j in range(maps.shape[1])])
    if rule == 'gmean':
        m = np.maximum(maps, 0).astype(np.float64)
        used = m.reshape(*m.shape[:2], -1).max(-1) > 0  # (n, L): layers with something to say
        logs = np.where(used[..., None, None], np.log(np.where(m > 0, m, 1.0)), 0.0)
        zero = ((m <= 0) & used[..., None, None]).any(1)  # a used layer at zero zeroes the product
        k = np.maximum(used.sum(1), 1)[:, None, None]
        return scale_cam_image(np.where(zero, 0.0, np.exp(logs.sum(1) / k)).astype(np.float32))
    raise ValueError(f"unknown layer combination {rule!r}; choose from {', '.join(RULES)}")
