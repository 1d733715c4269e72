"""Heatmap evaluation: are the maps faithful to the model, and how do two models' maps compare?

``metrics`` (pointing game, energy-based pointing game, AUC), ``perturb`` (deletion/insertion),
``matching`` (detections to labels or across models), ``sanity`` (model randomisation),
``evaluate`` (``heatmap-eval``), ``compare`` (``heatmap-compare``). Public names are imported on
first use (PEP 562).
"""

from __future__ import annotations

import importlib

_WHERE = {'auc': 'metrics', 'energy_pointing_game': 'metrics', 'pointing_game': 'metrics', 'BASELINES': 'perturb',
          'Curves': 'perturb', 'Perturber': 'perturb', 'RandomisedMaps': 'sanity', 'rank_correlation': 'sanity',
          'verdict': 'sanity'}
__all__ = list(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{_WHERE[name]}', __name__), name)
