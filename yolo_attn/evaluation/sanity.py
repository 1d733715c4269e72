"""Model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018)
for detectors: each detection's map from the trained model vs. from a re-initialised copy.

Per detection: ``rho`` (Spearman), ``rho_partial`` (given the box-centre location prior every
detector map shares) and ``rho_prior``; verdicts pass / fail / inconclusive from their means, overall
and per head level. Definitions and thresholds: docs/metrics.md, "Sanity check". torch and OpenCV
are imported where used: the CLI reads the thresholds without them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..heatmaps.options import DEFAULTS
from .metrics import is_constant

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

SIZE = 128
RAW_THRESHOLD = 0.5
PARTIAL_THRESHOLD = 0.3
PRIOR_ONLY = 0.9
MIN_LEVEL = 5


def randomized_copy(model, seed=0):
    """A deep copy of ``model`` with every parameterised layer re-initialised (RNG state restored)."""
    import torch
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for m in clone.modules():
            if m is not clone and callable(getattr(m, 'reset_parameters', None)):
                m.reset_parameters()
    return clone.eval()


def rank_correlation(trained: np.ndarray, random: np.ndarray) -> float:
    """Spearman's rho between two maps, with the conventions of ``correlations``."""
    return correlations(trained, random)[0]


def centre_prior(shape, box) -> np.ndarray:
    """Minus the distance of every pixel centre from the box centre, in box widths and heights."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    return -np.hypot((xs - (x1 + x2) / 2) / bw, (ys - (y1 + y2) / 2) / bh)


def correlations(trained: np.ndarray, random: np.ndarray, box=None) -> tuple[float, float, float]:
    """``(rho, rho_partial, rho_prior)`` of one detection; without ``box`` the last two are NaN.
    A constant trained map counts as 1 for ``rho`` and ``rho_partial``; a constant random map as 0."""
    from scipy.stats import rankdata
    if is_constant(trained):
        return 1.0, 1.0, float('nan')
    a, f = _small(trained)
    ranks = [rankdata(a.ravel())]
    if box is not None:
        ranks.append(rankdata(centre_prior(a.shape, [v * f for v in box]).ravel()))
    r_ap = _pearson(ranks[0], ranks[1]) if box is not None else float('nan')
    if is_constant(random):
        return 0.0, (0.0 if box is not None else float('nan')), r_ap
    b = rankdata(_small(random)[0].ravel())
    r_ab = _pearson(ranks[0], b)
    if box is None:
        return r_ab, float('nan'), float('nan')
    r_bp = _pearson(b, ranks[1])
    denominator = np.sqrt(max(1 - r_ap ** 2, 0.0) * max(1 - r_bp ** 2, 0.0))
    if 1 - abs(r_ap) < 1e-9:
        partial = 1.0  # the trained map is the prior: nothing beyond it could have changed
    elif denominator < 1e-12:
        partial = 0.0  # the random map is the prior: it shares nothing else with the trained one
    else:
        partial = float(np.clip((r_ab - r_ap * r_bp) / denominator, -1, 1))
    return r_ab, partial, r_ap


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    d = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / d) if d > 0 else 0.0


def _small(cam: np.ndarray) -> tuple[np.ndarray, float]:
    """The map at most ``SIZE`` pixels on its longer side, and the scale factor applied."""
    h, w = cam.shape
    f = SIZE / max(h, w)
    if f >= 1:
        return cam.astype(np.float64), 1.0
    import cv2
    small = cv2.resize(cam.astype(np.float32), (max(round(w * f), 1), max(round(h * f), 1)),
                       interpolation=cv2.INTER_AREA)
    return small.astype(np.float64), small.shape[1] / w


@dataclass
class Verdict:
    method: str
    level: str  # 'all' or a head level, P3, P4, …
    n: int
    mean_rho: float
    mean_rho_partial: float
    mean_rho_prior: float
    constant: int  # trained-model maps that are constant
    verdict: str  # pass, inconclusive or fail
    reason: str
    raw_threshold: float = RAW_THRESHOLD
    partial_threshold: float = PARTIAL_THRESHOLD

    @property
    def passed(self) -> bool:
        return self.verdict == 'pass'


def verdict(method: str, rhos, level='all', constant=0, raw_threshold=RAW_THRESHOLD,
            partial_threshold=PARTIAL_THRESHOLD) -> Verdict:
    """One group's verdict from its detections' ``(rho, rho_partial, rho_prior)``."""
    rhos = np.asarray(list(rhos), dtype=np.float64).reshape(-1, 3)
    if not len(rhos):
        return Verdict(method, level, 0, *[float('nan')] * 3, 0, 'inconclusive', 'no detection to check',
                       raw_threshold, partial_threshold)
    with np.errstate(all='ignore'):
        raw, partial, prior = (float(np.nanmean(c)) if np.isfinite(c).any() else float('nan') for c in rhos.T)
    numbers = f'rho {raw:.2f}, {partial:.2f} given the box-centre prior'
    if partial > raw_threshold:
        v, reason = 'fail', (f'FAILED ({numbers}): beyond their shared location the maps barely change when the '
                             'weights are randomised; what they show comes from the architecture, not from learning')
    elif not prior <= PRIOR_ONLY and np.isfinite(prior):
        v, reason = 'inconclusive', (f'inconclusive ({numbers}): the maps are the location prior itself (rho '
                                     f'{prior:.2f} > {PRIOR_ONLY} with a distance-from-box-centre map)')
    elif raw <= raw_threshold and partial <= partial_threshold:
        v, reason = 'pass', f'pass ({numbers} <= {raw_threshold}, {partial_threshold}): maps change with the weights'
    elif raw > raw_threshold and partial <= partial_threshold:
        v, reason = 'inconclusive', (f'inconclusive ({numbers}): the raw agreement (> {raw_threshold}) is mostly '
                                     'the location prior, which any detector map shares')
    else:
        v, reason = 'inconclusive', (f'inconclusive ({numbers}): agreement beyond the location prior between '
                                     f'{partial_threshold} and {raw_threshold}')
    if constant:
        reason += f'; {constant} of {len(rhos)} maps are constant (no gradient reached the layers)'
    return Verdict(method, level, len(rhos), raw, partial, prior, constant, v, reason, raw_threshold,
                   partial_threshold)


def verdicts(method: str, rhos, levels, constant, raw_threshold=RAW_THRESHOLD,
             partial_threshold=PARTIAL_THRESHOLD) -> list[Verdict]:
    """The method's verdict over all checked detections, then one per head level (sorted by name).
    ``rhos``: per detection ``(rho, rho_partial, rho_prior)``; ``levels``: its head level's name;
    ``constant``: whether its trained map is constant. A level with ``MIN_LEVEL`` or more
    detections that does not pass keeps the whole method from passing."""
    rhos, levels, constant = list(rhos), list(levels), list(constant)
    per_level = [verdict(method, [r for r, lv in zip(rhos, levels) if lv == name], name,
                         sum(c for c, lv in zip(constant, levels) if lv == name), raw_threshold, partial_threshold)
                 for name in sorted(set(levels))]
    overall = verdict(method, rhos, 'all', sum(constant), raw_threshold, partial_threshold)
    weak = [v for v in per_level if v.n >= MIN_LEVEL and not v.passed]
    if overall.passed and weak:
        overall.verdict = 'inconclusive'
        overall.reason = (f'inconclusive: rho {overall.mean_rho:.2f}, {overall.mean_rho_partial:.2f} given the '
                          'box-centre prior pass over all detections, but not on '
                          + ', '.join(f'{v.level} ({v.verdict}, rho {v.mean_rho:.2f}/{v.mean_rho_partial:.2f})'
                                      for v in weak))
    return [overall] + per_level


class RandomisedMaps:
    """Maps of the randomised model for given detections of the trained model: same method, target
    (raw prediction row, head cell, class), layers and combination, by a ``HeatmapEngine`` on the
    randomised copy, so the pipeline is checked as shipped."""

    def __init__(self, model, method, target=DEFAULTS.target, layers=DEFAULTS.layers, seed=0, **settings):
        """``settings``: further ``heatmaps.options.HeatmapOptions`` fields (the trained maps' own)."""
        from ..heatmaps.engine import HeatmapEngine
        self.engine = HeatmapEngine(randomized_copy(model, seed), method=method, target=target, layers=layers,
                                    **settings)

    def __call__(self, x: torch.Tensor, im0: np.ndarray, detections) -> list[np.ndarray]:
        """``x``: the image letterboxed (1, 3, H, W) as the trained model saw it; ``im0``: the original."""
        import torch

        from ..heatmaps.engine import to_original
        if not detections:
            return []
        pred, raw, activations = self.engine.forward(x)
        det = torch.zeros(len(detections), 6)
        det[:, 5] = torch.tensor([float(d.cls) for d in detections])
        rows = torch.tensor([d.index for d in detections])
        where = [(d.level, d.anchor, tuple(d.cell)) for d in detections]
        maps = self.engine.maps_for(raw, activations, 0, det, rows, x, where)
        return [to_original(m, im0.shape) for m in maps]
