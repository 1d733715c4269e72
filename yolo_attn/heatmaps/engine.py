"""One forward pass, the framework's NMS, and one saliency map per kept detection.

After pytorch-grad-cam's ``BaseCAM``, per instance as in ODAM (ICLR 2023): hooks keep the target
layers' activations (``layers.py``); the row (anchor) of every kept detection comes out of yolov5's
or ultralytics' NMS (``heads.py``); each score (``targets``) is differentiated to those activations
only, in shared backward passes (``packing``); pytorch-grad-cam weighs each layer (``methods``),
``combine.py`` merges layers, and yolov5's ``scale_boxes``/``scale_image`` undo the letterbox (the
same letterbox for both frameworks). See docs/heatmaps.md, "How it works".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image

from .attention_maps import AttentionMaps
from .combine import combine_layers
from .heads import head_for, locate, nms_with_index  # noqa: F401  (also importable from here)
from .layers import resolve as resolve_layers
from .methods import CamMethod
from .packing import Windows, gradients_to, pack, packable
from .options import HeatmapOptions
from .targets import TARGETS
from ..mapstats import CONSTANT_EPS, energy_in_box  # noqa: F401  (also importable from here)


def class_names(model) -> dict[int, str]:
    """The model's class names as ``{id: name}`` (yolov5 stores a dict or, in older checkpoints, a list)."""
    from ..integration.datasets import name_dict
    return name_dict(model.names)


@dataclass(eq=False)
class LayerCams:
    """One detection's per-layer maps at the layers' resolutions (``CamMethod.layer_cams``), made
    into its heatmap at the input size (H, W) by ``scale_cam_image`` and ``rule`` (``combine.py``)."""

    cams: tuple  # per layer, (h, w)
    size: tuple  # (H, W) of the letterboxed input
    rule: str
    cam: CamMethod

    def per_layer(self) -> np.ndarray:
        """(L, H, W): each layer's map, min-max normalised and resized to the input."""
        return CamMethod.scale([c[None] for c in self.cams], self.size)[0]

    def letterbox(self) -> np.ndarray:
        """(H, W): the layers' maps combined."""
        return combine_layers(self.per_layer()[None], self.rule, self.cam)[0]


@dataclass
class Detection:
    index: int  # row of the raw prediction it came from
    box: list  # xyxy in original image pixels, as detect.py reports it
    cls: int
    name: str
    objectness: float | None  # None: an anchor-free head (ultralytics) has none
    class_prob: float
    score: float  # the confidence the model reports (yolov5: objectness x class probability)
    level: int  # Detect head (0 = stride 8)
    anchor: int
    cell: tuple  # (row, column) in that head's grid
    source: LayerCams = field(repr=False)  # its per-layer maps at the layers' resolutions
    image_shape: tuple = ()  # shape of the original image, which ``map`` is at
    constant: bool = False  # the map carries no information (no gradient reached the layers)
    energy_in_box: float = 0.0
    renorm_in_box: bool = False  # ``map`` normalised inside the box, zero outside

    @property
    def letterbox_map(self) -> np.ndarray:
        """float32 (H, W) in [0, 1] at the letterboxed input's size (``LayerCams.letterbox``)."""
        return self.source.letterbox()

    @property
    def map(self) -> np.ndarray:
        """float32 (H, W) in [0, 1] at the original image's size, made on each access and not kept
        (memory does not grow with detections x image size; keep the array to use it twice)."""
        cam = to_original(self.letterbox_map, self.image_shape)
        return renorm_in_box(cam, self.box) if self.renorm_in_box and not self.constant else cam


@dataclass
class ImageResult:
    path: str
    shape: tuple  # (height, width) of the original image
    image: np.ndarray = field(repr=False)  # original BGR image
    detections: list = field(default_factory=list)
    frame: int | None = None  # 0-based frame index in its video (None for an image); set by api.explain
    attention_maps: list | None = None  # attention_maps.GateMap per attention block (option attention_maps)


def to_original(cam: np.ndarray, shape) -> np.ndarray:
    """A letterbox-space map (H, W) at the original image's ``shape``: yolov5's ``scale_image``
    (the padding cropped off, resized), float32."""
    from yolov5.utils.segment.general import scale_image
    return scale_image(cam.shape, cam, shape)[..., 0].astype(np.float32)


