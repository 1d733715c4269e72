"""Heatmap evaluation: are the maps faithful to the model, and how do two models' maps compare?

``metrics`` (pointing game, energy-based pointing game, AUC), ``perturb`` (deletion/insertion),
``matching`` (detections to labels or across models), ``sanity`` (model randomisation),
``evaluate`` (``heatmap-eval``), ``compare`` (``heatmap-compare``). Public names are imported on
first use (PEP 562).
"""

from __future__ import annotations

from ..lazy import names_from

_WHERE = {'auc': 'metrics', 'energy_pointing_game': 'metrics', 'pointing_game': 'metrics', 'BASELINES': 'perturb',
          'Curves': 'perturb', 'Perturber': 'perturb', 'RandomisedMaps': 'sanity', 'rank_correlation': 'sanity',
          'verdict': 'sanity'}
__all__ = list(_WHERE)

__getattr__ = names_from(__name__, _WHERE)
