"""Where each attention block itself looks: its spatial gate on the image (``--attention-maps``).

Forward hooks keep each registered attention block's input ``x`` and output ``y`` during the
engine's own forward; the spatial gate is the channel mean of ``y / x`` (zeros of ``x`` left out),
one rule for every block: CBAM (Woo et al., ECCV 2018), CoordAtt (Hou et al., CVPR 2021), SimAM
(Yang et al., ICML 2021). Channel-only blocks (SE, ECA) give a flat gate (below ``FLAT``) and are
skipped with a note. The gate is resized with OpenCV as pytorch-grad-cam's ``scale_cam_image`` does
and taken to the original image by yolov5's ``scale_image``. Details: docs/heatmaps.md, "How it works".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np
import torch

FLAT = 1e-4  # relative spread (max - min) / max below which a gate has no spatial structure


@dataclass
class GateMap:
    layer: int  # index of the block in the model
    block: str  # its class name
    stride: int  # input pixels per feature-map cell
    gate_min: float = float('nan')  # the gate's range at feature resolution
    gate_max: float = float('nan')
    map: np.ndarray | None = field(default=None, repr=False)  # float32 in [0, 1], original image size
    note: str = ''  # why there is no map


def attention_layers(model) -> list[int]:
    """Indices of the model's layers that are registered attention blocks."""
    from ..blocks.plugins import registered
    kinds = tuple(registered().values())
    return [i for i, m in enumerate(model.model) if kinds and isinstance(m, kinds)]


def spatial_gate(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(H, W) channel mean of ``y / x`` for one image's (C, H, W) input and output (module docstring)."""
    x, y = x.double(), y.double()
    valid = x != 0
    ratio = torch.where(valid, y / torch.where(valid, x, torch.ones_like(x)), torch.zeros_like(x))
    count = valid.sum(0)
    gate = ratio.sum(0) / count.clamp(min=1)
    if (count == 0).any() and (count > 0).any():
        gate[count == 0] = gate[count > 0].mean()  # no usable channel at that position
    return gate


def _keep(store: dict, index: int, module, inputs, output):
    store[index] = (inputs[0].detach(), output.detach())


class AttentionMaps:
    """The spatial gates of a model's attention blocks, hooked into ``HeatmapEngine``'s forward
    (``attach`` before it, ``gates`` per image after it); ``__call__`` runs one forward itself."""

    def __init__(self, model):
        self.model = model
        self.layers = attention_layers(model)
        self._store = {}

    def attach(self) -> list:
        """Hooks on the attention blocks that keep their input and output of the next forward;
        the caller removes the returned handles after it."""
        self._store.clear()
        return [self.model.model[i].register_forward_hook(partial(_keep, self._store, i)) for i in self.layers]

    def gates(self, b: int, size, im0: np.ndarray) -> list[GateMap]:
        """Image ``b`` of the last forward's batch: each block's gate (``spatial_gate``) upsampled to
        the letterboxed input ``size`` (H, W) and taken back to ``im0``'s size."""
        from yolov5.utils.segment.general import scale_image
        h, w = (int(v) for v in size)
        out = []
        for i in self.layers:
            inp, outp = self._store[i]
            g = spatial_gate(inp[b], outp[b]).float().cpu().numpy()
            up = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
            gate = scale_image((h, w), up[..., None], im0.shape)[..., 0]  # the image's part, original size
            item = GateMap(i, type(self.model.model[i]).__name__, round(h / g.shape[0]),
                           float(gate.min()), float(gate.max()))
            spread = item.gate_max - item.gate_min
            if not spread > FLAT * max(abs(item.gate_max), abs(item.gate_min), 1e-12):
                item.note = (f'no spatial gate: the same weight at every position (gate {item.gate_min:.4g} to '
                             f'{item.gate_max:.4g}); a channel-only block such as SE or ECA')
            else:
                item.map = np.clip((gate - item.gate_min) / spread, 0, 1).astype(np.float32)
            out.append(item)
        return out

    def release(self) -> None:
        """Drop the kept tensors of the last forward."""
        self._store.clear()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, im0: np.ndarray) -> list[GateMap]:
        """The gates of ``im0``, letterboxed as ``x`` (1, 3, H, W), from one forward of its own."""
        if not self.layers:
            return []
        hooks = self.attach()
        try:
            self.model(x)
        finally:
            for h in hooks:
                h.remove()
        try:
            return self.gates(0, x.shape[2:], im0)
        finally:
            self.release()
