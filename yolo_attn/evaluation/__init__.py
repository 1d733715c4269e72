"""Heatmap evaluation: are the maps faithful to the model, and how do two models' maps compare?

``metrics`` (pointing game, energy-based pointing game, AUC), ``perturb`` (deletion/insertion
curves), ``matching`` (detections to labels or across models), ``sanity`` (model randomisation),
``evaluate`` (``yolo-attn heatmap-eval``), ``compare`` (``yolo-attn heatmap-compare``).
"""

from .metrics import auc, energy_pointing_game, pointing_game
from .perturb import BASELINES, Curves, Perturber
from .sanity import RandomisedMaps, rank_correlation, verdict

__all__ = ['auc', 'energy_pointing_game', 'pointing_game', 'BASELINES', 'Curves', 'Perturber', 'RandomisedMaps',
           'rank_correlation', 'verdict']