def renorm_in_box(cam: np.ndarray, box) -> np.ndarray:
    """Zero outside the box, min-max normalised inside it."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    out = np.zeros_like(cam)
    if x2 > x1 and y2 > y1:
        out[y1:y2, x1:x2] = scale_cam_image(cam[None, y1:y2, x1:x2])[0]
    return out


def _keep(store: dict, index: int, first: bool, module, inputs, output):
    """Forward hook: keep a target layer's output; from the first target layer on, autograd records.
    Earlier layers run without a graph, even when the weights require grad (yolov5's fused models)."""
    if first:
        torch.set_grad_enabled(True)  # inside the caller's no_grad(), which restores the mode on exit
    if not output.requires_grad:
        output.requires_grad_(True)
    store[index] = output


class HeatmapEngine:
    """Per-detection saliency for a yolov5 or ultralytics detection model (see the module docstring)."""

    def __init__(self, model, options: HeatmapOptions | None = None, **settings):
        """``options`` (``options.HeatmapOptions``; default ``DEFAULTS``), with ``settings`` -- its
        fields as keywords (``method='gradcam', layers='detect'``) -- changed."""
        self.options = o = HeatmapOptions.of(options, **settings)
        self.model = model.eval()
        self.head = head_for(model)  # what differs between yolov5's and ultralytics' heads (heads.py)
        self.head.check_target(o.target)
        self.plan = resolve_layers(model, o.layers)  # roles or indices, resolved for this model (layers.py)
        self.layers = self.plan.layers
        # packing.py (exact, fewer backward passes) needs the same layers for every detection
        self.pack = o.pack and self.plan.uniform and packable(model, self.layers)
        self._windows = None  # (grid and activation shapes, Windows) of the last input size
        self.backward_passes = 0  # autograd.grad calls so far (packing makes it fewer than detections)
        self.cam = CamMethod(o.method)  # pytorch-grad-cam's weighting, scaling and aggregation (methods.py)
        self.names = class_names(model)
        self.gates = AttentionMaps(model) if o.attention_maps else None  # read during our forward

    def __call__(self, im: torch.Tensor, im0s: list, paths: list) -> list[ImageResult]:
        """``im``: letterboxed float batch (B, 3, H, W) in [0, 1]; ``im0s``: original BGR images."""
        from yolov5.utils.general import scale_boxes
        pred, raw, activations = self.forward(im)
        grids = [tuple(r.shape[2:4]) for r in raw]
        results = []
        for b, (det, rows) in enumerate(self.head.nms(pred, raw, **self.options.nms())):
            im0 = im0s[b]
            result = ImageResult(paths[b], im0.shape[:2], im0)
            boxes = scale_boxes(im.shape[2:], det[:, :4].clone(), im0.shape).round()
            where = [self.head.locate(int(i), grids) for i in rows]
            sources = self.sources_for(raw, activations, b, det, rows, im, where)
            for k in range(len(det)):
                cls, index = int(det[k, 5]), int(rows[k])
                level, anchor, cell = where[k]
                box = [float(v) for v in boxes[k]]
                lb = sources[k].letterbox()  # made, measured and dropped: the detection keeps its source
                constant = float(lb.max() - lb.min()) < CONSTANT_EPS
                energy = energy_in_box(to_original(lb, im0.shape), box)  # of the map itself, before renorm
                objectness, class_prob = self.head.values(pred, raw, b, index, where[k], cls)
                result.detections.append(Detection(
                    index, box, cls, self.names.get(cls, str(cls)), objectness, class_prob, float(det[k, 4]),
                    level, anchor, tuple(int(v) for v in cell), sources[k], im0.shape, constant,
                    energy, self.options.renorm_in_box))
                del lb
            if self.gates is not None:
                result.attention_maps = self.gates.gates(b, im.shape[2:], im0)
            results.append(result)
        if self.gates is not None:
            self.gates.release()
        return results

    def forward(self, im: torch.Tensor):
        """One forward pass: ``(pred, raw, activations)`` -- Detect's predictions, each head's raw
        output, and the target layers' outputs (in ``self.layers`` order), recorded for autograd."""
        acts = {}
        first = min(self.layers)
        hooks = [self.model.model[i].register_forward_hook(partial(_keep, acts, i, i == first)) for i in self.layers]
        hooks += self.head.attach()  # ultralytics: each level's class logits (heads.py)
        if self.gates is not None:
            hooks += self.gates.attach()  # --attention-maps: the blocks' gates from this same forward
        try:
            with torch.no_grad():  # until the first target layer, which turns recording on (see _keep)
                pred, raw = self.head.outputs(self.model(im.detach()))
        finally:
            for h in hooks:
                h.remove()
        return pred, raw, [acts[i] for i in self.layers]

    def maps_for(self, raw, activations, b, det, rows, im, where) -> list[np.ndarray]:
        """Letterbox-space maps (H, W) of image ``b`` of the input batch ``im``'s detections: each
        detection's layer maps combined by the engine's rule (``combine.py``)."""
        return [s.letterbox() for s in self.sources_for(raw, activations, b, det, rows, im, where)]

    def sources_for(self, raw, activations, b, det, rows, im, where) -> list[LayerCams]:
        """Each detection's ``LayerCams`` (its per-layer maps at the layers' resolutions)."""
        out = [None] * len(det)
        for ks, _, cams in self._layer_cams(raw, activations, b, det, rows, im, where):
            for k, c in zip(ks, cams):
                out[k] = LayerCams(c, tuple(im.shape[2:]), self.options.combine, self.cam)
        return out

    def layer_maps(self, raw, activations, b, det, rows, im, where):
        """Yield ``(ks, layers, maps)``: detections ``ks`` whose head levels use the same ``layers``
        (``plan.for_level``) and their per-layer maps, (len(ks), len(layers), H, W), each exactly
        pytorch-grad-cam's ``compute_cam_per_layer`` for that layer."""
        for ks, subset, cams in self._layer_cams(raw, activations, b, det, rows, im, where):
            yield ks, subset, np.stack([CamMethod.scale([c[None] for c in layer], im.shape[2:])[0] for layer in cams])

    def _layer_cams(self, raw, activations, b, det, rows, im, where):
        """Yield ``(ks, layers, cams)``: detections ``ks`` whose head levels use the same ``layers``
        (``plan.for_level``) and, per detection, its maps at those layers' resolutions."""
        levels = [w[0] for w in where]
        groups = {}
        for k in range(len(det)):
            groups.setdefault(tuple(self.plan.for_level(levels[k])), []).append(k)
        for subset, ks in groups.items():
            acts = [activations[self.layers.index(i)] for i in subset]
            yield ks, subset, self._subset_cams(subset, raw, acts, b, det, rows, im, where, ks)

    def _subset_cams(self, subset, raw, activations, b, det, rows, im, where, ks) -> list:
        """Per detection of ``ks``, its per-layer maps at ``activations``' resolutions (a tuple of
        (h, w) arrays). Scores are read per head (``head_row``), packed into shared backwards
        (``packing``); at most ``chunk`` groups' gradients and ``chunk`` detections are held at a time."""
        n, cam = len(ks), self.cam
        layers = [self.model.model[i] for i in subset]
        out = [None] * n
        target_cls, at = TARGETS[self.options.target], self.head.classes_at
        targets = [target_cls(rows[k], det[k, 5], at) for k in ks]  # on the predictions, for grad-cam
        scores = [target_cls(0, det[k, 5], at)(self.head.head_row(raw, b, *where[k])) for k in ks] \
            if cam.uses_gradients else []
        levels = [where[k][0] for k in ks]
        groups, windows = [[i] for i in range(n)], None
        if cam.uses_gradients and self.pack and n > 1:
            grids = [tuple(r.shape[2:4]) for r in raw]
            key = (tuple(grids), tuple(a.shape[1:] for a in activations))
            if self._windows is None or self._windows[0] != key:
                self._windows = key, Windows.probe(raw, activations, b)
            probe = self._windows[1]
            windows = [probe.of(where[k][0], where[k][2]) for k in ks]
            groups = pack(windows, probe.shapes, sorted(range(n), key=lambda i: -levels[i]))
        for first in range(0, len(groups), self.options.chunk):
            batch = range(first, min(first + self.options.chunk, len(groups)))
            grads = []
            if cam.uses_gradients:
                grads = self.gradients([torch.stack([scores[i] for i in groups[g]]).sum() for g in batch],
                                       activations, b)
            members = [(j, i) for j, g in enumerate(batch) for i in groups[g]]
            for start in range(0, len(members), self.options.chunk):
                part = members[start:start + self.options.chunk]
                mine = self._member_gradients(grads, [(j, windows[i] if len(groups[batch[j]]) > 1 else None)
                                                      for j, i in part]) if grads else []
                idx = [i for _, i in part]
                cams = cam.layer_cams(im[b:b + 1].expand(len(idx), *im.shape[1:]), layers, [targets[i] for i in idx],
                                      [a[b:b + 1].expand(len(idx), *a.shape[1:]) for a in activations], mine)
                for r, i in enumerate(idx):
                    out[i] = tuple(c[r].copy() for c in cams)  # its own small arrays, not views of the chunk's
        return out

    @staticmethod
    def _member_gradients(grads, members) -> list:
        """Per target layer, the (n, C, H, W) gradients of ``members`` -- ``(i, windows)``: row ``i``
        of the groups' gradients, restricted to the member's windows when its group is shared."""
        out = []
        for j, g in enumerate(grads):
            stacked = torch.zeros((len(members), *g[0].shape), dtype=g[0].dtype)
            for r, (i, window) in enumerate(members):
                if window is None:
                    stacked[r] = g[i]
                elif window[j] is not None:
                    y0, y1, x0, x1 = window[j]
                    stacked[r, :, y0:y1, x0:x1] = g[i][:, y0:y1, x0:x1]
            out.append(stacked)
        return out

    def gradients(self, scores, activations, b):
        """d score_k / d activation for each k (``packing.gradients_to``), counted in ``backward_passes``.
        One ``autograd.grad`` per score, not a vmapped ``is_grads_batched`` call: faster on the CPU
        (benchmarks/README.md, "Heatmap speed"), and one backward's buffers live at a time."""
        self.backward_passes += len(scores)
        return gradients_to(scores, activations, b)
