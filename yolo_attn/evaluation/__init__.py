"""Heatmap evaluation: are the maps faithful to the model, and how do two models' maps compare?

``metrics`` (pointing game, energy-based pointing game, AUC), ``perturb`` (deletion/insertion
curves), ``matching`` (detections to labels or across models), ``sanity`` (model randomisation),
``evaluate`` (``yolo-attn heatmap-eval``), ``compare`` (``yolo-attn heatmap-compare``). The names
below are imported on first use (``yolo_attn.lazy``): the CLI reads the flags from ``options``
without importing torch.
"""

from ..lazy import export

__all__ = export(__name__, {
    'metrics': ('auc', 'energy_pointing_game', 'pointing_game'),
    'perturb': ('BASELINES', 'Curves', 'Perturber'),
    'sanity': ('RandomisedMaps', 'rank_correlation', 'verdict'),
})
