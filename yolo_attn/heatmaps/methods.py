"""The saliency methods: pytorch-grad-cam's, used through its public per-method surface.

The engine has its own forward and gradients, so ``CamMethod`` runs only ``compute_cam_per_layer``'s
steps (``get_cam_image``, ReLU, ``scale_cam_image``) and ``aggregate_multi_layers``, on a stand-in
module (the user's model is never hooked). Methods with ``uses_gradients=False`` (EigenCAM, Muhammad
& Yeasin, IJCNN 2020) give every detection the same map; ``GRADIENT_FREE`` records them for the CLI
(checked against the library by ``CamMethod``). The library is imported on first use (``cam_class``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OptionError

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

CAM_CLASSES = {'gradcam': 'GradCAM', 'gradcam++': 'GradCAMPlusPlus', 'xgradcam': 'XGradCAM', 'hirescam': 'HiResCAM',
               'elementwise': 'GradCAMElementWise', 'layercam': 'LayerCAM', 'eigencam': 'EigenCAM',
               'eigengradcam': 'EigenGradCAM'}  # our name -> pytorch-grad-cam's class
GRADIENT_FREE = ('eigencam',)  # the classes built with uses_gradients=False (module docstring)
DEFAULT_METHOD = 'elementwise'  # instance-specific: plain Grad-CAM spreads onto every object of the class
NOT_PER_DETECTION = 'not per-detection: the same map for every detection of an image'


def check_method(method: str) -> str:
    """``method`` if pytorch-grad-cam has it here; an ``OptionError`` (a ``ValueError``) naming the
    choices otherwise."""
    if method not in CAM_CLASSES:
        raise OptionError('method', f"{method!r}; choose from {', '.join(CAM_CLASSES)}", 'unknown ')
    return method


def cam_class(method: str) -> type:
    """pytorch-grad-cam's class of ``method`` (the library is imported here, on first use)."""
    import pytorch_grad_cam
    return getattr(pytorch_grad_cam, CAM_CLASSES[check_method(method)])


@lru_cache(maxsize=None)
def _blas():
    from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn, which grad-cam imports
    return ThreadpoolController()


def one_blas_thread():
    """numpy's BLAS on one thread while grad-cam weighs (the eigen methods' SVD per detection), so
    its threads do not compete with torch's busy-waiting ones (docs/heatmaps.md, "Implementation notes")."""
    return _blas().limit(limits=1, user_api='blas')


class CamMethod:
    """One pytorch-grad-cam method applied to activations and gradients computed elsewhere (module
    docstring): ``per_layer`` is ``compute_cam_per_layer``, ``aggregate_multi_layers`` the library's."""

    def __init__(self, method: str):
        import torch
        stand_in = torch.nn.Conv2d(1, 1, 1)  # BaseCAM reads a device from it; its hooks are never fired
        self.name = check_method(method)
        self.cam = cam_class(method)(stand_in, [stand_in])
        self.uses_gradients = bool(self.cam.uses_gradients)
        if self.uses_gradients != per_detection(method):
            raise RuntimeError(f"pytorch-grad-cam's {CAM_CLASSES[method]} has uses_gradients={self.uses_gradients}, "
                               f'unlike GRADIENT_FREE in {__name__}: update the record')

    def layer_cams(self, input_tensor: torch.Tensor, layers, targets, activations, grads) -> list[np.ndarray]:
        """Per target layer, the (n, h, w) maps of ``n`` targets: ``get_cam_image`` on the layer's
        (n, C, h, w) activations and gradients, then ReLU (``compute_cam_per_layer`` before its
        ``scale_cam_image``). ``input_tensor``: (n, 3, H, W); ``grads``: empty for gradient-free methods."""
        out = []
        for i, layer in enumerate(layers):
            a = activations[i].detach().cpu().numpy()
            g = grads[i].detach().cpu().numpy() if i < len(grads) else None
            with one_blas_thread():
                cam = self.cam.get_cam_image(input_tensor, layer, targets, a, g, False)
            out.append(np.maximum(cam, 0))
        return out

    @staticmethod
    def scale(layer_cams, size) -> np.ndarray:
        """``layer_cams`` (per layer (n, h, w)) as ``compute_cam_per_layer`` returns them: each
        min-max normalised and resized to ``size`` (H, W) by ``scale_cam_image``, (n, L, H, W)."""
        from pytorch_grad_cam.utils.image import scale_cam_image
        return np.concatenate([scale_cam_image(c, (int(size[1]), int(size[0])))[:, None] for c in layer_cams], axis=1)

    def per_layer(self, input_tensor: torch.Tensor, layers, targets, activations, grads) -> np.ndarray:
        """(n, L, H, W) maps of ``n`` targets, one per target layer, each exactly
        ``compute_cam_per_layer``'s (``layer_cams``, then ``scale`` to the input's size)."""
        w, h = self.cam.get_target_width_height(input_tensor)
        return self.scale(self.layer_cams(input_tensor, layers, targets, activations, grads), (h, w))

    def aggregate_multi_layers(self, cam_per_layer) -> np.ndarray:
        """pytorch-grad-cam's aggregation of per-layer maps (``combine.py``'s ``mean`` rule)."""
        return self.cam.aggregate_multi_layers(cam_per_layer)


def per_detection(method: str) -> bool:
    """True when ``method``'s map depends on the detection (the method uses gradients; checked
    against the library by ``CamMethod``)."""
    return check_method(method) not in GRADIENT_FREE


def describe(method: str) -> str:
    """``method``, with the not-per-detection label where it applies (for help texts and reports)."""
    return method if per_detection(method) else f'{method} ({NOT_PER_DETECTION})'


def methods_help() -> str:
    """The ``--method`` help line: every method, and which ones are not per-detection."""
    return f"pytorch-grad-cam weighting: {', '.join(describe(m) for m in CAM_CLASSES)}"
