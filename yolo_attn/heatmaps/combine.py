"""How one detection's per-layer maps become its heatmap.

Each per-layer map is pytorch-grad-cam's (``compute_cam_per_layer``). Rules: ``tanh`` (default),
LayerCAM's ``tanh(gamma * M / max M)`` scaling (Jiang et al., IEEE TIP 2021, sec. III-C) then the
mean; ``mean``, pytorch-grad-cam's ``aggregate_multi_layers``; ``gmean``, the geometric mean of the
layers that are non-zero. Why ``tanh`` is the default: docs/heatmaps.md, "Which layers, and why".
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
