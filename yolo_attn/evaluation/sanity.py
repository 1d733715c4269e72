"""Model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

A saliency method that explains the *model* must give different maps when the model's weights are
replaced by random ones. For each detection of the trained model we compute the same method's map
for the same target — the same raw prediction row and class — in a copy of the model whose every
layer with a ``reset_parameters()`` (convolutions, linear layers of the attention blocks, any
BatchNorm) was re-initialised by PyTorch's own initialiser (seeded; the trained model is untouched).

The two maps are compared with Spearman's rank correlation (``scipy.stats.spearmanr``), on copies
downsampled to at most ``SIZE`` pixels on the longer side (the maps are upsampled from stride-8 or
coarser features, so nothing is lost). Conventions: a constant map of the trained model shows
nothing whatever the weights and counts as correlation 1; a constant map of the random model next to
a non-constant trained one counts as 0. A method **fails** when the mean correlation is above the
threshold (default 0.5) — its maps do not depend on what the model learned — and the verdict says
why, naming the constant maps when there are any.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .metrics import is_constant

SIZE = 128
THRESHOLD = 0.5


def randomized_copy(model, seed=0):
    """A deep copy of ``model`` with every parameterised layer re-initialised (RNG state restored)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for m in clone.modules():
            if m is not clone and callable(getattr(m, 'reset_parameters', None)):
                m.reset_parameters()
    return clone.eval()


def rank_correlation(trained: np.ndarray, random: np.ndarray) -> float:
    """Spearman's rho between two maps, with the conventions of the module docstring."""
    from scipy.stats import spearmanr
    if is_constant(trained):
        return 1.0
    if is_constant(random):
        return 0.0
    a, b = _small(trained), _small(random)
    return float(spearmanr(a.ravel(), b.ravel())[0])


def _small(cam: np.ndarray) -> np.ndarray:
    h, w = cam.shape
    f = SIZE / max(h, w)
    if f >= 1:
        return cam
    return cv2.resize(cam.astype(np.float32), (max(round(w * f), 1), max(round(h * f), 1)),
                      interpolation=cv2.INTER_AREA)


@dataclass
class Verdict:
    method: str
    n: int
    mean_rho: float
    constant: int  # trained-model maps that are constant
    threshold: float
    passed: bool
    reason: str


def verdict(method: str, trained_maps, random_maps, threshold=THRESHOLD) -> Verdict:
    """Pass or fail for one method, from pairs of maps (trained model, randomised model)."""
    rhos = [rank_correlation(a, b) for a, b in zip(trained_maps, random_maps)]
    constant = sum(is_constant(a) for a in trained_maps)
    if not rhos:
        return Verdict(method, 0, float('nan'), 0, threshold, False, 'no detection to check')
    mean = float(np.mean(rhos))
    passed = mean <= threshold
    if passed:
        reason = f'maps change with random weights (mean rank correlation {mean:.2f} <= {threshold})'
    else:
        reason = (f'FAILED: maps barely change when the weights are randomised (mean rank correlation '
                  f'{mean:.2f} > {threshold}): what they show comes from the architecture, not from what the '
                  'model learned')
    if constant:
        reason += f'; {constant} of {len(rhos)} maps are constant (no gradient reached the layers)'
    return Verdict(method, len(rhos), mean, constant, threshold, passed, reason)


class RandomisedMaps:
    """Maps of the randomised model for given detections of the trained model: the same method,
    target (same raw prediction row and class) and layers, computed by pytorch-grad-cam's own
    ``cam(input, targets)`` — which the heatmap engine equals (tests/test_heatmaps.py) — so the check
    depends on no internals of the engine."""

    def __init__(self, model, method, target='score', layers=None, seed=0, chunk=8):
        from ..heatmaps.engine import METHODS
        from ..heatmaps.targets import TARGETS, PredictionsOnly
        self.model = randomized_copy(model, seed)
        layers = list(self.model.model[-1].f) if layers is None else [int(i) for i in layers]
        self.cam = METHODS[method](PredictionsOnly(self.model), [self.model.model[i] for i in layers])
        self.cam.compute_input_gradient = True  # fused weights do not require grad; the input carries it
        self.target, self.chunk = TARGETS[target], chunk

    def __call__(self, x: torch.Tensor, im0: np.ndarray, detections) -> list[np.ndarray]:
        """``x``: the image letterboxed (1, 3, H, W) as the trained model saw it; ``im0``: the original."""
        from yolov5.utils.segment.general import scale_image
        maps = []
        for i in range(0, len(detections), self.chunk):
            part = detections[i:i + self.chunk]
            cams = self.cam(x.detach().expand(len(part), *x.shape[1:]).clone(),
                            targets=[self.target(d.index, d.cls) for d in part])
            maps += [scale_image(x.shape[2:], c, im0.shape)[..., 0].astype(np.float32) for c in cams]
        return maps

    def release(self):
        self.cam.activations_and_grads.release()
