"""How one detection's per-layer maps become its heatmap.

Every per-layer map is exactly pytorch-grad-cam's (``compute_cam_per_layer``: the method's
weighting, ReLU, resized to the input and min-max normalised). Rules:

* ``mean``: pytorch-grad-cam's own ``aggregate_multi_layers`` (the layers averaged, normalised
  again). Where a coarse layer is on, it is on over its whole cell: a stride-32 map spreads a
  32-pixel-cell halo around a small object, and the mean keeps it at half strength.
* ``gmean``: the geometric mean of the layers' maps, normalised (``prod(m_l) ** (1 / L)``). A pixel is
  salient only where *every* layer finds it salient: the fine layer's map confines the coarse
  layer's halo to the object, while the coarse layer still vetoes fine-layer responses elsewhere.
  With one layer it is that layer's map.
"""

from __future__ import annotations

import numpy as np
from pytorch_grad_cam.utils.image import scale_cam_image

RULES = ('mean', 'gmean')
DEFAULT_RULE = 'mean'


def combine_layers(maps: np.ndarray, rule: str, cam=None) -> np.ndarray:
    """``maps``: (n, L, H, W) per-layer maps of n detections -> (n, H, W) heatmaps in [0, 1].
    ``cam``: the pytorch-grad-cam object whose ``aggregate_multi_layers`` the ``mean`` rule uses."""
    if rule == 'mean':
        if cam is None:
            raise ValueError("the 'mean' rule is pytorch-grad-cam's aggregate_multi_layers: pass its cam object")
        return cam.aggregate_multi_layers([maps[:, j:j + 1] for j in range(maps.shape[1])])
    if rule == 'gmean':
        m = np.maximum(maps, 0).astype(np.float64)
        return scale_cam_image((np.prod(m, axis=1) ** (1 / m.shape[1])).astype(np.float32))
    raise ValueError(f"unknown layer combination {rule!r}; choose from {', '.join(RULES)}")
