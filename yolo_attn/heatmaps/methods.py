"""Which saliency methods explain one detection, and which draw the same map for all of an image.

pytorch-grad-cam marks the methods that never read a gradient with ``uses_gradients=False``
(``BaseCAM``'s constructor argument; EigenCAM: the first principal component of the activations,
Muhammad & Yeasin, IJCNN 2020). A detection enters a map only through the gradient of its score,
so such a method gives **every detection of an image the same map** (every detection of one head
level, when the layers depend on the level): it shows what the layers respond to, not what one
detection used. EigenGradCAM projects gradient x activation and is
per-detection. The rule is read from the library, not listed here, so a method added to
``engine.METHODS`` is classified without an edit.
"""

from __future__ import annotations

from functools import lru_cache

import torch

NOT_PER_DETECTION = 'not per-detection: the same map for every detection of an image'


@lru_cache(maxsize=None)
def per_detection(method: str) -> bool:
    """True when ``method``'s map depends on the detection (the method uses gradients)."""
    from .engine import METHODS
    layer = torch.nn.Conv2d(1, 1, 1)
    cam = METHODS[method](layer, [layer])
    cam.activations_and_grads.release()
    return bool(cam.uses_gradients)


def describe(method: str) -> str:
    """``method``, with the not-per-detection label where it applies (for help texts and reports)."""
    return method if per_detection(method) else f'{method} ({NOT_PER_DETECTION})'


def methods_help() -> str:
    """The ``--method`` help line: every method, and which ones are not per-detection."""
    from .engine import METHODS
    return f"pytorch-grad-cam weighting: {', '.join(describe(m) for m in METHODS)}"
